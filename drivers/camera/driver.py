"""Camera driver: OpenCV VideoCapture over a device index, a video file or a URL.

One grabber thread owns the capture and keeps only the latest frame, so a slow
consumer never sees a backlog and never blocks the camera. The caller reads
`latest()` or waits with `wait_frame(timeout_s)`: both return within their
deadline whatever the camera does.

A dead stream (open fails, read fails, or FFmpeg's read timeout fires on a
stall) closes the capture and reopens it with exponential backoff. If a backend
ignores its timeout and a read hangs, the grabber is abandoned (it exits when
the read finally returns) and a fresh one takes over. A file source is replayed
from the start at its end.

Network sources go through the FFmpeg backend with open/read timeouts
(`CAP_PROP_OPEN_TIMEOUT_MSEC`, `CAP_PROP_READ_TIMEOUT_MSEC`); MJPEG over HTTP
(multipart/x-mixed-replace) is read by FFmpeg's mpjpeg demuxer.

    cam = Camera.from_config(cfg.devices.camera, emit=sink).start()   # CameraStatus events to the sink
    frame = cam.wait_frame(timeout_s=2)        # Frame(image=BGR uint8, seq, at)
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from core import logs
from core.component import CheckResult, Component, ComponentStatus, EventSink, discard
from core.errors import DeviceError

log = logs.get("camera")


class CameraError(DeviceError):
    """No frame within the deadline: the camera is down, stalled or not started."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR uint8 (height, width, 3)
    seq: int           # frames grabbed since start(), across reconnects
    at: float          # time.monotonic() when grabbed


@dataclass(frozen=True)
class CameraStatus:
    """The camera's event: its stream changed state (connecting, streaming, down, stopped), and why."""
    status: str
    reason: str


@dataclass
class CameraCounters:
    frames: int = 0
    opens: int = 0
    open_failures: int = 0
    read_failures: int = 0   # a read returned no frame (stall timeout, cut connection, damaged data, EOF)
    reconnects: int = 0
    hung_reads: int = 0      # a read ignored its timeout; its grabber was abandoned


def _parse_source(source: int | str) -> int | str:
    if isinstance(source, int):
        return source
    text = str(source)
    return int(text) if text.isdigit() else text


