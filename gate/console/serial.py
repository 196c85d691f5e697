"""The console's thin transport: a serial port opened with pyserial in raw mode (the session echoes
and edits itself: gate/console/line.py), or the tty a getty hands over (put in raw mode here, put
back on exit). One thread reads the line and ticks the session (idle timeout, a command's answer);
a line that fails (a cable pulled, a pty gone) ends the session, cancelling any command, and the port
is opened again with backoff for the next one.
"""
from __future__ import annotations

import os
import select
import termios
import threading
import time
import tty
from collections.abc import Callable

import serial

from core import logs
from gate.console.client import Client
from gate.console.session import ConsoleSession

log = logs.get("console")
READ_S = 0.05


class SerialLine:
    def __init__(self, url: str, baudrate: int = 115200):
        self.url, self.baudrate = url, baudrate
        self.name = f"serial:{url}"
        self._port: serial.SerialBase | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=READ_S, write_timeout=2.0,
                                     exclusive=True)
        port.reset_input_buffer()
        self._port = port

    def read(self) -> bytes:
        return self._port.read(max(1, self._port.in_waiting))

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._port is not None:
                self._port.write(data)

    def close(self) -> None:
        with self._lock:
            port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass


class TtyLine:
    """Standard input and output, a terminal a getty opened (`serial-getty@ttyS0`): raw mode while
    the console runs, the terminal's own settings back afterwards."""

    def __init__(self, fd_in: int = 0, fd_out: int = 1):
        self.fd_in, self.fd_out = fd_in, fd_out
        self.name = f"tty:{os.ttyname(fd_in)}" if os.isatty(fd_in) else "stdin"
        self._saved = None
        self._lock = threading.Lock()

    def open(self) -> None:
        if os.isatty(self.fd_in):
            self._saved = termios.tcgetattr(self.fd_in)
            tty.setraw(self.fd_in)

    def read(self) -> bytes:
        ready, _, _ = select.select([self.fd_in], [], [], READ_S)
        if not ready:
            return b""
        data = os.read(self.fd_in, 4096)
        if not data:
            raise EOFError("the terminal hung up")
        return data

    def write(self, data: bytes) -> None:
        with self._lock:
            os.write(self.fd_out, data)

    def close(self) -> None:
        if self._saved is not None:
            termios.tcsetattr(self.fd_in, termios.TCSADRAIN, self._saved)
            self._saved = None


def serve(line, socket_path, *, stop: threading.Event | None = None, clock: Callable[[], float] = time.monotonic,
          once: bool = False, on_session: Callable[[ConsoleSession], None] = lambda s: None) -> None:
    """Sessions on `line` until `stop` is set (or, `once`, until the first session ends: a getty
    then starts a fresh one)."""
    stop = stop or threading.Event()
    delay = 0.1
    while not stop.is_set():
        try:
            line.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            log.debug("console_line_unavailable", line=line.name, error=str(exc))
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
            continue
        delay = 0.1
        session = ConsoleSession(lambda: Client(socket_path), line.write, channel=line.name, clock=clock)
        on_session(session)
        log.info("console_line_open", line=line.name)
        try:
            session.start()
            while not stop.is_set():
                data = line.read()
                if data:
                    session.feed(data)
                session.tick()
                if once and session.logouts:
                    return
        except (serial.SerialException, OSError, EOFError) as exc:
            log.warning("console_line_lost", line=line.name, error=str(exc))
        finally:
            session.hangup()
            line.close()
        if once:
            return
