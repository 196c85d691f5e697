"""Fingerprint scanner driver: the packet protocol over a serial transport, blocking calls with deadlines.

Every call is bounded: a command is retried `retries` times after a timeout, a
damaged-command report (PACKET_ERROR) or an incomplete image, then fails with a
typed `ScannerError`. Garbage, bad checksums and stray packets are skipped by
the parser and counted (`stats()`); nothing the device sends can crash or
hang the caller. When the port comes back after a loss the next call first
resynchronises (HANDSHAKE, READ_PARAMS) - the device lost its image buffer.

    scanner = FingerprintScanner.from_config(cfg.devices.fingerprint, emit=sink).start()  # LinkUp/LinkDown
    scanner.connect(timeout_s=2)
    image = scanner.capture(timeout_s=10)     # numpy uint8 (height, width), 500 ppi
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from drivers.fingerprint.protocol import (
    BROADCAST, Answer, Code, FingerState, HostProtocol, Image, ImageIncomplete, Instruction, LedColour, LedMode, Params,
)
from core import logs
from core.component import CheckResult, Component, ComponentStatus, EventSink, LinkDown, LinkUp, discard
from core.errors import DeviceError
from drivers.transport import SerialTransport

log = logs.get("drivers.fingerprint")


class ScannerError(DeviceError):
    """The scanner did not do what was asked (no answer, refused, port down)."""


class ScannerTimeout(ScannerError):
    pass


class NoFinger(ScannerError):
    """No finger was on the glass before the deadline."""


class CaptureCancelled(ScannerError):
    pass


@dataclass
class DriverCounters:
    timeouts: int = 0
    retries: int = 0
    packet_errors: int = 0   # the device said our command arrived damaged
    refusals: int = 0        # the device answered with a failure code
    resyncs: int = 0
    link_losses: int = 0


class FingerprintScanner(Component):
    name = "fingerprint"

    def __init__(self, url: str, *, address: int = BROADCAST, command_timeout_s: float = 1.0,
                 capture_timeout_s: float = 3.0, upload_timeout_s: float = 3.0, retries: int = 2,
                 poll_s: float = 0.05, emit: EventSink = discard, baudrate: int = 115200,
                 backoff_initial_s: float = 0.05, backoff_max_s: float = 2.0):
        self.protocol = HostProtocol(address)
        self.command_timeout_s = command_timeout_s
        self.capture_timeout_s = capture_timeout_s
        self.upload_timeout_s = upload_timeout_s
        self.retries = retries
        self.poll_s = poll_s
        self.driver_counters = DriverCounters()
        self.emit = emit
        self._events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()  # one command at a time: the device is half-duplex
        self._synced = False
        self._stopped = threading.Event()
        self._cancelled = threading.Event()
        # Answers go straight to our queue on the reader thread (blocking calls wait on it);
        # only link changes go to the sink.
        self.transport = SerialTransport(url, self.protocol, self._on_events, self._on_link, name="fingerprint",
                                         baudrate=baudrate, backoff_initial_s=backoff_initial_s,
                                         backoff_max_s=backoff_max_s)

    @classmethod
    def from_config(cls, cfg, **kw) -> FingerprintScanner:
        """From `devices.fingerprint` (drivers.fingerprint.config.FingerprintConfig)."""
        return cls(cfg.port, baudrate=cfg.baudrate, **kw)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> FingerprintScanner:
        self._stopped.clear()
        self.transport.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._cancelled.set()
        self.transport.stop()

    @property
    def connected(self) -> bool:
        return self.transport.connected

    @property
    def params(self) -> Params | None:
        return self.protocol.params

    def connect(self, timeout_s: float = 2.0) -> Params:
        """Wait for the port, then handshake and read the sensor geometry."""
        deadline = time.monotonic() + timeout_s
        while not self.transport.connected:
            if time.monotonic() >= deadline or self._stopped.is_set():
                raise ScannerTimeout(f"fingerprint scanner port {self.transport.url} did not open in {timeout_s}s")
            self._stopped.wait(0.01)
        with self._lock:
            self._ensure_synced()
        return self.protocol.params

    def stats(self) -> dict[str, int]:
        parser = self.protocol.parser
        return {**asdict(self.driver_counters), "garbage_bytes": parser.garbage_bytes,
                "checksum_errors": parser.checksum_errors, "length_errors": parser.length_errors,
                "foreign_packets": parser.other_errors,
                "unexpected": self.protocol.unexpected, "incomplete_images": self.protocol.incomplete_images}

    def status(self) -> ComponentStatus:
        up = self.transport.connected
        return ComponentStatus(self.name, up, f"{self.transport.url}: {'link up' if up else 'link down'}", self.stats())

    def self_check(self, timeout_s: float = 3.0) -> CheckResult:
        try:
            params = self.connect(timeout_s=timeout_s)
        except ScannerError as exc:
            return CheckResult(self.name, False, str(exc))
        return CheckResult(self.name, True, f"{params.width}x{params.height} at {params.ppi} ppi")

    # -- operations ------------------------------------------------------------------
    def handshake(self) -> None:
        with self._lock:
            self._ok(self._transact(self.protocol.handshake, Answer))

    def finger_present(self) -> bool:
        with self._lock:
            self._ensure_synced()
            return self._transact(self.protocol.finger_detect, FingerState).present

    def set_led(self, mode: LedMode, colour: LedColour = LedColour.BLUE) -> None:
        with self._lock:
            self._ensure_synced()
            self._ok(self._transact(lambda: self.protocol.led(mode, colour), Answer))

    def capture(self, timeout_s: float = 10.0) -> np.ndarray:
        """Wait up to `timeout_s` for a finger, capture it and upload the image (uint8, height x width).

        Between finger polls other calls (e.g. set_led) may run; `cancel()` ends
        the wait at once. The capture and upload that follow have their own
        bounded timeouts.
        """
        deadline = time.monotonic() + timeout_s
        self._cancelled.clear()
        while True:
            with self._lock:
                self._ensure_synced()
                if self._transact(self.protocol.finger_detect, FingerState).present:
                    answer = self._transact(self.protocol.capture, Answer, self.capture_timeout_s)
                    if answer.code != Code.NO_FINGER:  # NO_FINGER: lifted during the exposure; wait again
                        self._ok(answer)
                        image = self._upload()
                        return np.frombuffer(image.pixels, np.uint8).reshape(image.height, image.width).copy()
            if time.monotonic() + self.poll_s > deadline:
                raise NoFinger(f"no finger on the scanner within {timeout_s}s")
            if self._cancelled.wait(self.poll_s) or self._stopped.is_set():
                raise CaptureCancelled("capture cancelled")

    def cancel(self) -> None:
        """End a capture() that is waiting for a finger (the passage was aborted)."""
        self._cancelled.set()

    # -- internals -------------------------------------------------------------------
    def _upload(self) -> Image:
        for attempt in range(self.retries + 1):
            if attempt:
                self.driver_counters.retries += 1
            self._ok(self._transact(self.protocol.upload_image, Answer))
            try:
                event = self._wait_for((Image, ImageIncomplete), self.upload_timeout_s)
            except ScannerTimeout:
                log.warning("image_upload_timeout", attempt=attempt)
                continue
            if isinstance(event, Image):
                return event
            log.warning("image_incomplete", received=event.received, expected=event.expected, attempt=attempt)
        raise ScannerError(f"image upload failed {self.retries + 1} times")

    def _ensure_synced(self) -> None:
        if self._synced:
            return
        self._ok(self._transact(self.protocol.handshake, Answer))
        params = self._transact(self.protocol.read_params, Params)
        self.driver_counters.resyncs += 1
        self._synced = True
        log.info("scanner_ready", width=params.width, height=params.height, ppi=params.ppi)

    def _transact(self, encode: Callable[[], bytes], expect: type, timeout_s: float | None = None):
        """Send a command and return its answer event; retry on timeout or a damaged-command report."""
        timeout_s = self.command_timeout_s if timeout_s is None else timeout_s
        for attempt in range(self.retries + 1):
            if attempt:
                self.driver_counters.retries += 1
            self._drain()
            try:
                self.transport.write(encode())
            except DeviceError as exc:
                raise ScannerError(str(exc)) from exc
            try:
                event = self._wait_for((expect, Answer), timeout_s)
            except ScannerTimeout:
                continue
            if isinstance(event, Answer) and event.code == Code.PACKET_ERROR:
                self.driver_counters.packet_errors += 1
                continue
            return event
        raise ScannerTimeout(f"fingerprint scanner did not answer after {self.retries + 1} tries")

    def _wait_for(self, kinds: tuple[type, ...], timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if not self.transport.connected:
                raise ScannerError(f"fingerprint scanner port {self.transport.url} went down")
            if remaining <= 0:
                self.driver_counters.timeouts += 1
                raise ScannerTimeout(f"no answer within {timeout_s}s")
            try:
                event = self._events.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                continue
            if isinstance(event, kinds):
                return event
            # FramingError / Unexpected: already counted by the protocol; keep waiting.

    def _drain(self) -> None:
        while True:
            try:
                self._events.get_nowait()
            except queue.Empty:
                return

    def _ok(self, answer: Answer) -> Answer:
        if not answer.ok:
            self.driver_counters.refusals += 1
            name = Code(answer.code).name if answer.code in Code._value2member_map_ else f"{answer.code:#04x}"
            raise ScannerError(f"scanner refused {Instruction(answer.instruction).name}: {name}")
        return answer

    # transport callbacks (reader thread)
    def _on_events(self, events: list) -> None:
        for event in events:
            self._events.put(event)

    def _on_link(self, up: bool, reason: str) -> None:
        if not up:
            self.driver_counters.link_losses += 1
        self._synced = False  # after any (re)connection the device state is unknown
        self.emit(LinkUp() if up else LinkDown(reason))
