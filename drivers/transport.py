"""Thin serial transport shared by every serial driver.

One reader thread owns the port: it feeds received bytes into a sans-IO
protocol object (`feed(bytes) -> list[event]`) and hands the events to the
driver's callback on that same thread, so the driver can answer at once (ACKs,
keep-alives) without waiting on the event loop; the driver then passes typed
events to gate logic through its `EventSink` (`core.component`).

Port loss (read/write error, EOF, device node gone, or a hotplug monitor
calling `lost()`) is reported at once through `on_link(False, reason)`; the
thread then reopens the port with exponential backoff and reports
`on_link(True, "connected")`, on which the driver resynchronises its state
(e.g. asks the device for a full status).  The transport never raises into
the reader thread's caller and never blocks a writer for longer than the
port's write timeout.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import serial

from core import logs
from core.errors import DeviceError
from core.settings import opt

log = logs.get("transport")


@dataclass(frozen=True, kw_only=True)
class SerialPort:
    """Settings of any serial device: where it is and how to find it again after a replug."""

    port: str = opt(doc="pyserial URL or device path")
    baudrate: int = opt(115200, min=1200, max=3_000_000)
    usb_id: str = opt("", doc="VID:PID[:serial] for hotplug matching; empty disables")


class StreamProtocol(Protocol):
    """What the transport needs of a sans-IO protocol."""

    def feed(self, data: bytes) -> list[Any]: ...

    def reset(self) -> None:
        """Forget any partial frame: called on every (re)connection."""


@dataclass
class TransportStats:
    bytes_in: int = 0
    bytes_out: int = 0
    connects: int = 0
    losses: int = 0
    protocol_crashes: int = 0  # a protocol's feed() raised: counted, bytes dropped, never fatal
    callback_errors: int = 0  # the driver's callback raised: counted, never fatal


class SerialTransport:
    def __init__(
        self,
        url: str,
        protocol: StreamProtocol,
        on_events: Callable[[list[Any]], None],
        on_link: Callable[[bool, str], None] = lambda up, reason: None,
        *,
        baudrate: int = 115200,
        read_timeout_s: float = 0.02,
        write_timeout_s: float = 0.5,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
        name: str = "serial",
    ):
        self.url = url
        self.protocol = protocol
        self.on_events = on_events
        self.on_link = on_link
        self.baudrate = baudrate
        self.read_timeout_s = read_timeout_s
        self.write_timeout_s = write_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.name = name
        self.stats = TransportStats()
        self._port: serial.SerialBase | None = None
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._lost_reason: str | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: transport already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"transport-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    @property
    def connected(self) -> bool:
        return self._port is not None

    def lost(self, reason: str) -> None:
        """Declare the port gone (e.g. a udev 'remove' event); the reader thread reports and reconnects."""
        self._lost_reason = reason

    # -- writing ---------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Send bytes now; raises DeviceError if the port is down or the write fails."""
        with self._write_lock:
            port = self._port
            if port is None:
                raise DeviceError(f"{self.name}: port {self.url} is not connected")
            try:
                port.write(data)
            except (serial.SerialException, OSError) as exc:
                self._lost_reason = f"write failed: {exc}"
                raise DeviceError(f"{self.name}: write to {self.url} failed: {exc}") from exc
            self.stats.bytes_out += len(data)

    # -- reader thread -------------------------------------------------------
    def _run(self) -> None:
        delay = self.backoff_initial_s
        while not self._stop.is_set():
            if self._port is None:
                if self._open():
                    delay = self.backoff_initial_s
                else:
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.backoff_max_s)
                continue
            if self._lost_reason is not None:
                self._report_loss(self._lost_reason)
                continue
            try:
                data = self._port.read(max(1, self._port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                self._report_loss(f"read failed: {exc}")
                continue
            if not data:
                continue
            self.stats.bytes_in += len(data)
            try:
                events = self.protocol.feed(data)
            except Exception as exc:  # a protocol bug must not kill the port
                self.stats.protocol_crashes += 1
                log.error("protocol_crash", port=self.name, error=f"{type(exc).__name__}: {exc}")
                self.protocol.reset()
                continue
            if events:
                self._deliver(self.on_events, events)

    def _open(self) -> bool:
        try:
            port = serial.serial_for_url(
                self.url, baudrate=self.baudrate, timeout=self.read_timeout_s,
                write_timeout=self.write_timeout_s, exclusive=True,
            )
            port.reset_input_buffer()  # bytes queued while nobody listened are stale
        except (serial.SerialException, OSError, ValueError) as exc:
            log.debug("open_failed", port=self.name, url=self.url, error=str(exc))
            return False
        self.protocol.reset()
        with self._write_lock:
            self._port = port
            self._lost_reason = None
        self.stats.connects += 1
        log.info("port_up", port=self.name, url=self.url, connects=self.stats.connects)
        self._deliver(self.on_link, True, "connected")
        return True

    def _report_loss(self, reason: str) -> None:
        self._close()
        self.stats.losses += 1
        log.warning("port_down", port=self.name, url=self.url, reason=reason)
        self._deliver(self.on_link, False, reason)

    def _deliver(self, fn: Callable, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # the reader thread must outlive a driver bug
            self.stats.callback_errors += 1
            log.error("callback_failed", port=self.name, error=f"{type(exc).__name__}: {exc}")

    def _close(self) -> None:
        with self._write_lock:
            port, self._port = self._port, None
            self._lost_reason = None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError):
                pass
