"""Door link benchmark: command round trip over a real pty, frame decoding rate, watchdog reaction.

Each figure is printed with a ratio to a baseline measured in the same run:
- round trip: DoorController command -> ACK, vs a raw byte echo over the same kind of pty;
- decoding: FrameDecoder frames/s, vs computing the CRC of the same frames alone;
- port loss: unplug -> LinkDown, vs the transport's read timeout (what a polled check would cost);
- watchdog: host stop -> controller locked, vs the configured watchdog period.

  .venv/bin/python -m bench.drivers.door_link [--rounds 300]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time

import serial

from drivers.door.driver import DoorController
from drivers.door.protocol import FrameDecoder, KeepAlive, Leaf, Position, crc16, encode_frame, encode_message
from core import logs
from simulators.door import DoorSimulator
from simulators.pty_link import SerialSimulator


class Echo(SerialSimulator):
    name = "echo"

    def on_bytes(self, data):
        self.link.write(data)


def wait(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        pause.wait(0.0002)


def echo_rtt(rounds: int) -> float:
    with Echo() as dev, serial.serial_for_url(dev.path, timeout=1) as port:
        frame = encode_frame(1, *encode_message(KeepAlive(1000)))
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            port.write(frame)
            port.read(len(frame))
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def door_rtt(rounds: int) -> float:
    with DoorSimulator(profile="zero-latency") as sim:
        door = DoorController(sim.path, tick_s=0.001)
        door.start()
        try:
            wait(lambda: door.state.entry is not None and door.link.idle)
            times = []
            for i in range(rounds):
                t = time.perf_counter()
                door.query_status()
                wait(lambda: door.link.idle)
                times.append(time.perf_counter() - t)
        finally:
            door.stop()
    return statistics.median(times)


def decode_rates(n: int) -> tuple[float, float]:
    frames = [encode_frame(i & 0xFF, *encode_message(KeepAlive(100 + i))) for i in range(n)]
    stream = b"".join(frames)
    t = time.perf_counter()
    for f in frames:
        crc16(f[1:-2])
    crc_only = n / (time.perf_counter() - t)
    dec = FrameDecoder()
    t = time.perf_counter()
    for i in range(0, len(stream), 4096):
        dec.feed(stream[i:i + 4096])
    return n / (time.perf_counter() - t), crc_only


def watchdog_reaction(period_ms: int) -> float:
    with DoorSimulator(profile="zero-latency", watchdog_ms=period_ms) as sim:
        door = DoorController(sim.path, watchdog_ms=period_ms)
        door.start()
        wait(lambda: door.state.entry is not None)
        door.open(Leaf.ENTRY)
        wait(lambda: sim.status().entry.position == Position.OPEN)
        door.stop()
        stopped = time.monotonic()
        wait(lambda: sim.status().entry.locked)
        return time.monotonic() - stopped


def loss_detection(rounds: int) -> float:
    """Unplug -> LinkDown reported by the driver, median over `rounds` unplug/replug cycles."""
    with DoorSimulator(profile="zero-latency") as sim:
        down = threading.Event()
        door = DoorController(sim.path, emit=lambda ev: down.set() if type(ev).__name__ == "LinkDown" else None)
        door.transport.backoff_initial_s = door.transport.backoff_max_s = 0.01
        door.start()
        times = []
        try:
            for _ in range(rounds):
                wait(lambda: door.state.link_up and door.state.entry is not None)
                down.clear()
                t = time.perf_counter()
                sim.faults.inject("unplug")
                wait(down.is_set)
                times.append(time.perf_counter() - t)
                sim.faults.clear("unplug")
        finally:
            door.stop()
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args(argv)
    logs.configure(stream=sys.stderr)
    base = echo_rtt(args.rounds)
    rtt = door_rtt(args.rounds)
    print(json.dumps({"figure": "door_command_ack_rtt_ms", "value": round(rtt * 1e3, 3),
                      "baseline": "raw pty echo rtt", "baseline_value": round(base * 1e3, 3),
                      "ratio": round(rtt / base, 2)}))
    dec, crc_only = decode_rates(20000)
    print(json.dumps({"figure": "door_frames_decoded_per_s", "value": round(dec),
                      "baseline": "crc16 alone per frame", "baseline_value": round(crc_only),
                      "ratio": round(dec / crc_only, 3)}))
    loss = loss_detection(20)
    print(json.dumps({"figure": "port_loss_reported_ms", "value": round(loss * 1e3, 2),
                      "baseline": "transport read timeout (bound of a polled check)", "baseline_value": 20,
                      "ratio": round(loss * 1e3 / 20, 3)}))
    period = 500
    react = watchdog_reaction(period)
    print(json.dumps({"figure": "watchdog_lock_after_host_stop_ms", "value": round(react * 1e3, 1),
                      "baseline": "watchdog period", "baseline_value": period,
                      "ratio": round(react * 1e3 / period, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
