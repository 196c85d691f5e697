"""Hotplug: notice at once when a serial device goes away or comes back.

Devices are identified by `VID:PID[:serial]` from config (`usb_id`, hex VID and
PID as udev prints them, e.g. `0403:6001:A10K3XYZ`).  With udev (a running
udevd: /run/udev/control) a pyudev monitor watches the `tty` subsystem and
matches ID_VENDOR_ID / ID_MODEL_ID / ID_SERIAL_SHORT.  Where udev events are
not available (containers, chroots) the monitor falls back to polling each
configured port path, reading the USB identity from sysfs when there is one,
and logs that it did.

On removal the watch's `on_removed` runs at once (wire it to
`SerialTransport.lost`, see `watch_transport`); the transport then reconnects
with backoff and the driver resynchronises on its own link-up.
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from core import logs
from core.component import Component, ComponentStatus
from core.errors import ParseError

log = logs.get("hotplug")
_USB_ID = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{4})(?::(\S+))?$")


@dataclass(frozen=True)
class UsbId:
    vid: str  # 4 lowercase hex digits
    pid: str
    serial: str | None = None

    @classmethod
    def parse(cls, text: str) -> UsbId:
        m = _USB_ID.match(text or "")
        if not m:
            raise ParseError(f"usb_id {text!r}: expected VID:PID[:serial] with 4 hex digits each, e.g. 0403:6001")
        return cls(m[1].lower(), m[2].lower(), m[3])

    def matches(self, vid: str | None, pid: str | None, serial: str | None) -> bool:
        return ((vid or "").lower(), (pid or "").lower()) == (self.vid, self.pid) and (
            self.serial is None or serial == self.serial)

    def matches_udev(self, properties: Mapping[str, str]) -> bool:
        return self.matches(properties.get("ID_VENDOR_ID"), properties.get("ID_MODEL_ID"),
                            properties.get("ID_SERIAL_SHORT"))


def sysfs_usb_id(port: str, sys_root: str = "/sys") -> tuple[str, str, str | None] | None:
    """(vid, pid, serial) of the USB device behind a tty node, read from sysfs; None if not USB."""
    try:
        node = Path(os.path.realpath(port)).name
        device = Path(os.path.realpath(f"{sys_root}/class/tty/{node}/device"))
    except OSError:
        return None
    for d in [device, *device.parents]:
        if (d / "idVendor").is_file():
            read = lambda f: (d / f).read_text().strip() if (d / f).is_file() else None  # noqa: E731
            return read("idVendor"), read("idProduct"), read("serial")
        if str(d) in ("/", sys_root):
            break
    return None


@dataclass
class Watch:
    name: str
    port: str
    usb_id: UsbId | None
    on_removed: Callable[[str], None]
    on_added: Callable[[str], None]
    present: bool = False


def udev_available() -> bool:
    return os.path.exists("/run/udev/control")


class HotplugMonitor(Component):
    name = "hotplug"

    def __init__(self, *, poll_interval_s: float = 0.1, use_udev: bool | None = None):
        self.poll_interval_s = poll_interval_s
        self.use_udev = udev_available() if use_udev is None else use_udev
        self.mode = "udev" if self.use_udev else "polling"
        self.watches: list[Watch] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer = None

    def add(self, name: str, port: str, usb_id: str | UsbId | None = None, *,
            on_removed: Callable[[str], None] = lambda reason: None,
            on_added: Callable[[str], None] = lambda reason: None) -> Watch:
        uid = UsbId.parse(usb_id) if isinstance(usb_id, str) and usb_id else usb_id or None
        watch = Watch(name, port, uid, on_removed, on_added)
        watch.present = self.probe(watch)[0]
        with self._lock:
            self.watches.append(watch)
        return watch

    def start(self) -> None:
        if self.use_udev:
            import pyudev
            context = pyudev.Context()
            monitor = pyudev.Monitor.from_netlink(context)
            monitor.filter_by("tty")
            self._observer = pyudev.MonitorObserver(monitor, callback=self.on_udev_event, name="hotplug-udev")
            self._observer.start()
            log.info("hotplug_udev", watches=[w.name for w in self.watches])
        else:
            log.warning("hotplug_polling_fallback", reason="udev events not available (no /run/udev/control)",
                        interval_s=self.poll_interval_s, watches=[w.name for w in self.watches])
        # Polling also runs under udev, slowly, as a safety net for missed events.
        self._thread = threading.Thread(target=self._poll_loop, name="hotplug-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def status(self) -> ComponentStatus:
        with self._lock:
            absent = [w.name for w in self.watches if not w.present]
        return ComponentStatus(self.name, not absent, f"{self.mode}: " + (f"absent {', '.join(absent)}" if absent
                                                                           else "every watched device present"))

    # -- udev ----------------------------------------------------------------
    def on_udev_event(self, device) -> None:
        """pyudev callback: `device.action` is add/remove, properties carry the USB identity."""
        action = getattr(device, "action", None)
        if action not in ("add", "remove"):
            return
        props = device.properties
        nodes = {device.device_node, *getattr(device, "device_links", ())} - {None}
        with self._lock:
            watches = list(self.watches)
        for w in watches:
            hit = w.usb_id.matches_udev(props) if w.usb_id else os.path.realpath(w.port) in nodes or w.port in nodes
            if hit:
                self._set_present(w, action == "add", f"udev {action} {device.device_node}")

    # -- polling -------------------------------------------------------------
    def _poll_loop(self) -> None:
        interval = self.poll_interval_s if not self.use_udev else max(self.poll_interval_s, 2.0)
        while True:
            with self._lock:
                watches = list(self.watches)
            for w in watches:
                present, why = self.probe(w)
                self._set_present(w, present, why)
            if self._stop.wait(interval):
                return

    @staticmethod
    def probe(w: Watch) -> tuple[bool, str]:
        if not os.path.exists(w.port):
            return False, f"{w.port} is gone"
        if w.usb_id is not None:
            found = sysfs_usb_id(w.port)
            if found is not None and not w.usb_id.matches(*found):
                return False, f"{w.port} is now another device ({':'.join(x or '' for x in found)})"
        return True, f"{w.port} is present"

    def _set_present(self, w: Watch, present: bool, why: str) -> None:
        with self._lock:
            changed = w.present != present
            w.present = present
        if not changed:
            return
        if present:
            log.info("device_added", device=w.name, reason=why)
            w.on_added(why)
        else:
            log.warning("device_removed", device=w.name, reason=why)
            w.on_removed(why)


def watch_transport(monitor: HotplugMonitor, name: str, transport, usb_id: str | None = None) -> Watch:
    """Report the transport's port down the moment the device is removed."""
    return monitor.add(name, transport.url, usb_id or None, on_removed=transport.lost)


def watch_configured(monitor: HotplugMonitor, devices, transports: dict) -> list[Watch]:
    """Watch each named transport with the `usb_id` configured for it under `devices`
    (the gate's `devices` settings: door, mrz_reader, fingerprint)."""
    return [watch_transport(monitor, name, transport, getattr(devices, name).usb_id)
            for name, transport in transports.items()]
