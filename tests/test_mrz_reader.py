"""MRZ reader: protocol vectors, garbage tolerance, and the driver against the simulator over a pty with faults."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.mrz_reader.driver import LinkDown, LinkUp, MrzRead, MrzReader
from drivers.mrz_reader.protocol import (
    DocumentAbsent, DocumentPresent, DocumentRemoved, MrzLines, MrzReaderProtocol, MrzReaderProtocolError, Query,
    ReadError, Version, bcc, decode_body, encode, encode_message,
)
from simulators.faults import FaultError, send_control
from simulators.mrz_reader import MrzReaderSimulator
from tests.serial_helpers import Recorder, stop_process, wait_for

TD3 = ("P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<", "L898902C36UTO7408122F3204153<<<<<<<<<<<<<<<4")


def test_status_vectors():
    # STX '@PRESENT' ETX BCC, BCC = XOR of '@PRESENT' and ETX
    assert encode("@PRESENT") == b"\x02@PRESENT\x03" + bytes([bcc(b"@PRESENT\x03")])
    assert bcc(b"@PRESENT\x03") == 0x08
    assert encode_message(DocumentRemoved()).hex(" ") == "02 40 52 45 4d 4f 56 45 44 03 01"
    assert encode_message(Query("STATUS")).hex(" ") == "02 3f 53 54 41 54 55 53 03 28"


@pytest.mark.parametrize("msg", [DocumentPresent(), DocumentRemoved(), DocumentAbsent(), ReadError(),
                                 Version("SIM 1.0"), MrzLines(TD3), Query("STATUS"), Query("REREAD")])
def test_round_trip_every_message(msg):
    assert MrzReaderProtocol().feed(encode_message(msg)) == [msg]


def test_mrz_frame_layout():
    wire = encode_message(MrzLines(TD3))
    assert wire[0] == 0x02 and wire[-2] == 0x03 and wire[1:-2] == (TD3[0] + "\r" + TD3[1]).encode()


def test_garbage_between_and_inside_frames_is_skipped_and_counted():
    p = MrzReaderProtocol()
    stream = (b"\xff\x00noise" + encode_message(DocumentPresent()) + b"\x02@PRES"  # truncated by the next STX
              + encode_message(MrzLines(TD3)) + b"zz")
    assert p.feed(stream) == [DocumentPresent(), MrzLines(TD3)]
    assert p.errors["garbage_bytes"] == 9 and p.errors["truncated"] == 1


def test_bad_bcc_and_overflow_dropped():
    p = MrzReaderProtocol()
    bad = bytearray(encode_message(MrzLines(TD3)))
    bad[5] ^= 0x01
    assert p.feed(bytes(bad) + b"\x02" + b"A" * 300 + b"\x03\x00" + encode_message(ReadError())) == [ReadError()]
    assert p.errors["bcc"] == 1 and p.errors["overflow"] == 1


@pytest.mark.parametrize("body,match", [(b"@WHAT", "unknown status"), (b"?FORMAT", "unknown query"),
                                        (b"P<UTO\r\rX", "empty line"), (b"p<uto", "outside"), (b"\xff", "ASCII")])
def test_bad_bodies_are_typed_errors(body, match):
    with pytest.raises(MrzReaderProtocolError, match=match):
        decode_body(body)


def test_encoder_refuses_control_bytes():
    with pytest.raises(MrzReaderProtocolError):
        encode("A\x03B")


@settings(deadline=None)
@given(st.binary(max_size=400))
def test_parser_never_raises_and_recovers(noise):
    p = MrzReaderProtocol()
    p.feed(noise)
    assert p.feed(encode_message(ReadError()))[-1:] == [ReadError()]


# ------------------------------------------------------------ driver <-> simulator

@pytest.fixture
def sim():
    with MrzReaderSimulator(profile="zero-latency") as s:
        yield s


@pytest.fixture
def reader(sim):
    events = Recorder()
    r = MrzReader(sim.path, emit=events)
    r.events = events
    r.start()
    wait_for(lambda: sim.queries["STATUS"] == 1, what="connected and initial ?STATUS answered")
    yield r
    r.stop()


def reads(r):
    return [e for e in r.events.snapshot() if isinstance(e, MrzRead)]


def test_place_read_remove(reader, sim):
    sim.place(TD3)
    (read,) = wait_for(lambda: reads(reader), what="MRZ read")
    assert read.lines == TD3 and read.error is None and read.mrz.valid
    assert read.mrz.document_number == "L898902C3"
    sim.remove()
    wait_for(lambda: DocumentRemoved() in reader.events.snapshot(), what="removed")
    evs = [e for e in reader.events.snapshot() if not isinstance(e, (LinkUp,))]
    assert [type(e) for e in evs] == [DocumentPresent, MrzRead, DocumentRemoved]


def test_unreadable_document_and_bad_check_digit(reader, sim):
    sim.place(None)
    wait_for(lambda: ReadError() in reader.events.snapshot(), what="read error")
    sim.remove()
    forged = (TD3[0], TD3[1][:-1] + "9")
    sim.place(forged)
    (read,) = wait_for(lambda: reads(reader), what="read")
    assert read.mrz is not None and not read.mrz.valid
    sim.place(("HELLO",))
    wait_for(lambda: len(reads(reader)) == 2, what="second read")
    assert reads(reader)[1].error and reads(reader)[1].mrz is None


def test_fault_garbage_and_corrupted_frames(reader, sim):
    sim.faults.inject("garbage", nbytes=200)
    sim.faults.inject("corrupt_crc", count=2)  # @PRESENT and the MRZ are damaged ...
    sim.place(TD3)
    wait_for(lambda: reader.stats()["bcc"] >= 2 and reader.stats()["garbage_bytes"] > 0, what="errors counted")
    assert reads(reader) == []
    reader.reread()  # ... so the host asks again
    (read,) = wait_for(lambda: reads(reader), what="read after reread")
    assert read.mrz.valid


def test_fault_dropped_and_slow_frames(reader, sim):
    sim.faults.inject("drop", count=1)
    sim.faults.inject("slow", delay_s=0.05)
    sim.place(TD3)
    (read,) = wait_for(lambda: reads(reader), what="MRZ despite a dropped @PRESENT")
    assert sim.frames_dropped == 1 and read.mrz.valid
    with pytest.raises(FaultError):
        sim.faults.inject("stuck_leaf")


def test_fault_unplug_document_placed_while_down_is_read_on_return(reader, sim):
    sim.faults.inject("unplug")
    wait_for(lambda: any(isinstance(e, LinkDown) for e in reader.events.snapshot()), timeout=0.5, what="down")
    sim.place(TD3)
    sim.faults.clear("unplug")
    (read,) = wait_for(lambda: reads(reader), what="read after reconnect")
    assert read.lines == TD3
    sim.faults.inject("unplug")
    wait_for(lambda: sum(isinstance(e, LinkDown) for e in reader.events.snapshot()) == 2, what="down again")
    sim.remove()
    sim.faults.clear("unplug")
    wait_for(lambda: DocumentRemoved() in reader.events.snapshot(), what="removal noticed after reconnect")
    assert not reader.document_present


def test_simulator_cli_with_control_socket(tmp_path):
    sock = str(tmp_path / "mrz.sock")
    proc = subprocess.Popen([sys.executable, "-m", "simulators.mrz_reader", "--control", sock, "--profile", "zero-latency"],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        where = json.loads(proc.stdout.readline())
        events = Recorder()
        reader = MrzReader(where["port"], emit=events)
        reader.start()
        try:
            wait_for(lambda: reader.transport.connected, what="connect")
            assert send_control(sock, {"do": "place", "lines": list(TD3)})["ok"]
            (read,) = wait_for(lambda: [e for e in events.snapshot() if isinstance(e, MrzRead)], what="read")
            assert read.mrz.valid
        finally:
            reader.stop()
    finally:
        stop_process(proc)
