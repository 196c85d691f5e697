"""The blocking client of the console socket (gate/console/protocol.py): `egate diag`, `egate officer`
and the serial console process use it. Thread-safe where it needs to be: `cancel` may come from
another thread while `run` waits for its answer."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path

from core.errors import EGateError
from gate.console import protocol


class ConsoleUnavailable(EGateError):
    """The gate's console socket cannot be reached (the gate is not running, no permission)."""


class LoginFailed(EGateError):
    def __init__(self, error: str, retry_after_s: float | None = None):
        super().__init__(error)
        self.retry_after_s = retry_after_s


class Client:
    def __init__(self, path: Path | str, *, timeout_s: float | None = None):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(self.path)
        except OSError as exc:
            self.sock.close()
            raise ConsoleUnavailable(f"{self.path}: {exc.strerror or exc} (is the gate running? egate run)") from None
        self.sock.settimeout(timeout_s)
        self._buffer = b""
        self._send_lock = threading.Lock()
        self.login_reply: dict | None = None
        self.closed = False

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _send(self, message: dict) -> None:
        with self._send_lock:
            self.sock.sendall(protocol.encode(message))

    def receive(self) -> dict:
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConsoleUnavailable("the gate closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return protocol.decode(line)

    def login(self, user: str, password: str, channel: str) -> dict:
        self._send({"op": "login", "user": user, "password": password, "channel": channel})
        reply = self.receive()
        if not reply.get("ok"):
            raise LoginFailed(reply.get("error", "login failed"), reply.get("retry_after_s"))
        self.login_reply = reply
        return reply

    def run(self, argv: list[str], on_message: Callable[[dict], None] = lambda m: None) -> dict:
        """Run one command: `on_message` gets each progress line and streamed message; returns the answer."""
        self._send({"op": "run", "argv": list(argv)})
        while True:
            reply = self.receive()
            if "ok" in reply:
                return reply
            on_message(reply)

    def cancel(self) -> None:
        try:
            self._send({"op": "cancel"})
        except OSError:
            pass

    def logout(self, why: str = "user") -> None:
        try:
            self._send({"op": "logout", "why": why})
            self.receive()
        except (OSError, EGateError):
            pass
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
