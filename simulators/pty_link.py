"""The device end of a serial line, and the base class of every serial simulator.

`PtyLink` owns a pty pair and publishes the slave under a stable symlink path,
like udev's /dev/serial/by-id links: the driver opens the link path, and an
"unplug" closes the pty and removes the link, a "replug" makes a new pty and
points the link at it, so the driver sees a real device loss and return.

`SerialSimulator` runs one thread that reads host bytes, calls the device
model (`on_bytes`, `on_tick`), and sends frames through `send`, where the
framing-level faults (drop, corrupt_crc, slow) are applied.
"""
from __future__ import annotations

import contextlib
import os
import random
import select
import shutil
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from simulators.faults import KINDS, Faults


class PtyLink:
    def __init__(self, link_path: str | Path | None = None):
        self._tmpdir = None if link_path else tempfile.mkdtemp(prefix="egate-pty-")
        self.path = str(link_path or Path(self._tmpdir) / "tty")
        self._master: int | None = None
        self._slave: int | None = None
        self._lock = threading.Lock()
        self.overruns = 0  # bytes dropped because the host did not read (like a UART overrun)

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def plug(self) -> None:
        with self._lock:
            if self._master is not None:
                return
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo, no line discipline: a serial line carries bytes
            os.set_blocking(master, False)
            tmp = f"{self.path}.new"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(os.ttyname(slave), tmp)
            os.replace(tmp, self.path)
            # We keep the slave open ourselves so the master never sees a hangup
            # while no host is connected.
            self._master, self._slave = master, slave

    def unplug(self) -> None:
        with self._lock:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            for fd in (self._master, self._slave):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._master = self._slave = None

    def close(self) -> None:
        self.unplug()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    def read(self, timeout: float) -> bytes:
        master = self._master
        if master is None:
            time.sleep(timeout)
            return b""
        try:
            ready, _, _ = select.select([master], [], [], timeout)
            return os.read(master, 4096) if ready else b""
        except (OSError, ValueError):  # unplugged under us, or no slave open: nothing to read
            return b""

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._master is None:
                return  # unplugged: bytes go nowhere, as on a real cable
            try:
                written = os.write(self._master, data)
            except BlockingIOError:
                written = 0
            except OSError:
                return
            self.overruns += len(data) - written


class SerialSimulator:
    """Base of serial device simulators: subclasses implement on_bytes/on_tick and call send()."""

    name = "serial-device"
    tick_s = 0.01
    supported_faults: tuple[str, ...] = tuple(KINDS)

    def __init__(self, link_path: str | Path | None = None, *, seed: int = 0):
        self.link = PtyLink(link_path)
        self.faults = Faults(self.supported_faults, on_change=self._fault_changed)
        self.rng = random.Random(seed)
        self.frames_sent = 0
        self.frames_dropped = 0
        self._jobs: list[Callable[[], None]] = []
        self._jobs_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._replug_at: float | None = None

    @property
    def path(self) -> str:
        """Where a driver opens this device (a pyserial URL)."""
        return self.link.path

    # -- lifecycle -------------------------------------------------------------
    def start(self):
        self.link.plug()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"sim-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.link.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def run_in_sim_thread(self, job: Callable[[], None]) -> None:
        """Queue a change to the device model so only the simulator thread touches it."""
        with self._jobs_lock:
            self._jobs.append(job)

    # -- device model hooks --------------------------------------------------
    def on_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    def on_tick(self, now: float) -> None:
        pass

    def on_replug(self) -> None:
        """The device powered up again after an unplug."""

    def corrupt(self, frame: bytes) -> bytes:
        """Make the frame's checksum wrong (default: flip a bit of the last byte)."""
        return frame[:-1] + bytes([frame[-1] ^ 0x01])

    def garbage(self, nbytes: int) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(nbytes))

    def control(self, request: dict) -> dict:
        """Control-socket entry point: faults plus the subclass's commands."""
        return self.faults.control(request, self.command_table())

    def command_table(self) -> dict[str, Callable]:
        return {}

    # -- sending -----------------------------------------------------------------
    def send(self, frame: bytes) -> None:
        """Send one frame to the host, through the active faults."""
        if self.faults.consume("drop"):
            self.frames_dropped += 1
            return
        if self.faults.consume("corrupt_crc"):
            frame = self.corrupt(frame)
        slow = self.faults.active("slow")
        if slow and slow["delay_s"] > 0:
            self._stop.wait(slow["delay_s"])
        self.link.write(frame)
        self.frames_sent += 1

    # -- thread --------------------------------------------------------------------
    def _fault_changed(self, name: str, params: dict | None) -> None:
        if name == "unplug":
            if params is not None:
                duration = params.get("duration_s")
                self.run_in_sim_thread(lambda: self._unplug(duration))
            else:
                self.run_in_sim_thread(self._replug)
        elif name == "garbage" and params is not None:
            noise = self.garbage(params["nbytes"])
            self.run_in_sim_thread(lambda: self.link.write(noise))
            self.faults.clear("garbage")  # a burst, not a state

    def _unplug(self, duration: float | None) -> None:
        self.link.unplug()
        self._replug_at = None if duration is None else time.monotonic() + duration

    def _replug(self) -> None:
        self._replug_at = None
        if not self.link.plugged:
            self.link.plug()
            self.on_replug()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._jobs_lock:
                jobs, self._jobs = self._jobs, []
            for job in jobs:
                job()
            if self._replug_at is not None and time.monotonic() >= self._replug_at:
                self.faults.clear("unplug")
                self._replug()
            data = self.link.read(self.tick_s)
            if data:
                self.on_bytes(data)
            self.on_tick(time.monotonic())
