"""Chip read through real pcscd + vpcd, against its transport floor measured in the same run.

    .venv/bin/python -m bench.chip_read [--rounds 30] [--chunk 231] [--read-ahead 2] [--no-pin]
                                        [--overlap-check] [--json]

    .venv/bin/python -m bench.chip_read --pace [--protocol ECDH-GM-AES-128/13] [--rounds 30] [--pin]
                                        [--timing zero|realistic|KBPS] [--json]

--pace: the chip offers PACE (EF.CardAccess) and Chip Authentication (DG14); each round reads it as
the gate does (read_document: EF.CardAccess, PACE, select, DG14, CA, EF.COM, DG1, DG2, EF.SOD),
unpinned by default (as the gate runs), against the floor of the same command APDUs replayed on
the same connection in the same run (the chip repeats its randoms from each MSE:Set AT, so the
replayed PACE and CA get the same answers; every answer is compared). Also the host CPU time of
each protocol step (this process, read_document's steps timed with process_time in extra rounds).

A personalised test document (EF.COM, DG1, DG2 about 24 KB, EF.SOD) is served by the chip
simulator in its own process (like a card: its work is the card's, not ours), pinned to its own
core as a real chip computes on its own hardware (the reader on another; --no-pin). Each round:
  full read   select, BAC, EF.COM, DG1, DG2, EF.SOD with secure messaging (drivers.emrtd.reader)
  floor       the same command APDUs replayed byte for byte on the same PC/SC connection,
              with the same window of commands in flight as the reader's read-ahead, no
              cryptography, no parsing. The chip repeats its randoms from every reset
              (--seed), so it answers the replay exactly as it answered the read; every
              replayed answer is checked against the recorded one after the timing.
Medians over the rounds, total and per step; the ratio full / floor is the reader's own cost.
Also printed: this process's CPU time per read and per replay, and the simulated chip's own CPU
time for the sequence (measured in process), which is most of the floor. --overlap-check replays
once more with 100 us of work per answer (a sleep, then CPU work), one at a time and with
read-ahead, to show whether the reader's work can overlap the chip's time on this machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from drivers.emrtd import access
from drivers.emrtd.bac import BacKey
from drivers.emrtd.pcsc import PcscCard, PcscReader
from drivers.emrtd.reader import READ_AHEAD, ChipSession, read_document
from icao9303 import mrz
from simulators import services
from simulators.chip.applet import EmrtdApplet
from simulators.chip.vpcd import PORTS, READER_NAMES, exclusive_slots
from simulators.testpki import TestPki

STEPS = ("select", "BAC", "EF.COM", "DG1", "DG2", "EF.SOD")
SEED = 1


class Recorder:
    """Transport that notes each exchange, so the read can be replayed byte for byte."""

    def __init__(self, card: PcscCard):
        self.card = card
        self.exchanges: list[tuple[bytes, bytes]] = []

    def transmit(self, apdu: bytes) -> bytes:
        response = self.card.transmit(apdu)
        self.exchanges.append((apdu, response))
        return response


def _document(directory: Path):
    pki = TestPki.create(directory / "pki")
    lines = mrz.compose_td3(issuer="UTO", surname="ERIKSSON", given_names="ANNA MARIA",
                            document_number="L898902C", nationality="UTO", birth_date="740812",
                            sex="F", expiry_date="340415")
    doc = pki.personalise(lines)
    return doc, doc.write(directory / "doc")


def _record(card: PcscCard, key: BacKey, chunk: int) -> tuple[list[tuple[bytes, bytes]], dict[str, range]]:
    """One read, step by step as read_document does it, noting which exchanges each step made."""
    rec = Recorder(card)
    session = ChipSession(rec, chunk)  # read-ahead or not, the command sequence is the same
    steps = {"select": session.select_application, "BAC": lambda: session.authenticate(access.for_document(key)),
             **{name: (lambda n=name: session.read_file(n)) for name in STEPS[2:]}}
    bounds = {}
    for name, step in steps.items():
        start = len(rec.exchanges)
        step()
        bounds[name] = range(start, len(rec.exchanges))
    return rec.exchanges, bounds


def _replay(card: PcscCard, commands: list[bytes], answers: list[bytes], window: int) -> None:
    """The floor: send the recorded commands with the reader's read-ahead window, keep the raw answers."""
    in_flight: deque = deque()
    for cmd in commands:
        in_flight.append(card.submit(cmd))
        if len(in_flight) == window:
            answers.append(in_flight.popleft()())
    while in_flight:
        answers.append(in_flight.popleft()())


