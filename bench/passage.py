"""The whole passage on the simulated lane: passage time, throughput, the lane's physical floor, controller overhead.

    .venv/bin/python -m bench.passage [--single 12] [--queue 12] [--zero 8] [--workdir var/bench-passage]

Three runs of the real gate process (`gate.app.GateApp`, the lane's screen given to it so the
travellers read it) against the simulated lane (`simulators.lane`), travellers from
`simulators.traveller` (genuine: lin and chen, nationals with face + fingerprint; devries and bakker,
foreigners with face only; each takes the passport back off the reader when they walk in, once the
reader's light is off):

1. **one at a time** (realistic profile): each traveller arrives when the lane is idle with both leaves
   locked. Passage time = the passport laid on the reader → the traveller past the exit leaf (from
   the traveller's own timeline, so it does not depend on the controller's bookkeeping); p50, p95 and
   a breakdown per step from the traveller's timeline and the door simulator's leaf reports.
2. **continuous queue** (realistic): the next traveller steps up and lays their passport down as soon
   as the one before has taken theirs off the reader. Cycle = the exit confirmed locked behind one
   traveller → behind the next; throughput per hour = 3600 / mean cycle. The lane's physical floor for
   each cycle is what the leaves and the person must take whatever the software does, measured in the
   same run: entry opening travel + the traveller's reaction + walk until clear of the entry leaf +
   entry closing travel + exit opening travel + reaction + walk out + exit closing travel; the ratio is
   sum(cycles) / sum(floors).
3. **controller overhead** (zero-latency profile): capture complete (the last camera frame or fingerprint
   image the gate took for the passage, or the entry reported locked if that came later) → the
   exit-open command sent to the door controller.

The last output line is one JSON object: `p50_s`, `p95_s`, `throughput_per_h`, `floor_ratio`,
`overhead_p95_ms` (and the sample sizes). Everything measured is also written to
`WORKDIR/passage.json`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path

from core import logs
from drivers.door.protocol import Leaf, Position
from gate import config
from gate.app import GateApp
from simulators.demo import enrol_nationals
from simulators.lane import Lane
from simulators.traveller import Traveller

PEOPLE = ("lin", "devries", "chen", "bakker")     # never the same person twice in a row


def pct(values: list[float], q: float) -> float:
    """The q-quantile, linear between order statistics (q in 0..1)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _wait(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Instrumented:
    """The gate process on its own thread, with the moments the bench needs noted as they happen:
    door commands (`open`/`lock` of a leaf), camera frames taken by the face step, fingerprint
    images captured."""

    def __init__(self, lane: Lane):
        self.lane = lane
        cfg = config.load_gate(lane.config_path)
        self.app = GateApp(cfg, screen=lane.screen)
        enrol_nationals(lane, self.app.enrolment)
        self.commands: list[tuple[float, str, Leaf]] = []
        self.frames: list[float] = []
        self.fingers: list[float] = []
        self.results: list[float] = []        # a face or fingerprint step returned its outcome
        self._wrap()
        self.thread = threading.Thread(target=lambda: asyncio.run(self.app.run()), name="gate", daemon=True)

    def _wrap(self) -> None:
        door, camera, scanner = self.app.door, self.app.camera, self.app.scanner
        open_, lock, wait_frame, capture = door.open, door.lock, camera.wait_frame, scanner.capture

        def opened(leaf, *a, **kw):
            out = open_(leaf, *a, **kw)
            self.commands.append((time.monotonic(), "open", leaf))
            return out

        def locked(leaf, *a, **kw):
            out = lock(leaf, *a, **kw)
            self.commands.append((time.monotonic(), "lock", leaf))
            return out

        def frame(*a, **kw):
            out = wait_frame(*a, **kw)
            self.frames.append(time.monotonic())
            return out

        def captured(*a, **kw):
            out = capture(*a, **kw)
            self.fingers.append(time.monotonic())
            return out

        door.open, door.lock, camera.wait_frame, scanner.capture = opened, locked, frame, captured
        for step in (self.app.controller.dev.face, self.app.controller.dev.finger):
            if step is not None:
                step.verify = self._noting(step.verify)

    def _noting(self, verify):
        def verified(*a, **kw):
            try:
                return verify(*a, **kw)
            finally:
                self.results.append(time.monotonic())
        return verified

    def __enter__(self) -> Instrumented:
        self.thread.start()
        if not _wait(lambda: self.app.reactor.loop is not None and self.app.controller.machine.state == "idle", 60):
            raise RuntimeError(f"gate not ready: {self.app.controller.machine.state}")
        return self

    def __exit__(self, *exc) -> None:
        self.app.reactor.call_from_thread(self.app.reactor.request_stop)
        self.thread.join(30)

    def settled(self) -> bool:
        s = self.lane.door.status()
        return (self.app.controller.machine.state == "idle" and s.entry.locked and s.exit.locked
                and s.entry.position == Position.CLOSED and s.exit.position == Position.CLOSED)


# ------------------------------------------------------------------ reading the timelines

def _events(t: Traveller) -> dict[str, float]:
    """First time of each event in the traveller's timeline (monotonic)."""
    out: dict[str, float] = {}
    for e in list(t.timeline):
        out.setdefault(e.what, e.t)
    return out


def _leaf_at(history, leaf: Leaf, position: Position, after: float, locked: bool | None = None) -> float | None:
    for at, lf, pos, lk in history:
        if at >= after and lf == leaf and pos == position and (locked is None or lk == locked):
            return at
    return None


def breakdown(t: Traveller, history) -> dict | None:
    """The passage of one cleared traveller, step by step (seconds), from their timeline and the
    leaves' reports; None when the traveller did not pass."""
    ev = _events(t)
    if t.outcome != "passed" or "left_mantrap" not in ev:
        return None
    placed = ev["passport_presented"]
    eo0 = _leaf_at(history, Leaf.ENTRY, Position.OPENING, placed)
    eo1 = _leaf_at(history, Leaf.ENTRY, Position.OPEN, eo0 or placed)
    ec0 = _leaf_at(history, Leaf.ENTRY, Position.CLOSING, ev["walking_in"])
    ec1 = _leaf_at(history, Leaf.ENTRY, Position.CLOSED, ec0 or ev["walking_in"], locked=True)
    xo0 = _leaf_at(history, Leaf.EXIT, Position.OPENING, ec1 or ev["walking_in"])
    xo1 = _leaf_at(history, Leaf.EXIT, Position.OPEN, xo0 or ev["walking_in"])
    xc0 = _leaf_at(history, Leaf.EXIT, Position.CLOSING, xo1 or ev["walking_in"])
    xc1 = _leaf_at(history, Leaf.EXIT, Position.CLOSED, xc0 or ev["left_mantrap"], locked=True)
    if None in (eo0, eo1, ec0, ec1, xo0, xo1, xc0, xc1):
        return None
    clear = ev.get("clear_of_entry", ev["in_mantrap"])
    past = ev.get("past_exit", ev["left_mantrap"])     # every beam clear: past the exit leaf
    steps = {
        "document": eo0 - placed,                       # MRZ + chip + checks, until the entry starts opening
        "entry_opening": eo1 - eo0,                     # leaf travel
        "react_in": ev.get("reacted", ev["walking_in"]) - eo1,   # the traveller sees it open and is ready
        "reader_wait": ev["walking_in"] - ev.get("reacted", ev["walking_in"]),  # the reader's light still on
        "walk_in": clear - ev["walking_in"],            # until clear of the entry leaf
        "entry_close_wait": ec0 - clear,                # presence seen → close command → leaf moving
        "entry_closing": ec1 - ec0,                     # leaf travel and lock
        "verify_wait": xo0 - ec1,                       # entry locked → exit starts opening (decision)
        "exit_opening": xo1 - xo0,
        "react_out": ev["walking_out"] - xo1,
        "walk_out": past - ev["walking_out"],
        "exit_close_wait": xc0 - past,
        "exit_closing": xc1 - xc0,
    }
    physical = ("entry_opening", "react_in", "walk_in", "entry_closing", "exit_opening", "react_out", "walk_out",
                "exit_closing")
    return {"person": t.person.key, "placed": placed, "past_exit": past, "exit_locked": xc1,
            "passage_s": past - placed, "cycle_from_placed_s": xc1 - placed,
            "floor_s": sum(steps[k] for k in physical), "steps": steps,
            "replaced": sum(1 for e in t.timeline if e.what == "passport_replaced")}


# ------------------------------------------------------------------ the runs

def run_single(workdir: Path, n: int, profile: str = "realistic") -> tuple[list[dict], list[dict]]:
    rows, records = [], []
    with Lane(workdir, profile=profile) as lane, Instrumented(lane) as gate:
        for i in range(n):
            if not _wait(gate.settled, 60):
                raise RuntimeError("the lane never settled between travellers")
            time.sleep(0.2)
            t = Traveller(lane, "genuine", PEOPLE[i % len(PEOPLE)], passport_back="on_entry").start()
            if not t.join(120):
                raise RuntimeError(f"traveller {t.id} never finished")
            _wait(gate.settled, 30)
            row = breakdown(t, list(lane.door.history))
            rows.append(row or {"person": t.person.key, "outcome": t.outcome, "failed": True})
            print(f"  single {i + 1:>2} {t.person.key:<8} {t.outcome:<9} "
                  + (f"passage {row['passage_s']:.2f} s, floor {row['floor_s']:.2f} s" if row else "no breakdown"),
                  flush=True)
        records = [r.as_dict() for r in gate.app.controller.records]
        overhead = _overheads(gate, records) if profile == "zero-latency" else []
    if profile == "zero-latency":
        return rows, overhead
    return rows, records


def run_queue(workdir: Path, n: int) -> tuple[list[dict], list[dict]]:
    with Lane(workdir, profile="realistic") as lane, Instrumented(lane) as gate:
        if not _wait(gate.settled, 60):
            raise RuntimeError("the lane never settled")
        travellers: list[Traveller] = []
        for i in range(n):
            if travellers:   # the reader is free once the one before took their passport back
                prev = travellers[-1]
                _wait(lambda: prev.done.is_set() or any(e.what == "passport_taken" for e in list(prev.timeline)), 120)
            travellers.append(Traveller(lane, "genuine", PEOPLE[i % len(PEOPLE)], passport_back="on_entry").start())
        for t in travellers:
            if not t.join(180):
                raise RuntimeError(f"traveller {t.id} never finished")
        _wait(gate.settled, 30)
        history = list(lane.door.history)
        rows = []
        for t in travellers:
            row = breakdown(t, history)
            rows.append(row or {"person": t.person.key, "outcome": t.outcome, "failed": True})
        records = [r.as_dict() for r in gate.app.controller.records]
    for i, row in enumerate(rows):
        if i and not row.get("failed") and not rows[i - 1].get("failed"):
            row["cycle_s"] = row["exit_locked"] - rows[i - 1]["exit_locked"]
        print(f"  queue {i + 1:>2} {row['person']:<8} "
              + (f"cycle {row['cycle_s']:.2f} s, floor {row['floor_s']:.2f} s" if "cycle_s" in row else
                 "(first)" if not row.get("failed") else f"FAILED {row.get('outcome')}"), flush=True)
    return rows, records


def _overheads(gate: Instrumented, records: list[dict]) -> list[dict]:
    """Per exit-open command: the latest capture (frame or fingerprint image) or entry-locked report
    before it, and the time from that to the command."""
    out = []
    history = list(gate.lane.door.history)
    opens = [at for at, op, leaf in gate.commands if op == "open" and leaf == Leaf.EXIT]
    last_open = 0.0
    for at in opens:
        frames = [f for f in gate.frames if last_open < f <= at]
        fingers = [f for f in gate.fingers if last_open < f <= at]
        locks = [h[0] for h in history if last_open < h[0] <= at and h[1] == Leaf.ENTRY
                 and h[2] == Position.CLOSED and h[3]]
        marks = [m for m in (frames[-1:] + fingers[-1:] + locks[-1:])]
        results = [r for r in gate.results if last_open < r <= at]
        if marks:
            out.append({"overhead_ms": (at - max(marks)) * 1000, "finger": bool(fingers),
                        "after_results_ms": (at - max(results[-1:] + locks[-1:])) * 1000 if results else None,
                        "by": "finger" if fingers and max(marks) == fingers[-1] else
                              "frame" if frames and max(marks) == frames[-1] else "entry_locked"})
        last_open = at
    return out


# ------------------------------------------------------------------ report

STEP_ORDER = ("document", "entry_opening", "react_in", "reader_wait", "walk_in", "entry_close_wait", "entry_closing", "verify_wait",
              "exit_opening", "react_out", "walk_out", "exit_close_wait", "exit_closing")


def summarise(single: list[dict], queue: list[dict], overhead: list[dict], gate_records: list[dict]) -> dict:
    ok = [r for r in single if not r.get("failed")]
    passage = [r["passage_s"] for r in ok]
    cycles = [r for r in queue if "cycle_s" in r]
    total_cycle = sum(r["cycle_s"] for r in cycles)
    total_floor = sum(r["floor_s"] for r in cycles)
    oh = [o["overhead_ms"] for o in overhead]
    steps = {k: statistics.median([r["steps"][k] for r in ok]) for k in STEP_ORDER} if ok else {}
    return {
        "p50_s": round(pct(passage, 0.5), 2), "p95_s": round(pct(passage, 0.95), 2),
        "throughput_per_h": round(3600 * len(cycles) / total_cycle) if cycles else 0,
        "floor_ratio": round(total_cycle / total_floor, 3) if cycles else None,
        "overhead_p95_ms": round(pct(oh, 0.95), 1) if oh else None,
        "overhead_p50_ms": round(pct(oh, 0.5), 1) if oh else None,
        "after_results_p95_ms": round(pct([o["after_results_ms"] for o in overhead
                                           if o.get("after_results_ms") is not None], 0.95), 1) if oh else None,
        "n_single": len(ok), "n_single_failed": len(single) - len(ok), "n_cycles": len(cycles),
        "n_queue_failed": sum(1 for r in queue if r.get("failed")), "n_overhead": len(oh),
        "cycle_p50_s": round(pct([r["cycle_s"] for r in cycles], 0.5), 2) if cycles else None,
        "floor_p50_s": round(pct([r["floor_s"] for r in cycles], 0.5), 2) if cycles else None,
        "single_cycle_p50_s": round(pct([r["cycle_from_placed_s"] for r in ok], 0.5), 2) if ok else None,
        "steps_p50_s": {k: round(v, 3) for k, v in steps.items()},
        "queue_steps_p50_s": {k: round(statistics.median([r["steps"][k] for r in cycles]), 3) for k in STEP_ORDER}
        if cycles else {},
        "gate_timings_p50_s": _gate_timings(gate_records),
    }


def _gate_timings(records: list[dict]) -> dict:
    cleared = [r["timings_s"] for r in records if r["outcome"] == "cleared"]
    keys = sorted({k for t in cleared for k in t if not k.startswith("chip.")})
    return {k: round(statistics.median([t[k] for t in cleared if k in t]), 3) for k in keys}


def render(s: dict) -> str:
    lines = [f"one at a time (n={s['n_single']}, failed {s['n_single_failed']}): passage p50 {s['p50_s']:.2f} s, "
             f"p95 {s['p95_s']:.2f} s; placed → exit locked p50 {s['single_cycle_p50_s']} s",
             "  steps, median s: " + ", ".join(f"{k} {v:.2f}" for k, v in s["steps_p50_s"].items()),
             f"continuous queue (cycles n={s['n_cycles']}, failed {s['n_queue_failed']}): throughput "
             f"{s['throughput_per_h']}/h, cycle p50 {s['cycle_p50_s']} s, physical floor p50 {s['floor_p50_s']} s, "
             f"ratio {s['floor_ratio']}",
             "  steps in the queue, median s: " + ", ".join(f"{k} {v:.2f}" for k, v in s["queue_steps_p50_s"].items()),
             f"controller overhead, zero-latency (n={s['n_overhead']}): capture complete → exit-open command "
             f"p50 {s['overhead_p50_ms']} ms, p95 {s['overhead_p95_ms']} ms; from the last biometric step's "
             f"outcome (or the entry locked) p95 {s['after_results_p95_ms']} ms",
             "  the gate's own record timings, median s: " + ", ".join(f"{k} {v}" for k, v in s["gate_timings_p50_s"].items())]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.passage", description=__doc__.split("\n")[0])
    ap.add_argument("--single", type=int, default=12, help="travellers one at a time (realistic)")
    ap.add_argument("--queue", type=int, default=12, help="travellers in the continuous queue (realistic)")
    ap.add_argument("--zero", type=int, default=8, help="travellers for the overhead (zero-latency)")
    ap.add_argument("--workdir", type=Path, default=Path("var/bench-passage"))
    args = ap.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    logs.configure("warning", "json", stream=open(args.workdir / "gate.log", "w"))
    print(f"one at a time, realistic ({args.single})", flush=True)
    single, records = run_single(args.workdir / "single", args.single)
    print(f"continuous queue, realistic ({args.queue})", flush=True)
    queue, queue_records = run_queue(args.workdir / "queue", args.queue)
    print(f"controller overhead, zero-latency ({args.zero})", flush=True)
    _, overhead = run_single(args.workdir / "zero", args.zero, profile="zero-latency")
    s = summarise(single, queue, overhead, records)
    (args.workdir / "passage.json").write_text(json.dumps(
        {"summary": s, "single": single, "queue": queue, "overhead": overhead,
         "records": records, "queue_records": queue_records}, indent=1, default=str))
    print(render(s))
    print(json.dumps({k: s[k] for k in ("p50_s", "p95_s", "throughput_per_h", "floor_ratio", "overhead_p95_ms",
                                        "n_single", "n_cycles", "n_overhead")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
