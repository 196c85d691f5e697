"""Helpers for the console tests: a clock the tests move, accounts written cheaply, a scripted
terminal on a real pty with the console process's session loop (gate/console/serial.py) behind it."""
from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

from gate.console import accounts as acc
from gate.console import serial as line
from simulators.pty_link import PtyLink
from tests.serial_helpers import wait_for

PASSWORDS = {"vera": "viewer-pass-0001", "tina": "techie-pass-0002", "adam": "admin-pass-00003",
             "olga": "officer-pass-004", "lock": "lockout-pass-005"}
ROLES = {"vera": "viewer", "tina": "technician", "adam": "admin", "olga": "officer", "lock": "technician"}


class Clock:
    """time.monotonic that a test moves forward (no test sleeps for a lockout or an idle timeout)."""

    def __init__(self):
        self._offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


def write_accounts(path: Path, names=tuple(PASSWORDS)) -> None:
    """The test accounts, hashed at a low scrypt cost (2**10) so logins stay quick."""
    acc.write_accounts(path, {n: acc.Account(n, ROLES[n], acc.hash_password(PASSWORDS[n], log2_n=10)) for n in names})


def audit(app, action: str | None = None) -> list[dict]:
    entries = [json.loads(x) for x in Path(app.audit.path).read_text().splitlines()]
    return [e for e in entries if action is None or e["action"] == action]


class Terminal:
    """A person at a serial terminal: types bytes into the pty, reads what the console writes back.
    The console session loop runs in a thread on the other end, as `egate diag console --port` would."""

    def __init__(self, socket_path: Path, clock: Clock):
        self.link = PtyLink()
        self.link.plug()
        self.screen = ""
        self.seen = 0                 # what `expect` has consumed
        self.sessions = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=line.serve, args=(line.SerialLine(self.link.path), socket_path),
            kwargs={"stop": self._stop, "clock": clock, "on_session": self.sessions.append}, daemon=True)
        self._thread.start()

    def type(self, data: bytes | str) -> None:
        self.link.write(data.encode() if isinstance(data, str) else data)

    def _pump(self) -> None:
        data = self.link.read(0.01)
        if data:
            self.screen += data.decode("ascii", "replace")

    def expect(self, pattern: str, timeout: float = 10.0) -> str:
        """Everything written since the last expect, up to and including `pattern` (a regex)."""
        rx = re.compile(pattern)

        def found():
            self._pump()
            return rx.search(self.screen, self.seen)

        m = wait_for(found, timeout, f"{pattern!r} on the terminal; it shows {self.screen[self.seen:][-400:]!r}")
        out, self.seen = self.screen[self.seen:m.end()], m.end()
        return out

    def login(self, user: str, password: str | None = None) -> str:
        self.expect("login: ")
        self.type(user + "\r")
        self.expect("password: ")
        self.type((PASSWORDS[user] if password is None else password) + "\r")
        return self.expect(r"> $|% [^\n]*\n")

    def command(self, text: str, timeout: float = 20.0) -> str:
        """Type a command and return what it printed, up to the next prompt."""
        self.type(text + "\r")
        out = self.expect(r"\r\n[A-Za-z0-9._-]+:[a-z_.-]+> $", timeout)
        return out.replace("\r\n", "\n")

    def unplug(self) -> None:
        self.link.unplug()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.link.close()
