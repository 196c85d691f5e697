"""Fingerprint driver against the scanner simulator over a real pty, with every fault."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.fingerprint import protocol as p
from drivers.fingerprint.driver import CaptureCancelled, FingerprintScanner, NoFinger, ScannerError, ScannerTimeout
from drivers.fingerprint.protocol import Code, Instruction, LedColour, LedMode
from simulators.faults import FaultError
from simulators.fingerprint_scanner import FingerprintScannerSim
from simulators.fingerprint_synth import FingerGenerator
from tests.serial_helpers import wait_for

GEN = FingerGenerator(seed=5)  # shared: masters are cached across tests


class FaultOnUpload(FingerprintScannerSim):
    """Injects a fault right after answering UPLOAD_IMAGE, so it hits the image packets."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.on_upload: list[tuple[str, dict]] = []

    def _on_command(self, packet):
        super()._on_command(packet)
        if packet.payload[:1] == bytes([Instruction.UPLOAD_IMAGE]) and self.on_upload:
            name, params = self.on_upload.pop(0)
            if name == "garbage":  # a burst in the middle of the stream, not queued behind it
                self.link.write(self.garbage(params["nbytes"]))
            else:
                self.faults.inject(name, **params)


@pytest.fixture
def sim():
    with FaultOnUpload(seed=5, generator=GEN) as device:
        yield device


@pytest.fixture
def scanner(sim):
    drv = FingerprintScanner(sim.path, command_timeout_s=0.3, upload_timeout_s=1.0, poll_s=0.01,
                             backoff_initial_s=0.01, backoff_max_s=0.1).start()
    try:
        drv.connect(timeout_s=2)
        yield drv
    finally:
        drv.stop()


def test_capture_delivers_the_generated_impressions_exactly(sim, scanner):
    assert (scanner.params.width, scanner.params.height, scanner.params.ppi) == (300, 400, 500)
    sim.place_finger(2, {"skin": "wet"})
    first, second = scanner.capture(timeout_s=2), scanner.capture(timeout_s=2)
    assert first.dtype == np.uint8 and first.shape == (400, 300)
    assert np.array_equal(first, GEN.impression(2, 0, skin="wet"))
    assert np.array_equal(second, GEN.impression(2, 1, skin="wet"))  # a new impression, not a copy
    assert sim.link.overruns == 0
    assert scanner.stats()["retries"] == 0 and scanner.stats()["garbage_bytes"] == 0


def test_no_finger_fails_at_the_deadline(scanner):
    started = time.monotonic()
    with pytest.raises(NoFinger):
        scanner.capture(timeout_s=0.2)
    assert time.monotonic() - started < 1.0
    assert scanner.finger_present() is False


def test_capture_waits_for_the_finger(sim, scanner):
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("img", scanner.capture(timeout_s=5)))
    worker.start()
    wait_for(lambda: list(sim.commands).count(Instruction.FINGER_DETECT) >= 3, what="driver polling")
    assert Instruction.CAPTURE not in sim.commands
    sim.place_finger(4)
    worker.join(timeout=5)
    assert np.array_equal(result["img"], GEN.impression(4, 0))


def test_led_while_waiting_for_a_finger_then_cancel(sim, scanner):
    errors = []

    def wait_for_finger():
        try:
            scanner.capture(timeout_s=10)
        except ScannerError as exc:
            errors.append(exc)

    worker = threading.Thread(target=wait_for_finger)
    worker.start()
    wait_for(lambda: Instruction.FINGER_DETECT in sim.commands, what="driver polling")
    scanner.set_led(LedMode.FLASHING, LedColour.BLUE)  # "place your finger" while the capture waits
    assert sim.led == (LedMode.FLASHING, LedColour.BLUE)
    started = time.monotonic()
    scanner.cancel()
    worker.join(timeout=2)
    assert not worker.is_alive() and time.monotonic() - started < 0.5
    assert isinstance(errors[0], CaptureCancelled)


def test_a_device_that_never_completes_a_capture_still_meets_the_deadline(sim, scanner):
    sim.place_finger(1)
    sim._finish_capture = lambda: sim._answer(Code.NO_FINGER, Instruction.CAPTURE)  # finger always slips
    started = time.monotonic()
    with pytest.raises(NoFinger):
        scanner.capture(timeout_s=0.5)
    assert time.monotonic() - started < 1.0


def test_led(sim, scanner):
    scanner.set_led(LedMode.ON, LedColour.GREEN)
    assert sim.led == (LedMode.ON, LedColour.GREEN)
    scanner.set_led(LedMode.BREATHING, LedColour.RED)
    assert sim.led == (LedMode.BREATHING, LedColour.RED)