def _chip_cpu_s(doc, key: BacKey, commands: list[bytes]) -> float:
    """The simulated chip's own time for the recorded commands (in this process, best of 5)."""
    applet = EmrtdApplet(doc.files, key, seed=SEED)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for cmd in commands:
            applet.process(cmd)
        best = min(best, time.perf_counter() - start)
    return best


def _replay_with_work(card: PcscCard, commands: list[bytes], window: int, work_s: float, cpu: bool) -> float:
    """Replay with `work_s` of work after each answer in this thread: CPU work, or a sleep that
    leaves the CPU (and the GIL) free. Shows whether read-ahead can overlap the reader's work."""
    start = time.perf_counter()
    in_flight: deque = deque()
    for cmd in [*commands, None]:
        if cmd is not None:
            in_flight.append(card.submit(cmd))
        while in_flight and (len(in_flight) == window or cmd is None):
            in_flight.popleft()()
            if cpu:
                end = time.perf_counter() + work_s
                while time.perf_counter() < end:
                    pass
            else:
                time.sleep(work_s)
    return time.perf_counter() - start


def overlap_check(card: PcscCard, commands: list[bytes], rounds: int, work_s: float = 100e-6) -> dict:
    out = {}
    for kind in ("sleep", "cpu"):
        for window in (1, READ_AHEAD):
            times = [_replay_with_work(card, commands, window, work_s, kind == "cpu") for _ in range(rounds)]
            out[f"{kind}, window {window}"] = round(statistics.median(times) * 1000, 2)
    return out