class Camera(Component):
    name = "camera"

    def __init__(self, source: int | str, *, width: int | None = None, height: int | None = None,
                 open_timeout_s: float = 3.0, read_timeout_s: float = 1.0,
                 backoff_initial_s: float = 0.1, backoff_max_s: float = 5.0,
                 emit: EventSink = discard):
        self.source = _parse_source(source)
        self.size = (width, height)  # asked of a local device; streams and files come as they are
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.emit = emit
        self.counters = CameraCounters()
        self.stream = "stopped"   # stopped | connecting | streaming | down
        self._frame: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._generation = 0
        self._read_started: float | None = None  # when the current grabber entered read()
        self._supervisor: threading.Thread | None = None
        self._grabber: threading.Thread | None = None

    @classmethod
    def from_config(cls, cfg, **kw) -> Camera:
        """From `devices.camera` (drivers.camera.config.CameraConfig)."""
        return cls(cfg.source, width=cfg.width, height=cfg.height, **kw)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Camera:
        if self._supervisor is not None:
            raise RuntimeError("camera already started")
        self._stop.clear()
        self._set_status("connecting", "started")
        self._spawn_grabber()
        self._supervisor = threading.Thread(target=self._supervise, name="camera-supervisor", daemon=True)
        self._supervisor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._generation += 1
            self._cond.notify_all()
        if self._supervisor is not None:
            self._supervisor.join(timeout=2)
            self._supervisor = None
        # Wait out the read in progress (it ends at the next frame or its timeout): a thread left
        # inside FFmpeg when the interpreter exits aborts the whole process.
        if self._grabber is not None:
            self._grabber.join(timeout=self.read_timeout_s + 1.0)
            self._grabber = None
        self._set_status("stopped", "stopped")

    def stats(self) -> dict[str, int]:
        return asdict(self.counters)

    def status(self) -> ComponentStatus:
        return ComponentStatus(self.name, self.stream == "streaming", f"{self._name}: {self.stream}",
                               self.stats())

    def self_check(self, timeout_s: float = 3.0) -> CheckResult:
        try:
            frame = self.wait_frame(0, timeout_s=timeout_s)
        except CameraError as exc:
            return CheckResult(self.name, False, str(exc))
        return CheckResult(self.name, True, f"{frame.image.shape[1]}x{frame.image.shape[0]}")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- frames ------------------------------------------------------------------------
    def latest(self, max_age_s: float | None = None) -> Frame | None:
        """The newest frame, or None if there is none (or it is older than max_age_s)."""
        with self._cond:
            frame = self._frame
        if frame is None or (max_age_s is not None and time.monotonic() - frame.at > max_age_s):
            return None
        return frame

    def wait_frame(self, after_seq: int = 0, timeout_s: float = 1.0) -> Frame:
        """The first frame newer than `after_seq`; CameraError after timeout_s."""
        with self._cond:
            ok = self._cond.wait_for(lambda: (self._frame is not None and self._frame.seq > after_seq)
                                     or self._stop.is_set(), timeout_s)
            frame = self._frame
        if not ok or self._stop.is_set():
            raise CameraError(f"camera {self._name}: no new frame within {timeout_s}s (status {self.stream})")
        return frame

    @property
    def _name(self) -> str:
        """The source for logs and errors, without any user:password in a URL."""
        return re.sub(r"//[^/@]*@", "//***@", str(self.source))

    # -- grabbing ----------------------------------------------------------------------
    def _spawn_grabber(self) -> None:
        with self._cond:
            self._generation += 1
            generation = self._generation
            self._read_started = None
        grabber = threading.Thread(target=self._grab, args=(generation,), name=f"camera-grab-{generation}", daemon=True)
        self._grabber = grabber
        grabber.start()

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _open(self) -> cv2.VideoCapture:
        if isinstance(self.source, int):
            cap = cv2.VideoCapture(self.source)
            width, height = self.size
            if cap.isOpened() and width and height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            return cap
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000)]
        return cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, params)

    def _grab(self, generation: int) -> None:
        delay = self.backoff_initial_s
        while self._current(generation):
            cap = self._open()
            if not cap.isOpened():
                cap.release()
                self.counters.open_failures += 1
                self._set_status("down", "cannot open")
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            self.counters.opens += 1
            try:
                delay = self._read_until_failure(cap, generation, delay)
            finally:
                cap.release()
            if self._current(generation):
                self.counters.reconnects += 1
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max_s)

    def _read_until_failure(self, cap: cv2.VideoCapture, generation: int, delay: float) -> float:
        while self._current(generation):
            with self._cond:
                self._read_started = time.monotonic()
            ok, image = cap.read()
            with self._cond:
                self._read_started = None
                if not self._current(generation):
                    return delay
                if not ok or image is None:
                    self.counters.read_failures += 1
                    break
                self.counters.frames += 1
                self._frame = Frame(image, self.counters.frames, time.monotonic())
                self._cond.notify_all()
            if self.stream != "streaming":
                self._set_status("streaming", "frames arriving")
            delay = self.backoff_initial_s  # a working stream resets the backoff
        self._set_status("down", "stream ended or stalled")
        return delay

    def _supervise(self) -> None:
        """Replace a grabber stuck in a read that ignores its timeout."""
        limit = self.read_timeout_s * 3 + 1.0
        while not self._stop.wait(0.1):
            with self._cond:
                started = self._read_started
            if started is not None and time.monotonic() - started > limit:
                self.counters.hung_reads += 1
                log.warning("camera_read_hung", source=self._name, seconds=round(time.monotonic() - started, 1))
                self._set_status("down", "read hung")
                self._spawn_grabber()

    def _set_status(self, status: str, reason: str) -> None:
        if status == self.stream:
            return
        self.stream = status
        log.info("camera_status", source=self._name, status=status, reason=reason)
        try:
            self.emit(CameraStatus(status, reason))
        except Exception as exc:  # a sink bug must not kill the grabber
            log.error("camera_status_callback_failed", error=f"{type(exc).__name__}: {exc}")
