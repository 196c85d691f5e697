"""SerialTransport against a real pty device: delivery, writes, loss, reconnect with backoff, crash containment."""
from __future__ import annotations

import os
import threading

import pytest

from drivers.transport import SerialTransport
from core.errors import DeviceError
from simulators.pty_link import SerialSimulator
from tests.serial_helpers import Recorder, wait_for


class LineProtocol:
    """Minimal sans-IO protocol: newline-terminated lines; 'boom' makes feed() raise."""

    def __init__(self):
        self.buf = b""
        self.resets = 0

    def feed(self, data):
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        if any(b"boom" in line for line in lines):
            raise RuntimeError("protocol bug")
        return lines

    def reset(self):
        self.buf = b""
        self.resets += 1


class EchoDevice(SerialSimulator):
    name = "echo"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.received = Recorder()

    def on_bytes(self, data):
        self.received(data)
        for line in data.split(b"\n"):
            if line:
                self.send(b"echo " + line + b"\n")


@pytest.fixture
def device():
    with EchoDevice() as dev:
        yield dev


def make_transport(url, **kw):
    events, links = Recorder(), Recorder()
    proto = LineProtocol()
    t = SerialTransport(url, proto, events.extend, links, backoff_initial_s=0.01, backoff_max_s=0.1, **kw)
    return t, proto, events, links


def test_events_and_writes_round_trip(device):
    t, proto, events, links = make_transport(device.path)
    t.start()
    try:
        wait_for(lambda: t.connected, what="connect")
        assert links.snapshot() == [(True, "connected")]
        t.write(b"hello\n")
        wait_for(lambda: b"echo hello" in events.snapshot(), what="echo")
        assert t.stats.bytes_out == 6 and t.stats.bytes_in >= 11
    finally:
        t.stop()
    assert not t.connected


def test_unplug_reported_at_once_then_reconnects(device):
    t, proto, events, links = make_transport(device.path)
    t.start()
    try:
        wait_for(lambda: t.connected, what="connect")
        device.faults.inject("unplug")
        wait_for(lambda: (False,) == tuple(x[0] for x in links.snapshot()[-1:]), timeout=1.0, what="loss report")
        assert not t.connected
        with pytest.raises(DeviceError, match="not connected"):
            t.write(b"x\n")
        device.faults.clear("unplug")
        wait_for(lambda: t.connected, what="reconnect")
        assert [up for up, _ in links.snapshot()] == [True, False, True]
        assert proto.resets == 2  # partial frames forgotten on each connection
        t.write(b"again\n")
        wait_for(lambda: b"echo again" in events.snapshot(), what="echo after reconnect")
        assert t.stats.losses == 1 and t.stats.connects == 2
    finally:
        t.stop()


def test_timed_unplug_replugs_by_itself(device):
    t, _, _, links = make_transport(device.path)
    t.start()
    try:
        wait_for(lambda: t.connected, what="connect")
        device.faults.inject("unplug", duration_s=0.2)
        wait_for(lambda: len(links.snapshot()) == 3, what="down and up again")
        assert [up for up, _ in links.snapshot()] == [True, False, True]
    finally:
        t.stop()


def test_starts_before_device_exists_and_backs_off(tmp_path):
    link = tmp_path / "late.tty"
    t, _, events, links = make_transport(str(link))
    t.start()
    try:
        assert not t.connected and links.snapshot() == []
        with EchoDevice(link_path=link):
            wait_for(lambda: t.connected, what="connect to late device")
            t.write(b"hi\n")
            wait_for(lambda: b"echo hi" in events.snapshot(), what="echo")
    finally:
        t.stop()


def test_protocol_crash_is_contained(device):
    t, proto, events, links = make_transport(device.path)
    t.start()
    try:
        wait_for(lambda: t.connected, what="connect")
        t.write(b"boom\n")
        wait_for(lambda: t.stats.protocol_crashes == 1, what="crash counted")
        t.write(b"fine\n")
        wait_for(lambda: b"echo fine" in events.snapshot(), what="still working")
        assert t.connected
    finally:
        t.stop()


def test_driver_callback_bug_does_not_kill_the_reader(device):
    events = Recorder()

    def on_events(evs):
        if any(b"bad" in e for e in evs):
            raise RuntimeError("driver bug")
        events.extend(evs)

    t = SerialTransport(device.path, LineProtocol(), on_events)
    t.start()
    try:
        wait_for(lambda: t.connected, what="connect")
        t.write(b"bad\n")
        wait_for(lambda: t.stats.callback_errors == 1, what="error counted")
        t.write(b"good\n")
        wait_for(lambda: b"echo good" in events.snapshot(), what="still delivering")
    finally:
        t.stop()


def test_lost_from_hotplug_monitor_forces_reconnect(device):
    t, _, _, links = make_transport(device.path)
    t.start()
    try:
        wait_for(lambda: t.connected, what="connect")
        t.lost("udev remove")
        wait_for(lambda: len(links.snapshot()) >= 3, what="loss + reconnect")
        assert links.snapshot()[1] == (False, "udev remove")
    finally:
        t.stop()


def test_events_are_delivered_on_the_thread_that_owns_the_port(device):
    threads = []
    t, _, events, _ = make_transport(device.path)
    deliver = t.on_events
    t.on_events = lambda evs: (threads.append(threading.current_thread().name), deliver(evs))
    t.start()
    try:
        wait_for(lambda: t.connected, what="connect")
        t.write(b"x\n")
        wait_for(lambda: b"echo x" in events.snapshot(), what="echo")
        assert threads and set(threads) == {"transport-serial"}, threads
    finally:
        t.stop()


def test_bad_url_never_raises(tmp_path):
    t, _, _, links = make_transport(str(tmp_path / "nothing"))
    t.start()
    t.stop()
    assert links.snapshot() == [] and not os.path.exists(tmp_path / "nothing")
