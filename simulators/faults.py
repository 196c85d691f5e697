"""Fault injection shared by every simulator, by API, control socket and CLI.

Faults (`KINDS`, with their parameters):
  unplug       duration_s (omit: until cleared)  the device vanishes: pty closed, link removed
  garbage      nbytes                            a burst of line noise, written at once
  corrupt_crc  count                             the next `count` frames carry a bad checksum
  stuck_leaf   leaf ("entry"|"exit")             a door leaf ignores motion commands
  slow         delay_s                           every frame is answered `delay_s` late
  drop         count                             the next `count` frames are never sent

API: `sim.faults.inject("drop", count=2)`, `sim.faults.clear("drop")`.
Control socket (JSON lines on a Unix socket, one reply line per request):
  {"fault": "slow", "delay_s": 0.2}   {"clear": "slow"}   {"clear": null}
  {"do": "emergency", "on": true}     (simulator-specific commands)
CLI against a running simulator:
  python -m simulators.faults /tmp/door.sock inject unplug duration_s=2
  python -m simulators.faults /tmp/door.sock clear slow
  python -m simulators.faults /tmp/door.sock do emergency on=true
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable

from core.errors import EGateError

KINDS: dict[str, dict[str, type]] = {
    "unplug": {"duration_s": float},
    "garbage": {"nbytes": int},
    "corrupt_crc": {"count": int},
    "stuck_leaf": {"leaf": str},
    "slow": {"delay_s": float},
    "drop": {"count": int},
}
DEFAULTS: dict[str, dict] = {"garbage": {"nbytes": 32}, "corrupt_crc": {"count": 1}, "drop": {"count": 1},
                             "slow": {"delay_s": 0.2}, "stuck_leaf": {"leaf": "entry"}}


class FaultError(EGateError, ValueError):
    """Unknown fault, unsupported by this simulator, or bad parameters."""


class Faults:
    """The set of active faults of one simulator; thread-safe."""

    def __init__(self, supported=tuple(KINDS), on_change: Callable[[str, dict | None], None] | None = None):
        unknown = set(supported) - set(KINDS)
        if unknown:
            raise FaultError(f"unknown fault kinds {sorted(unknown)}")
        self.supported = tuple(supported)
        self.on_change = on_change or (lambda name, params: None)
        self.injected: Counter[str] = Counter()  # how often each fault was injected
        self._active: dict[str, dict] = {}
        self._lock = threading.Lock()

    def inject(self, name: str, **params) -> dict:
        if name not in self.supported:
            raise FaultError(f"fault {name!r} not supported here; supported: {', '.join(self.supported)}")
        schema = KINDS[name]
        bad = set(params) - set(schema)
        if bad:
            raise FaultError(f"fault {name!r} takes {sorted(schema) or 'no parameters'}, not {sorted(bad)}")
        merged = {**DEFAULTS.get(name, {}), **params}
        try:
            merged = {k: (schema[k](v) if v is not None else None) for k, v in merged.items()}
        except (TypeError, ValueError) as exc:
            raise FaultError(f"fault {name!r}: bad parameter: {exc}") from None
        if name == "stuck_leaf" and merged["leaf"] not in ("entry", "exit"):
            raise FaultError(f"stuck_leaf: leaf must be 'entry' or 'exit', not {merged['leaf']!r}")
        with self._lock:
            self._active[name] = merged
            self.injected[name] += 1
        self.on_change(name, merged)
        return merged

    def clear(self, name: str | None = None) -> None:
        with self._lock:
            names = list(self._active) if name is None else [name] if name in self._active else []
            for n in names:
                del self._active[n]
        for n in names:
            self.on_change(n, None)

    def active(self, name: str) -> dict | None:
        with self._lock:
            params = self._active.get(name)
            return dict(params) if params is not None else None

    def consume(self, name: str) -> bool:
        """For counted faults: True (and one fewer left) if the fault applies to this frame."""
        with self._lock:
            params = self._active.get(name)
            if params is None:
                return False
            params["count"] -= 1
            if params["count"] <= 0:
                del self._active[name]
        return True

    def control(self, request: dict, commands: dict[str, Callable]) -> dict:
        """Handle one control-socket request (see module docstring)."""
        if "fault" in request:
            params = {k: v for k, v in request.items() if k != "fault"}
            return {"ok": True, "active": self.inject(request["fault"], **params)}
        if "clear" in request:
            self.clear(request["clear"])
            return {"ok": True}
        if "do" in request:
            fn = commands.get(request["do"])
            if fn is None:
                raise FaultError(f"unknown command {request['do']!r}; known: {', '.join(sorted(commands))}")
            args = {k: v for k, v in request.items() if k != "do"}
            return {"ok": True, "result": fn(**args)}
        raise FaultError("request needs one of 'fault', 'clear', 'do'")


class ControlServer:
    """JSON-line control socket on a Unix path; one thread, one request per line."""

    def __init__(self, path: str, handler: Callable[[dict], dict]):
        self.path = path
        self.handler = handler
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(4)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"control-{path}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn, conn.makefile("rwb") as f:
                conn.settimeout(5)
                try:
                    for line in f:
                        f.write(json.dumps(self._answer(line)).encode() + b"\n")
                        f.flush()
                except OSError:
                    pass

    def _answer(self, line: bytes) -> dict:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise FaultError("a request is a JSON object")
            return self.handler(request)
        except Exception as exc:  # any bad request is answered; the control socket never dies
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def send_control(path: str, request: dict, timeout: float = 5.0) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps(request).encode() + b"\n")
        with s.makefile("rb") as f:
            return json.loads(f.readline())


def parse_params(items: list[str]) -> dict:
    """['duration_s=2', 'on=true'] -> {'duration_s': 2, 'on': True} (values parsed as JSON when they can be)."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FaultError(f"expected key=value, got {item!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


def parse_fault_arg(text: str) -> tuple[str, dict]:
    """'slow:delay_s=0.2,…' -> ('slow', {'delay_s': 0.2}); used by the simulators' --fault option."""
    name, _, rest = text.partition(":")
    return name, parse_params([p for p in rest.split(",") if p])


def add_simulator_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--link", help="stable path of the device's serial port (a symlink to the pty)")
    parser.add_argument("--control", help="Unix socket path for fault/command requests")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME[:k=v,...]",
                        help=f"inject at start; one of {', '.join(KINDS)}")
    parser.add_argument("--seed", type=int, default=0)


def run_simulator_cli(sim, args) -> int:
    """Start `sim`, print where it is, apply --fault options, serve --control until SIGINT/SIGTERM."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):  # explicit: a background job inherits SIGINT ignored
            signal.signal(sig, lambda *_: stop.set())
    sim.start()
    server = ControlServer(args.control, sim.control) if args.control else None
    try:
        for text in args.fault:
            name, params = parse_fault_arg(text)
            sim.faults.inject(name, **params)
        print(json.dumps({"device": sim.name, "port": sim.path, "control": args.control}), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        if server:
            server.close()
        sim.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.faults", description="control a running simulator")
    parser.add_argument("socket")
    parser.add_argument("action", choices=("inject", "clear", "do"))
    parser.add_argument("name", nargs="?")
    parser.add_argument("params", nargs="*", help="key=value")
    args = parser.parse_args(argv)
    params = parse_params(args.params)
    request = {"inject": {"fault": args.name, **params}, "clear": {"clear": args.name},
               "do": {"do": args.name, **params}}[args.action]
    reply = send_control(args.socket, request)
    print(json.dumps(reply))
    return 0 if reply.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