@pytest.mark.parametrize("fault", [("drop", {"count": 1}), ("corrupt_crc", {"count": 2})])
def test_lost_or_damaged_answer_is_retried(sim, scanner, fault):
    sim.place_finger(1)
    sim.faults.inject(*fault[:1], **fault[1])
    assert np.array_equal(scanner.capture(timeout_s=3), GEN.impression(1, 0))
    c = scanner.stats()
    assert c["timeouts"] >= 1 and c["retries"] >= 1
    if fault[0] == "corrupt_crc":
        assert c["checksum_errors"] == 2


@pytest.mark.parametrize("fault", [("drop", {"count": 1}), ("corrupt_crc", {"count": 3})])
def test_damaged_image_stream_is_uploaded_again(sim, scanner, fault):
    sim.place_finger(3)
    sim.on_upload.append(fault)
    img = scanner.capture(timeout_s=3)
    assert np.array_equal(img, GEN.impression(3, 0))
    assert list(sim.commands).count(Instruction.UPLOAD_IMAGE) == 2
    assert scanner.stats()["incomplete_images"] == 1


def test_garbage_inside_the_image_stream_is_skipped_without_a_retry(sim, scanner):
    sim.place_finger(3)
    sim.on_upload.append(("garbage", {"nbytes": 3000}))
    assert np.array_equal(scanner.capture(timeout_s=3), GEN.impression(3, 0))
    assert list(sim.commands).count(Instruction.UPLOAD_IMAGE) == 1
    assert scanner.stats()["garbage_bytes"] >= 3000


def test_garbage_while_idle_is_skipped(sim, scanner):
    sim.faults.inject("garbage", nbytes=5000)
    wait_for(lambda: sim.faults.injected["garbage"] == 1)
    sim.place_finger(6)
    assert np.array_equal(scanner.capture(timeout_s=3), GEN.impression(6, 0))
    assert scanner.stats()["garbage_bytes"] > 1000


def test_slow_answers_within_the_timeout_work(sim, scanner):
    scanner.command_timeout_s = 1.0
    sim.faults.inject("slow", delay_s=0.15)
    started = time.monotonic()
    assert scanner.finger_present() is False
    assert time.monotonic() - started >= 0.15
    assert scanner.stats()["timeouts"] == 0


def test_too_slow_device_times_out_then_recovers(sim, scanner):
    # Slower than all three tries together (a late answer to the same query is accepted).
    sim.faults.inject("slow", delay_s=1.5)
    started = time.monotonic()
    with pytest.raises(ScannerTimeout):
        scanner.finger_present()
    assert time.monotonic() - started < 1.5  # 3 tries of 0.3 s, never a hang
    assert scanner.stats()["timeouts"] == 3
    sim.faults.clear("slow")
    sim.place_finger(8)
    wait_for(lambda: scanner.finger_present(), timeout=5, what="recovery")
    assert np.array_equal(scanner.capture(timeout_s=3), GEN.impression(8, 0))


def test_unplug_fails_fast_then_reconnects_and_resyncs(sim, scanner):
    sim.place_finger(7)
    sim.faults.inject("unplug")
    wait_for(lambda: not scanner.connected, timeout=2, what="loss detected")
    started = time.monotonic()
    with pytest.raises(ScannerError):
        scanner.capture(timeout_s=5)
    assert time.monotonic() - started < 0.5
    sim.faults.clear("unplug")
    wait_for(lambda: scanner.connected, timeout=3, what="reconnect")
    img = scanner.capture(timeout_s=3)
    assert np.array_equal(img, GEN.impression(7, 0))
    c = scanner.stats()
    assert c["link_losses"] == 1 and c["resyncs"] == 2


def test_unplug_with_duration_comes_back_by_itself(sim, scanner):
    sim.faults.inject("unplug", duration_s=0.2)
    wait_for(lambda: not scanner.connected, timeout=2, what="loss")
    wait_for(lambda: scanner.connected, timeout=3, what="return")
    assert scanner.finger_present() is False


def test_driver_never_hangs_on_a_silent_port():
    with FingerprintScannerSim(seed=1, generator=GEN) as device:
        device.on_bytes = lambda data: None  # a device that reads but never answers
        drv = FingerprintScanner(device.path, command_timeout_s=0.1, retries=1).start()
        try:
            started = time.monotonic()
            with pytest.raises(ScannerTimeout):
                drv.connect(timeout_s=2)
            assert time.monotonic() - started < 2
        finally:
            drv.stop()


# -- the simulator as a protocol peer, spoken to with raw bytes ---------------------------

