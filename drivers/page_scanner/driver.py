"""PageScanner: a document camera or flatbed-style reader over OpenCV capture, read for its MRZ.

It emits the serial MRZ reader's events (`drivers.mrz_reader`), so the gate needs no second path:
DocumentPresent when a page comes onto the glass, then one MrzRead (lines, the parsed MRZ, and how
it was read: `agreement` agree | single | conflict, the `alternatives` to try against the chip,
`partial` when glare hid a line) or ReadError after `attempts` frames that gave no MRZ,
DocumentRemoved when it goes; and the camera's CameraStatus events (link state).

Capture is `drivers.camera.driver.Camera` (device index, file or stream; reconnects with backoff);
a reader thread takes each new frame, decides present/absent from the share of bright pixels (the
glass is dark, paper is not), waits for a still frame, and runs `MrzPageReader` on it. The models
load in that thread, so `start()` does not block.
"""
from __future__ import annotations

import threading
from collections import Counter

import cv2
import numpy as np

from core import logs
from core.component import CheckResult, Component, ComponentStatus, EventSink, discard
from drivers.camera.driver import Camera, CameraError
from drivers.mrz_reader.driver import MrzRead
from drivers.mrz_reader.protocol import DocumentPresent, DocumentRemoved, ReadError

log = logs.get("page_scanner")

STILL = 6.0        # mean absolute grey difference (thumbnail) below which two frames are one still page


def mrz_read(decision) -> MrzRead | None:
    """The serial reader's event for a page decision (None when the page gave no MRZ)."""
    if decision.mrz is None:
        return None
    return MrzRead(tuple(decision.mrz.lines), decision.mrz, None, agreement=decision.agreement,
                   alternatives=tuple(decision.candidates[1:]), partial=decision.partial)


class PageScanner(Component):
    name = "page_scanner"

    def __init__(self, source, *, width: int | None = None, height: int | None = None, presence: float = 0.10,
                 attempts: int = 3, reader=None, emit: EventSink = discard):
        self.camera = Camera(source, width=width, height=height, emit=emit)
        self.presence = presence
        self.attempts = attempts
        self.emit = emit
        self.counters: Counter[str] = Counter()
        self.document_present = False
        self.last = None                 # the last PageResult, for diagnostics
        self._reader = reader
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @classmethod
    def from_config(cls, cfg, **kw) -> PageScanner:
        """From `devices.page_scanner` (drivers.page_scanner.config.PageScannerConfig)."""
        return cls(cfg.source, width=cfg.width, height=cfg.height, presence=cfg.presence, attempts=cfg.attempts, **kw)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> PageScanner:
        self._stop.clear()
        self.camera.start()
        self._thread = threading.Thread(target=self._run, name="page-scanner", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.camera.stop()

    def stats(self) -> dict[str, int]:
        return dict(self.counters) | self.camera.stats()

    def status(self) -> ComponentStatus:
        cam = self.camera.status()
        healthy = cam.healthy and self._ready.is_set()
        detail = cam.detail if self._ready.is_set() else f"{cam.detail}; MRZ models loading"
        return ComponentStatus(self.name, healthy, detail, self.stats())

    def self_check(self, timeout_s: float = 3.0) -> CheckResult:
        if not self._ready.wait(timeout_s):
            return CheckResult(self.name, False, "MRZ models not loaded")
        return self.camera.self_check(timeout_s)

    # -- reading ---------------------------------------------------------------------
    def _load(self):
        if self._reader is None:
            from drivers.page_scanner.pipeline import MrzPageReader
            self._reader = MrzPageReader()
        self._ready.set()
        return self._reader

    def page_present(self, image: np.ndarray) -> bool:
        thumb = cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image, (64, 64),
                           interpolation=cv2.INTER_AREA)
        return float((thumb > 128).mean()) >= self.presence

    def _run(self) -> None:
        try:
            reader = self._load()
        except Exception as exc:   # a missing or tampered model: the scanner stays unhealthy
            log.error("page_scanner_models_failed", error=f"{type(exc).__name__}: {exc}")
            self.counters["model_errors"] += 1
            return
        seq, previous, tries, done = 0, None, 0, False
        while not self._stop.is_set():
            try:
                frame = self.camera.wait_frame(seq, timeout_s=1.0)
            except CameraError:
                continue
            seq = frame.seq
            present = self.page_present(frame.image)
            if not present:
                if self.document_present:
                    self.document_present, done, tries = False, False, 0
                    self._emit(DocumentRemoved())
                previous = None
                continue
            if not self.document_present:
                self.document_present = True
                self._emit(DocumentPresent())
            thumb = cv2.resize(frame.image, (96, 96), interpolation=cv2.INTER_AREA).astype(np.int16)
            still = previous is not None and float(np.abs(thumb - previous).mean()) < STILL
            previous = thumb
            if done or not still:
                continue
            result = reader.read(frame.image)
            self.last = result
            self.counters[f"read_{result.decision.agreement}"] += 1
            read = mrz_read(result.decision)
            if read is not None:
                done = True
                log.info("page_read", agreement=result.decision.agreement, partial=result.decision.partial,
                         angle=result.angle, seconds=round(result.timings_s.get("total", 0.0), 3))
                self._emit(read)
                continue
            tries += 1
            if tries >= self.attempts:
                done = True
                self._emit(ReadError())

    def _emit(self, ev) -> None:
        try:
            self.emit(ev)
        except Exception as exc:  # a consumer's bug must not stop the scanner
            self.counters["handler_errors"] += 1
            log.error("page_scanner_event_handler_failed", event=type(ev).__name__, error=f"{type(exc).__name__}: {exc}")
