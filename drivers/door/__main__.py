"""Door test tool: connect, optionally move leaves, print every event as a JSON line, keep the watchdog fed.

  python -m drivers.door /dev/serial/by-id/... --open entry --watchdog-ms 1000
Runs until interrupted; if it is killed, the controller's watchdog locks the door.
"""
from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import signal
import sys
import threading

from core import logs
from core.component import LinkUp
from drivers.door.driver import DoorController
from drivers.door.protocol import Leaf


def _jsonable(ev) -> dict:
    def conv(v):
        if isinstance(v, enum.Enum):
            return v.name.lower()
        if dataclasses.is_dataclass(v):
            return {k: conv(x) for k, x in dataclasses.asdict(v).items()} | {"type": type(v).__name__}
        return v
    return conv(ev) if dataclasses.is_dataclass(ev) else {"type": type(ev).__name__}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.door", description=__doc__.splitlines()[0])
    parser.add_argument("port", help="pyserial URL or device path")
    parser.add_argument("--watchdog-ms", type=int, default=1000)
    for verb in ("open", "close", "lock"):
        parser.add_argument(f"--{verb}", action="append", default=[], choices=("entry", "exit"))
    args = parser.parse_args(argv)
    logs.configure(stream=sys.stderr)  # stdout carries the events
    connected = threading.Event()

    def on_event(ev):
        print(json.dumps(_jsonable(ev)), flush=True)
        if isinstance(ev, LinkUp):
            connected.set()

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    door = DoorController(args.port, emit=on_event, watchdog_ms=args.watchdog_ms)
    door.start()
    try:
        while not connected.wait(0.1):
            if stop.is_set():
                return 0
        for verb in ("open", "close", "lock"):
            for leaf in getattr(args, verb):
                getattr(door, verb)(Leaf[leaf.upper()])
        while not stop.wait(0.5):
            pass
    finally:
        door.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