@pytest.fixture
def raw(sim):
    port = serial.serial_for_url(sim.path, timeout=1)
    yield port
    port.close()


def _exchange(raw, packet: bytes) -> list:
    raw.write(packet)
    parser = p.PacketParser()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        out = [e for e in parser.feed(raw.read(max(1, raw.in_waiting))) if isinstance(e, p.Packet)]
        if out:
            return out
    raise AssertionError("no answer")


@pytest.mark.parametrize("packet,code,instruction", [
    (p.command(Instruction.HANDSHAKE)[:-1] + b"\x00", Code.PACKET_ERROR, p.UNREADABLE),
    (p.command(0x77), Code.UNKNOWN_INSTRUCTION, 0x77),
    (p.command(Instruction.LED, b"\x09\x80\x01\x00"), Code.BAD_PARAMETER, Instruction.LED),
    (p.command(Instruction.LED, b"\x03"), Code.BAD_PARAMETER, Instruction.LED),
    (p.command(Instruction.UPLOAD_IMAGE), Code.NO_IMAGE, Instruction.UPLOAD_IMAGE),
    (p.command(Instruction.CAPTURE), Code.NO_FINGER, Instruction.CAPTURE),
])
def test_simulator_refusals(raw, packet, code, instruction):
    assert _exchange(raw, b"\x00\xef" + packet) == [p.Packet(p.Pid.ACK, bytes([code, instruction]))]


def test_simulator_capture_failure_on_impossible_conditions(sim, raw):
    sim.place_finger(1, {"pressure": 7})
    assert _exchange(raw, p.command(Instruction.CAPTURE)) == [p.Packet(p.Pid.ACK, bytes([Code.CAPTURE_FAILED, Instruction.CAPTURE]))]


def test_simulator_control_commands(sim):
    assert sim.control({"do": "place_finger", "finger_id": 9, "skin": "dry"}) == {"ok": True, "result": None}
    assert sim.finger_present
    assert sim.control({"do": "lift_finger"})["ok"] and not sim.finger_present
    with pytest.raises(FaultError):
        sim.control({"fault": "stuck_leaf"})  # a scanner has no leaves


def test_realistic_timing_takes_about_half_a_second_per_capture():
    with FingerprintScannerSim(seed=2, generator=GEN, timing="realistic") as device:
        drv = FingerprintScanner(device.path).start()
        try:
            drv.connect(timeout_s=2)
            device.place_finger(2)
            started = time.monotonic()
            img = drv.capture(timeout_s=3)
            elapsed = time.monotonic() - started
        finally:
            drv.stop()
    assert np.array_equal(img, GEN.impression(2, 0))
    assert 0.5 <= elapsed < 2.0  # 0.5 s exposure + 120 KB at 1 MB/s


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.binary(max_size=64),
                          st.builds(lambda i, params: p.command(i, params), st.integers(0, 255), st.binary(max_size=8))),
                max_size=12))
def test_simulator_survives_any_bytes(chunks):
    device = FingerprintScannerSim(seed=1, generator=GEN)  # not started: on_bytes runs here
    try:
        device.place_finger(1, {"noise": 0.2})
        for chunk in chunks:
            device.on_bytes(chunk)
            device.on_tick(time.monotonic() + 1)
        assert len(device.parser._buf) < 9 + p.MAX_PAYLOAD + 2  # never hoards bytes
    finally:
        device.stop()


def test_from_config_link_events_and_component_contract(sim):
    from core.component import LinkDown, LinkUp
    from drivers.fingerprint.config import FingerprintConfig

    links = []
    drv = FingerprintScanner.from_config(FingerprintConfig(port=sim.path), emit=links.append).start()
    try:
        check = drv.self_check(timeout_s=2)
        assert check.ok and check.detail.startswith("300x"), check
        assert drv.status().healthy and drv.status().stats["resyncs"] == 1
        sim.faults.inject("unplug", duration_s=0.1)
        wait_for(lambda: len(links) >= 3, timeout=3, what="down and up again")
    finally:
        drv.stop()
    assert links[0] == LinkUp() and isinstance(links[1], LinkDown) and links[2] == LinkUp()
    assert not drv.status().healthy


def test_first_impression_offsets_the_captures():
    with FingerprintScannerSim(seed=3, generator=GEN, first_impression=100) as device:
        drv = FingerprintScanner(device.path).start()
        try:
            drv.connect(timeout_s=2)
            device.place_finger(5, {"contact": 0.6})
            assert np.array_equal(drv.capture(timeout_s=3), GEN.impression(5, 100, contact=0.6))
        finally:
            drv.stop()