def run(rounds: int, chunk: int, read_ahead: int = READ_AHEAD, check_overlap: bool = False,
        pin: bool = True) -> dict:
    with tempfile.TemporaryDirectory(prefix="egate-bench-chip-") as tmp, services.pcscd_with_vpcd(), \
            exclusive_slots():
        doc, doc_dir = _document(Path(tmp))
        key = BacKey.from_mrz(mrz.parse(doc.mrz_lines))
        sim = subprocess.Popen([sys.executable, "-m", "simulators.chip", "--doc", str(doc_dir),
                                "--port", str(PORTS[0]), "--seed", str(SEED)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpus = sorted(os.sched_getaffinity(0))
        pinned = pin and len(cpus) >= 2
        if pinned:  # a real chip computes on its own hardware: give the simulated one its own core
            os.sched_setaffinity(sim.pid, {cpus[1]})
            os.sched_setaffinity(0, {cpus[0]})
        try:
            reader = PcscReader(READER_NAMES[0], apdu_timeout_s=2.0)
            reader.wait_for_card(10)
            with reader.connect() as card:
                recorded, bounds = _record(card, key, chunk)
                commands = [cmd for cmd, _ in recorded]
                full, floor, full_cpu, floor_cpu = [], [], [], []
                full_steps: dict[str, list[float]] = {s: [] for s in STEPS}
                floor_steps: dict[str, list[float]] = {s: [] for s in STEPS}
                for _ in range(rounds):
                    cpu, start = time.process_time(), time.perf_counter()
                    result = read_document(card, key, chunk=chunk, read_ahead=read_ahead)
                    full.append(time.perf_counter() - start)
                    full_cpu.append(time.process_time() - cpu)
                    for s in STEPS:
                        full_steps[s].append(result.timings_s[s])
                    answers: list[bytes] = []
                    cpu, start = time.process_time(), time.perf_counter()
                    for s in STEPS:
                        step_start = time.perf_counter()
                        _replay(card, commands[bounds[s].start:bounds[s].stop], answers, read_ahead)
                        floor_steps[s].append(time.perf_counter() - step_start)
                    floor.append(time.perf_counter() - start)
                    floor_cpu.append(time.process_time() - cpu)
                    if answers != [resp for _, resp in recorded]:
                        raise RuntimeError("the replay got other answers than the recorded read")
                    if result.files != doc.files:
                        raise RuntimeError("the read returned other files than the document's")
                overlap = overlap_check(card, commands, min(rounds, 15)) if check_overlap else None
        finally:
            if pinned:
                os.sched_setaffinity(0, cpus)
            sim.terminate()
            sim.wait(5)
    med = statistics.median
    return {
        "rounds": rounds, "chunk": chunk, "read_ahead": read_ahead, "pinned": pinned, "apdus": len(recorded),
        "bytes": {name: len(data) for name, data in doc.files.items()},
        "full_ms": round(med(full) * 1000, 2), "floor_ms": round(med(floor) * 1000, 2),
        "ratio": round(med(full) / med(floor), 3),
        "chip_cpu_ms": round(_chip_cpu_s(doc, key, commands) * 1000, 2),
        "reader_cpu_ms": {"full": round(med(full_cpu) * 1000, 2), "floor": round(med(floor_cpu) * 1000, 2)},
        "overlap_ms": overlap,
        "steps_ms": {s: {"full": round(med(full_steps[s]) * 1000, 2), "floor": round(med(floor_steps[s]) * 1000, 2)}
                     for s in STEPS},
    }


PACE_STEPS = ("EF.CardAccess", "PACE", "select", "DG14", "CA", "EF.COM", "DG1", "DG2", "EF.SOD")


def run_pace(rounds: int, protocol: str = "ECDH-GM-AES-128/13", pin: bool = False,
             read_ahead: int = READ_AHEAD, timing: str = "zero") -> dict:
    """PACE + Chip Authentication + COM, DG1, DG2, SOD against the replay floor, and CPU per step."""
    import types

    from drivers.emrtd import reader as reader_mod
    with tempfile.TemporaryDirectory(prefix="egate-bench-chip-") as tmp, services.pcscd_with_vpcd(), \
            exclusive_slots():
        pki = TestPki.create(Path(tmp) / "pki")
        lines = mrz.compose_td3(issuer="UTO", surname="ERIKSSON", given_names="ANNA MARIA",
                                document_number="L898902C", nationality="UTO", birth_date="740812",
                                sex="F", expiry_date="340415")
        doc = pki.personalise(lines, pace=protocol, data_groups=(1, 2, 14))
        doc_dir = doc.write(Path(tmp) / "doc", chip_secrets=True)
        key = BacKey.from_mrz(mrz.parse(doc.mrz_lines))
        sim = subprocess.Popen([sys.executable, "-m", "simulators.chip", "--doc", str(doc_dir),
                                "--port", str(PORTS[0]), "--seed", str(SEED), "--timing", timing],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpus = sorted(os.sched_getaffinity(0))
        pinned = pin and len(cpus) >= 2
        if pinned:
            os.sched_setaffinity(sim.pid, {cpus[1]})
            os.sched_setaffinity(0, {cpus[0]})
        kw = dict(names=["DG1", "DG2"], read_ahead=read_ahead, active_auth=False)
        try:
            reader = PcscReader(READER_NAMES[0], apdu_timeout_s=2.0)
            reader.wait_for_card(10)
            with reader.connect() as card:
                read_document(card, key, **kw)  # every round then starts as this one ends (application selected)
                rec = Recorder(card)
                first = read_document(rec, key, **kw)
                if first.access_control != "PACE" or not (first.chip_auth and first.chip_auth.passed):
                    raise RuntimeError(f"expected PACE and CA: {first.access_control}, {first.chip_auth}")
                commands = [cmd for cmd, _ in rec.exchanges]
                full, floor, full_cpu, floor_cpu = [], [], [], []
                steps: dict[str, list[float]] = {}
                for _ in range(rounds):
                    cpu, start = time.process_time(), time.perf_counter()
                    result = read_document(card, key, **kw)
                    full.append(time.perf_counter() - start)
                    full_cpu.append(time.process_time() - cpu)
                    for s, v in result.timings_s.items():
                        steps.setdefault(s, []).append(v)
                    answers: list[bytes] = []
                    cpu, start = time.process_time(), time.perf_counter()
                    _replay(card, commands, answers, read_ahead)
                    floor.append(time.perf_counter() - start)
                    floor_cpu.append(time.process_time() - cpu)
                    if answers != [resp for _, resp in rec.exchanges]:
                        raise RuntimeError("the replay got other answers than the recorded read")
                    if any(result.files[n] != doc.files[n] for n in ("EF.COM", "DG1", "DG2", "EF.SOD", "DG14")):
                        raise RuntimeError("the read returned other files than the document's")
                # host CPU per protocol step: read_document's step clock swapped for process_time
                cpu_steps: dict[str, list[float]] = {}
                saved = reader_mod.time
                reader_mod.time = types.SimpleNamespace(perf_counter=time.process_time, monotonic=time.monotonic)
                try:
                    for _ in range(max(5, rounds // 3)):
                        for s, v in read_document(card, key, **kw).timings_s.items():
                            cpu_steps.setdefault(s, []).append(v)
                finally:
                    reader_mod.time = saved
        finally:
            if pinned:
                os.sched_setaffinity(0, cpus)
            sim.terminate()
            sim.wait(5)
    med = statistics.median
    return {
        "mode": "pace", "protocol": protocol, "timing": timing, "rounds": rounds, "pinned": pinned, "read_ahead": read_ahead,
        "apdus": len(commands), "bytes": {n: len(doc.files[n]) for n in ("EF.COM", "DG1", "DG2", "EF.SOD", "DG14")},
        "full_ms": round(med(full) * 1000, 2), "floor_ms": round(med(floor) * 1000, 2),
        "ratio": round(med(full) / med(floor), 3),
        "reader_cpu_ms": {"full": round(med(full_cpu) * 1000, 2), "floor": round(med(floor_cpu) * 1000, 2)},
        "steps_ms": {s: round(med(v) * 1000, 2) for s, v in steps.items()},
        "steps_cpu_ms": {s: round(med(v) * 1000, 2) for s, v in cpu_steps.items()},
    }


def main_pace(args) -> int:
    report = run_pace(args.rounds, args.protocol, pin=args.pin, read_ahead=args.read_ahead, timing=args.timing)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"PACE ({report['protocol']}) + CA + EF.COM, DG1, DG2, EF.SOD: {report['apdus']} APDUs, chip timing "
          f"{report['timing']}, "
          f"{'pinned' if report['pinned'] else 'unpinned'}, median of {report['rounds']} rounds")
    print(f"{'step':14} {'wall ms':>9} {'CPU ms':>9}")
    for s, v in report["steps_ms"].items():
        print(f"{s:14} {v:9.2f} {report['steps_cpu_ms'].get(s, 0.0):9.2f}")
    print(f"total {report['full_ms']:.2f} ms, floor {report['floor_ms']:.2f} ms, ratio {report['ratio']:.3f}; "
          f"CPU of this process: read {report['reader_cpu_ms']['full']:.2f} ms, replay {report['reader_cpu_ms']['floor']:.2f} ms")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chip_read", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--chunk", type=int, default=231, help="first Le tried (231 short; more is extended)")
    parser.add_argument("--read-ahead", type=int, default=READ_AHEAD,
                        help=f"READ BINARY commands in flight (default {READ_AHEAD}; 1: none ahead)")
    parser.add_argument("--no-pin", action="store_true",
                        help="let the OS place the simulator and the reader (default: one core each)")
    parser.add_argument("--overlap-check", action="store_true",
                        help="also replay with 100 us of work per answer (sleep vs CPU), window 1 vs read-ahead")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--pace", action="store_true", help="PACE + Chip Authentication, as the gate reads")
    parser.add_argument("--protocol", default="ECDH-GM-AES-128/13", help="with --pace: the PACEInfo offered")
    parser.add_argument("--pin", action="store_true", help="with --pace: one core each (default unpinned)")
    parser.add_argument("--timing", default="zero", help="with --pace: the simulator's contactless timing "
                        "(zero, realistic or a bit rate; simulators.chip.timing)")
    args = parser.parse_args(argv)
    if args.pace:
        return main_pace(args)
    report = run(args.rounds, args.chunk, args.read_ahead, args.overlap_check, pin=not args.no_pin)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"chip read, {report['apdus']} APDUs, chunk {report['chunk']}, read-ahead {report['read_ahead']}, "
          f"{'reader and chip on a core each' if report['pinned'] else 'unpinned'}, median of {report['rounds']} rounds")
    print(f"{'step':8} {'full ms':>9} {'floor ms':>9} {'ratio':>6}")
    for s, v in report["steps_ms"].items():
        print(f"{s:8} {v['full']:9.2f} {v['floor']:9.2f} {v['full'] / v['floor']:6.2f}")
    print(f"{'total':8} {report['full_ms']:9.2f} {report['floor_ms']:9.2f} {report['ratio']:6.3f}")
    print(f"CPU time of this process: full read {report['reader_cpu_ms']['full']:.2f} ms, "
          f"floor {report['reader_cpu_ms']['floor']:.2f} ms; the simulated chip's own (in the floor): "
          f"{report['chip_cpu_ms']:.2f} ms")
    if report["overlap_ms"]:
        print("replay with 100 us of work per answer: " +
              ", ".join(f"{k} {v:.2f} ms" for k, v in report["overlap_ms"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
