"""Hotplug: VID:PID[:serial] matching, udev events, polling fallback in containers, wiring to the transport."""
from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from drivers.door.protocol import Link
from drivers.hotplug import (
    HotplugMonitor, UsbId, sysfs_usb_id, udev_available, watch_configured, watch_transport,
)
from drivers.transport import SerialTransport
from core.errors import ParseError
from simulators.door import DoorSimulator
from tests.serial_helpers import Recorder, wait_for


def test_usb_id_parse_and_match():
    uid = UsbId.parse("0403:6001:A10K3XYZ")
    assert uid == UsbId("0403", "6001", "A10K3XYZ")
    assert uid.matches_udev({"ID_VENDOR_ID": "0403", "ID_MODEL_ID": "6001", "ID_SERIAL_SHORT": "A10K3XYZ"})
    assert not uid.matches_udev({"ID_VENDOR_ID": "0403", "ID_MODEL_ID": "6001", "ID_SERIAL_SHORT": "OTHER"})
    assert UsbId.parse("10C4:EA60").matches_udev({"ID_VENDOR_ID": "10c4", "ID_MODEL_ID": "ea60"})
    for bad in ("", "0403", "0403:60", "zzzz:6001", "0403:6001:"):
        with pytest.raises(ParseError):
            UsbId.parse(bad)


def test_sysfs_usb_identity(tmp_path):
    usb = tmp_path / "devices" / "usb1" / "1-1"
    (usb / "1-1:1.0" / "ttyUSB0").mkdir(parents=True)
    (usb / "idVendor").write_text("0403\n")
    (usb / "idProduct").write_text("6001\n")
    (usb / "serial").write_text("A10K3XYZ\n")
    (tmp_path / "class" / "tty" / "ttyUSB0").mkdir(parents=True)
    os.symlink(usb / "1-1:1.0" / "ttyUSB0", tmp_path / "class" / "tty" / "ttyUSB0" / "device")
    assert sysfs_usb_id("/dev/ttyUSB0", str(tmp_path)) == ("0403", "6001", "A10K3XYZ")
    assert sysfs_usb_id("/dev/ttyS9", str(tmp_path)) is None


def test_container_falls_back_to_polling_and_says_so():
    assert not udev_available()  # this machine is a container: no udevd
    monitor = HotplugMonitor()
    with capture_logs() as logs:
        monitor.start()
        monitor.stop()
    assert monitor.mode == "polling"
    assert any(e["event"] == "hotplug_polling_fallback" and e["log_level"] == "warning" for e in logs)


def test_polling_reports_removal_and_return_and_drops_the_transport():
    with DoorSimulator(profile="zero-latency") as sim:
        links = Recorder()
        transport = SerialTransport(sim.path, Link(), lambda evs: None, links,
                                    backoff_initial_s=0.01, backoff_max_s=0.05)
        monitor = HotplugMonitor(poll_interval_s=0.02, use_udev=False)
        removed, added = Recorder(), Recorder()
        watch = watch_transport(monitor, "door", transport)
        monitor.add("door-observer", sim.path, on_removed=removed, on_added=added)
        transport.start()
        monitor.start()
        try:
            wait_for(lambda: transport.connected, what="connect")
            assert watch.present
            sim.faults.inject("unplug")
            wait_for(lambda: removed.snapshot(), timeout=0.5, what="removal noticed by polling")
            assert "is gone" in removed.snapshot()[0]
            wait_for(lambda: not transport.connected, what="transport down")
            sim.faults.clear("unplug")
            wait_for(lambda: added.snapshot(), what="return noticed")
            wait_for(lambda: transport.connected, what="transport reconnected")
        finally:
            monitor.stop()
            transport.stop()


def test_udev_events_matched_by_usb_id(tmp_path):
    monitor = HotplugMonitor(use_udev=True)  # not started: events are fed by hand
    removed, added = Recorder(), Recorder()
    monitor.add("mrz", str(tmp_path / "ttyUSB7"), "0403:6001:A1", on_removed=removed, on_added=added)

    def event(action, serial):
        return SimpleNamespace(action=action, device_node="/dev/ttyUSB7", device_links=(), properties={
            "ID_VENDOR_ID": "0403", "ID_MODEL_ID": "6001", "ID_SERIAL_SHORT": serial})

    monitor.on_udev_event(event("add", "OTHER"))
    assert added.snapshot() == []
    monitor.on_udev_event(event("add", "A1"))
    monitor.on_udev_event(event("change", "A1"))
    monitor.on_udev_event(event("remove", "A1"))
    assert added.snapshot() == ["udev add /dev/ttyUSB7"] and removed.snapshot() == ["udev remove /dev/ttyUSB7"]


def test_udev_mode_starts_a_real_monitor():
    monitor = HotplugMonitor(use_udev=True)
    monitor.start()
    try:
        assert monitor.mode == "udev" and monitor._observer is not None
    finally:
        monitor.stop()


def test_watches_built_from_config(tmp_path):
    from drivers.door.config import DoorConfig
    from drivers.transport import SerialPort

    devices = SimpleNamespace(door=DoorConfig(port=str(tmp_path / "door"), usb_id="0403:6001:DOOR1"),
                              mrz_reader=SerialPort(port=str(tmp_path / "mrz")))
    transports = {name: SimpleNamespace(url=getattr(devices, name).port, lost=Recorder()) for name in ("door", "mrz_reader")}
    monitor = HotplugMonitor(use_udev=True)
    door, mrz = watch_configured(monitor, devices, transports)
    assert door.usb_id == UsbId("0403", "6001", "DOOR1") and mrz.usb_id is None
    monitor.on_udev_event(SimpleNamespace(action="add", device_node="/dev/ttyUSB0", device_links=(),
                                          properties={"ID_VENDOR_ID": "0403", "ID_MODEL_ID": "6001",
                                                      "ID_SERIAL_SHORT": "DOOR1"}))
    monitor.on_udev_event(SimpleNamespace(action="remove", device_node="/dev/ttyUSB0", device_links=(),
                                          properties={"ID_VENDOR_ID": "0403", "ID_MODEL_ID": "6001",
                                                      "ID_SERIAL_SHORT": "DOOR1"}))
    assert transports["door"].lost.snapshot() == ["udev remove /dev/ttyUSB0"]
    assert transports["mrz_reader"].lost.snapshot() == []
