"""Fingerprint packet protocol: byte vectors for every packet, checksum and length errors, resynchronisation."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.fingerprint import protocol as p
from drivers.fingerprint.protocol import (
    Answer, Code, FingerState, FramingError, HostProtocol, Image, ImageIncomplete, Instruction, LedColour, LedMode,
    Packet, PacketParser, Params, Pid, Unexpected,
)

H = "ef01 ffffffff "
PARAMS = Params(status=0, sensor_id=0x3001, width=300, height=400, ppi=500, address=0xFFFFFFFF, packet_size=256)


def hx(text):
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize("encode,vector", [
    (lambda h: h.handshake(), H + "01 0003 40 0044"),
    (lambda h: h.read_params(), H + "01 0003 0f 0013"),
    (lambda h: h.finger_detect(), H + "01 0003 60 0064"),
    (lambda h: h.capture(), H + "01 0003 01 0005"),
    (lambda h: h.upload_image(), H + "01 0003 0a 000e"),
    (lambda h: h.led(LedMode.ON, LedColour.PURPLE, 0x80, 0), H + "01 0007 35 03 80 03 00 00c3"),
])
def test_command_vectors(encode, vector):
    assert encode(HostProtocol()) == hx(vector)


@pytest.mark.parametrize("encoded,vector", [
    (p.ack(Code.OK, Instruction.HANDSHAKE), H + "07 0004 00 40 004b"),
    (p.ack(Code.NO_FINGER, Instruction.CAPTURE), H + "07 0004 02 01 000e"),
    (p.ack(Code.OK, Instruction.FINGER_DETECT, b"\x01"), H + "07 0005 00 60 01 006d"),
    (p.ack(Code.PACKET_ERROR, p.UNREADABLE), H + "07 0004 01 00 000c"),
    (p.ack(Code.NO_IMAGE, Instruction.UPLOAD_IMAGE), H + "07 0004 15 0a 002a"),
    (p.ack(Code.UNKNOWN_INSTRUCTION, 0x77), H + "07 0004 fc 77 017e"),
    (p.ack(Code.OK, Instruction.READ_PARAMS, PARAMS.encode()),
     H + "07 0014 00 0f 0000 3001 012c 0190 01f4 ffffffff 0003 060d"),
    (p.command(Instruction.HANDSHAKE, address=0x12345678), "ef01 12345678 01 0003 40 0044"),
])
def test_answer_vectors(encoded, vector):
    assert encoded == hx(vector)


def test_image_packet_vectors():
    packets = p.image_packets(bytes(range(40)), packet_size=32)
    assert packets[0] == hx(H + "02 0022" + bytes(range(32)).hex() + f"{(2 + 0x22 + sum(range(32))) & 0xFFFF:04x}")
    assert packets[1] == hx(H + "08 000a 2021222324252627 012e")
    assert len(p.image_packets(bytes(300 * 400))) == 469  # 468 full DATA packets + END with 192 bytes


def test_encoders_refuse_bad_sizes():
    with pytest.raises(ValueError):
        Packet(Pid.DATA, bytes(257)).encode()
    with pytest.raises(ValueError):
        p.image_packets(b"\x00" * 10, packet_size=100)
    with pytest.raises(ValueError):
        p.image_packets(b"")


def test_params_round_trip_and_refusals():
    assert Params.decode(PARAMS.encode()) == PARAMS
    with pytest.raises(ValueError):
        Params.decode(PARAMS.encode()[:-1])
    with pytest.raises(ValueError):
        Params.decode(PARAMS.encode()[:-2] + b"\x00\x09")  # packet-size code 9
    with pytest.raises(ValueError):
        Params.decode(bytes(16))  # zero geometry


def test_parser_byte_by_byte_and_split_header():
    stream = p.command(Instruction.CAPTURE) + p.ack(Code.OK, Instruction.CAPTURE)
    parser = PacketParser()
    out = [e for b in stream for e in parser.feed(bytes([b]))]
    assert out == [Packet(Pid.COMMAND, b"\x01"), Packet(Pid.ACK, b"\x00\x01")]
    assert parser.garbage_bytes == 0


def test_garbage_is_skipped_and_counted():
    parser = PacketParser()
    out = parser.feed(b"\x00\x13\xef\x55noise" + p.ack(Code.OK, Instruction.HANDSHAKE) + b"\xff\xef")
    assert out == [FramingError("garbage", "9 bytes skipped before a header"), Packet(Pid.ACK, b"\x00\x40"),
                   FramingError("garbage", "1 bytes skipped before a header")]
    # The trailing 0xEF may start a header: kept, not counted, and a header completes it.
    assert parser.garbage_bytes == 10
    assert parser.feed(p.ack(Code.OK, Instruction.CAPTURE)[1:]) == [Packet(Pid.ACK, b"\x00\x01")]


def test_checksum_error_then_resync_on_next_packet():
    bad = bytearray(p.ack(Code.OK, Instruction.HANDSHAKE))
    bad[-1] ^= 0x01
    parser = PacketParser()
    out = parser.feed(bytes(bad) + p.ack(Code.OK, Instruction.CAPTURE))
    assert [type(e) for e in out] == [FramingError, FramingError, Packet]
    assert out[0].kind == "checksum" and out[1].kind == "garbage"
    assert out[2] == Packet(Pid.ACK, b"\x00\x01")
    assert parser.checksum_errors == 1


def test_false_header_with_huge_length_does_not_swallow_real_packet():
    parser = PacketParser()
    fake = hx("ef01 ffffffff 02 0102")  # claims 256 payload bytes; the real packet follows
    assert parser.feed(fake + p.ack(Code.OK, Instruction.HANDSHAKE)) == []  # waiting for 256 bytes
    out = parser.feed(bytes(300))  # the fake completes, fails its checksum, and the parser rescans
    assert [e for e in out if isinstance(e, Packet)] == [Packet(Pid.ACK, b"\x00\x40")]
    assert parser.checksum_errors == 1


def test_fake_header_awaiting_bytes_then_real_packet_recovered():
    parser = PacketParser()
    fake = hx("ef01 ffffffff 02 0010 aabb")  # wants 14 more bytes, gets the real packet instead
    real = p.ack(Code.OK, Instruction.CAPTURE) + p.ack(Code.OK, Instruction.HANDSHAKE)
    out = parser.feed(fake + real)
    packets = [e for e in out if isinstance(e, Packet)]
    assert packets == [Packet(Pid.ACK, b"\x00\x01"), Packet(Pid.ACK, b"\x00\x40")]
    assert parser.checksum_errors == 1


@pytest.mark.parametrize("length", ["0000", "0001", "0103", "ffff"])
def test_length_out_of_range(length):
    parser = PacketParser()
    out = parser.feed(hx("ef01 ffffffff 07 " + length) + p.ack(Code.OK, Instruction.HANDSHAKE))
    assert out[0] == FramingError("length", out[0].detail) and parser.length_errors == 1
    assert out[-1] == Packet(Pid.ACK, b"\x00\x40")


def test_unknown_pid_and_foreign_address():
    parser = PacketParser(address=0x01020304)
    out = parser.feed(Packet(0x05, b"\x00", 0x01020304).encode() + Packet(Pid.ACK, b"\x00\x40", 0x0A0B0C0D).encode()
                      + Packet(Pid.ACK, b"\x00\x40", 0x01020304).encode())
    assert [e.kind for e in out[:2]] == ["pid", "address"]
    assert out[2] == Packet(Pid.ACK, b"\x00\x40", 0x01020304)


# -- host protocol ---------------------------------------------------------------

def host_with_params():
    host = HostProtocol()
    host.read_params()
    assert host.feed(p.ack(Code.OK, Instruction.READ_PARAMS, PARAMS.encode())) == [PARAMS]
    return host


def test_host_typed_answers():
    host = HostProtocol()
    host.finger_detect()
    assert host.feed(p.ack(Code.OK, Instruction.FINGER_DETECT, b"\x01")) == [FingerState(True)]
    host.capture()
    assert host.feed(p.ack(Code.NO_FINGER, Instruction.CAPTURE)) == [Answer(Instruction.CAPTURE, Code.NO_FINGER)]
    host.handshake()
    assert host.feed(p.ack(Code.OK, Instruction.HANDSHAKE))[0].ok


def test_host_ignores_late_and_unasked_answers():
    host = HostProtocol()
    assert isinstance(host.feed(p.ack(Code.OK, Instruction.HANDSHAKE))[0], Unexpected)  # nothing pending
    host.capture()
    out = host.feed(p.ack(Code.OK, Instruction.FINGER_DETECT, b"\x00") + p.ack(Code.OK, Instruction.CAPTURE))
    assert isinstance(out[0], Unexpected) and out[1] == Answer(Instruction.CAPTURE, Code.OK)
    assert host.unexpected == 2


def test_host_packet_error_is_the_answer_to_the_pending_command():
    host = HostProtocol()
    host.upload_image()
    assert host.feed(p.ack(Code.PACKET_ERROR, p.UNREADABLE)) == [Answer(Instruction.UPLOAD_IMAGE, Code.PACKET_ERROR)]


@pytest.mark.parametrize("data", [b"", b"\x02", b"\x00\x01"])
def test_host_bad_finger_state_is_unexpected(data):
    host = HostProtocol()
    host.finger_detect()
    assert isinstance(host.feed(p.ack(Code.OK, Instruction.FINGER_DETECT, data))[0], Unexpected)


def test_host_bad_params_are_unexpected():
    host = HostProtocol()
    host.read_params()
    assert isinstance(host.feed(p.ack(Code.OK, Instruction.READ_PARAMS, b"\x00" * 3))[0], Unexpected)
    assert host.params is None


def test_host_assembles_an_image():
    host = host_with_params()
    pixels = bytes(i % 251 for i in range(300 * 400))
    host.upload_image()
    stream = p.ack(Code.OK, Instruction.UPLOAD_IMAGE) + b"".join(p.image_packets(pixels))
    out = [e for i in range(0, len(stream), 1000) for e in host.feed(stream[i:i + 1000])]
    assert out == [Answer(Instruction.UPLOAD_IMAGE, Code.OK), Image(300, 400, pixels)]


def test_host_reports_an_image_missing_a_packet():
    host = host_with_params()
    packets = p.image_packets(bytes(300 * 400))
    host.upload_image()
    out = host.feed(p.ack(Code.OK, Instruction.UPLOAD_IMAGE) + b"".join(packets[:10] + packets[11:]))
    assert out[-1] == ImageIncomplete(300 * 400 - 256, 300 * 400) and host.incomplete_images == 1


def test_host_ignores_image_data_without_an_upload():
    host = host_with_params()
    out = host.feed(b"".join(p.image_packets(bytes(100), packet_size=64)))
    assert all(isinstance(e, Unexpected) for e in out) and len(out) == 2


def test_new_command_abandons_an_upload_in_progress():
    host = host_with_params()
    packets = p.image_packets(bytes(300 * 400))
    host.upload_image()
    host.feed(p.ack(Code.OK, Instruction.UPLOAD_IMAGE) + b"".join(packets[:5]))
    host.handshake()
    out = host.feed(b"".join(packets[5:7]) + p.ack(Code.OK, Instruction.HANDSHAKE))
    assert [type(e) for e in out] == [Unexpected, Unexpected, Answer]


# -- fuzzing -----------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=400), max_size=20))
def test_arbitrary_bytes_never_raise_and_the_buffer_stays_bounded(chunks):
    host = host_with_params()
    host.upload_image()
    for chunk in chunks:
        for event in host.feed(chunk):
            assert isinstance(event, (FramingError, Unexpected, Answer, FingerState, Params, Image, ImageIncomplete))
        assert len(host.parser._buf) < 9 + p.MAX_PAYLOAD + 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=50).map(lambda b: b.replace(b"\xef", b"")),
                          st.sampled_from([Instruction.CAPTURE, Instruction.HANDSHAKE, Instruction.LED])), max_size=10),
       st.integers(1, 64))
def test_every_packet_recovered_between_garbage(items, chunk):
    stream = b"".join(g + p.ack(Code.OK, i) for g, i in items)
    parser = PacketParser()
    out = [e for k in range(0, len(stream), chunk) for e in parser.feed(stream[k:k + chunk])]
    assert [e.payload[1] for e in out if isinstance(e, Packet)] == [i for _, i in items]
    assert parser.garbage_bytes == sum(len(g) for g, _ in items)
