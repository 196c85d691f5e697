"""Door protocol vectors (docs/protocols/door.md), CRC errors, sequence wrap-around, resync after garbage, ARQ."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.door.protocol import (
    MAX_PAYLOAD, T, Beams, Close, DoorProtocolError, Emergency, Frame, FrameDecoder, Hello, KeepAlive, Leaf,
    LeafState, Link, Lock, Open, Position, Power, PowerState, QueryStatus, Reject, RejectReason, SendFailed,
    Status, Tamper, Transmit, Undecodable, Watchdog, crc16, decode_message, encode_frame, encode_message,
)

# (message, seq, frame bytes) -- the same vectors appear in docs/protocols/door.md
VECTORS = [
    (Hello(), 0, "a5 00 00 01 dc bd"),
    (KeepAlive(1000), 1, "a5 02 01 02 03 e8 64 2e"),
    (Open(Leaf.ENTRY), 2, "a5 01 02 10 00 9f 67"),
    (Close(Leaf.EXIT), 3, "a5 01 03 11 01 8b 47"),
    (Lock(Leaf.EXIT), 4, "a5 01 04 12 01 5b 84"),
    (QueryStatus(), 5, "a5 00 05 20 17 0b"),
    (LeafState(Leaf.ENTRY, Position.OPENING, False), 6, "a5 03 06 81 00 01 00 95 c8"),
    (Beams(8, 0b110, 0b100), 7, "a5 03 07 82 08 06 04 d4 f7"),
    (Emergency(True), 8, "a5 01 08 83 01 05 3f"),
    (Tamper(True), 9, "a5 01 09 84 01 ab 98"),
    (PowerState(Power.BATTERY), 10, "a5 01 0a 85 01 c1 f9"),
    (Watchdog(True), 11, "a5 01 0b 86 01 a3 9a"),
    (Status(LeafState(Leaf.ENTRY, Position.CLOSED, True), LeafState(Leaf.EXIT, Position.OPEN, False),
            Beams(8, 1, 0), False, False, Power.MAINS, True), 12,
     "a5 0b 0c 80 00 00 01 01 02 00 04 00 08 01 00 b4 71"),
    (Reject(T.CLOSE, RejectReason.EMERGENCY), 13, "a5 02 0d 8f 11 03 7b 43"),
    (Reject(T.OPEN, RejectReason.INTERLOCK), 14, "a5 02 0e 8f 10 05 b3 68"),
]
ACK_7 = "a5 00 07 06 35 cd"
NAK_CRC = "a5 01 00 15 01 1e d3"


def crc16_bitwise(data: bytes) -> int:
    """Independent CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def test_crc_check_value():
    assert crc16(b"123456789") == 0x29B1 == crc16_bitwise(b"123456789")


@pytest.mark.parametrize("msg,seq,hexbytes", VECTORS, ids=[type(v[0]).__name__ for v in VECTORS])
def test_vector_encodes_and_decodes(msg, seq, hexbytes):
    wire = bytes.fromhex(hexbytes)
    assert encode_frame(seq, *encode_message(msg)) == wire
    assert crc16_bitwise(wire[1:-2]) == int.from_bytes(wire[-2:], "big")
    (frame,) = FrameDecoder().feed(wire)
    assert frame.seq == seq
    assert decode_message(frame.type, frame.payload) == msg


def test_ack_and_nak_vectors():
    assert encode_frame(7, T.ACK) == bytes.fromhex(ACK_7)
    assert encode_frame(0, T.NAK, bytes([1])) == bytes.fromhex(NAK_CRC)
    assert FrameDecoder().feed(bytes.fromhex(ACK_7)) == [Frame(7, T.ACK, b"")]


def test_every_message_type_has_a_vector():
    assert {type(m) for m, _, _ in VECTORS} == {Hello, KeepAlive, Open, Close, Lock, QueryStatus, LeafState,
                                               Beams, Emergency, Tamper, PowerState, Watchdog, Status, Reject}


@pytest.mark.parametrize("index", range(2, 6))
def test_any_corrupted_byte_is_a_crc_error(index):
    wire = bytearray.fromhex(VECTORS[2][2])
    wire[index] ^= 0x10
    dec = FrameDecoder()
    assert dec.feed(bytes(wire)) == ["crc"]
    assert dec.errors["crc"] == 1


def test_resync_after_garbage_with_false_sync_bytes():
    good = bytes.fromhex(VECTORS[1][2])
    # garbage holding a false SYNC with a plausible length that swallows the real frame
    noise = bytes([0x13, 0xA5, 0x05, 0xFF, 0xA5, 0x40, 0x00])
    dec = FrameDecoder()
    out = dec.feed(noise + good + good)
    frames = [f for f in out if isinstance(f, Frame)]
    assert len(frames) == 2 and all(f.seq == 1 for f in frames)
    assert dec.errors["garbage_bytes"] >= 1 and dec.errors["bad_length"] == 1


def test_frames_split_across_reads():
    wire = b"".join(bytes.fromhex(h) for _, _, h in VECTORS)
    dec = FrameDecoder()
    frames = []
    for i in range(len(wire)):
        frames += dec.feed(wire[i:i + 1])
    assert [f.seq for f in frames] == list(range(len(VECTORS)))


@pytest.mark.parametrize("type_,payload,match", [
    (0x99, b"", "frame type"),
    (T.OPEN, b"\x02", "leaf"),
    (T.OPEN, b"", "expected 1"),
    (T.KEEPALIVE, b"\x00\x00", "period 0"),
    (T.LEAF, b"\x00\x09\x00", "position"),
    (T.EMERGENCY, b"\x02", "flag"),
    (T.BEAMS, b"\x04\x10\x00", "beyond beam"),
    (T.BEAMS, b"\x10\x00", "do not fit"),
    (T.STATUS, b"\x01\x00\x01\x00\x00\x01\x00\x00\x08\x00\x00", "out of order"),
    (T.REJECT, b"\x11\x09", "reject reason"),
    (T.ACK, b"", "link control"),
])
def test_malformed_messages_are_typed_errors(type_, payload, match):
    with pytest.raises(DoorProtocolError, match=match):
        decode_message(type_, payload)


@pytest.mark.parametrize("msg", [KeepAlive(0), KeepAlive(70000), Beams(4, 1 << 4, 0), Beams(8, -1, 0),
                                 Open(7), Reject(300, RejectReason.EMERGENCY), "not a message"])
def test_encoder_refuses_bad_messages(msg):
    with pytest.raises(DoorProtocolError):
        encode_message(msg)


def test_encoder_refuses_out_of_range():
    with pytest.raises(DoorProtocolError):
        encode_frame(256, T.HELLO)
    with pytest.raises(DoorProtocolError):
        encode_frame(0, T.HELLO, bytes(MAX_PAYLOAD + 1))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoder_never_raises_and_always_finds_a_following_frame(noise):
    good = bytes.fromhex(VECTORS[6][2])
    dec = FrameDecoder()
    out = dec.feed(noise + good)
    out += dec.flush_stale()  # the line went quiet: a false SYNC in the noise may be holding the frame
    assert Frame(6, T.LEAF, bytes.fromhex("000100")) in out
    assert not dec.pending


def test_false_sync_with_long_length_released_when_the_line_goes_quiet():
    good = bytes.fromhex(VECTORS[1][2])
    dec = FrameDecoder()
    assert dec.feed(b"\xa5\x1e" + good) == []  # claims a 30-byte payload: waits for more bytes
    assert dec.flush_stale() == [Frame(1, T.KEEPALIVE, b"\x03\xe8")]
    assert dec.errors["stale_partial"] >= 1


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=MAX_PAYLOAD))
def test_decode_message_only_raises_typed_errors(type_, payload):
    try:
        decode_message(type_, payload)
    except DoorProtocolError:
        pass


# -------------------------------------------------------------------- link (ARQ)

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def transmitted(events):
    return [e.data for e in events if isinstance(e, Transmit)]


def pair(**kw):
    clock = Clock()
    return Link(clock=clock, **kw), Link(clock=clock, **kw), clock


def deliver(events, to: Link):
    """Feed every Transmit of `events` into `to`; return what `to` produced."""
    out = []
    for data in transmitted(events):
        out += to.feed(data)
    return out


def test_stop_and_wait_ack_releases_next_frame():
    host, ctrl, _ = pair()
    first = host.send(Open(Leaf.ENTRY))
    assert host.send(Close(Leaf.EXIT)) == []  # waits for the ACK of the first
    at_ctrl = deliver(first, ctrl)
    assert Open(Leaf.ENTRY) in at_ctrl
    at_host = deliver(at_ctrl, host)  # the ACK
    (frame,) = FrameDecoder().feed(transmitted(at_host)[0])
    assert decode_message(frame.type, frame.payload) == Close(Leaf.EXIT)


def test_retransmit_after_timeout_then_give_up():
    host, _, clock = pair(ack_timeout_s=0.1, max_retries=2)
    (first,) = transmitted(host.send(KeepAlive(500)))
    assert host.tick() == []
    clock.now = 0.11
    assert transmitted(host.tick()) == [first]
    clock.now = 0.22
    assert transmitted(host.tick()) == [first]
    clock.now = 0.33
    (failed,) = host.tick()
    assert failed == SendFailed(KeepAlive(500), 3)
    assert host.errors["retransmissions"] == 2 and host.errors["send_failed"] == 1


def test_lost_ack_duplicate_is_acked_again_but_delivered_once():
    host, ctrl, clock = pair()
    sent = host.send(Open(Leaf.EXIT))
    first = deliver(sent, ctrl)
    clock.now = 0.2
    again = deliver(host.tick(), ctrl)  # our ACK was lost: the host resends
    assert Open(Leaf.EXIT) in first and Open(Leaf.EXIT) not in again
    assert transmitted(again) == transmitted(first)[:1]  # the same ACK
    assert ctrl.errors["duplicates"] == 1


def test_nak_triggers_immediate_retransmission():
    host, ctrl, _ = pair()
    (frame,) = transmitted(host.send(Lock(Leaf.ENTRY)))
    damaged = frame[:-1] + bytes([frame[-1] ^ 1])
    nak = ctrl.feed(damaged)
    assert transmitted(nak) == [bytes.fromhex(NAK_CRC)]
    assert transmitted(deliver(nak, host)) == [frame]
    assert host.errors["nak_received"] == 1


def test_sequence_wraps_around_without_false_duplicates():
    host, ctrl, _ = pair()
    seqs, delivered = [], 0
    for i in range(600):
        out = host.send(KeepAlive(100 + i))
        seqs.append(FrameDecoder().feed(transmitted(out)[0])[0].seq)
        at_ctrl = deliver(out, ctrl)
        delivered += sum(isinstance(e, KeepAlive) for e in at_ctrl)
        deliver(at_ctrl, host)
    assert seqs[:3] == [0, 1, 2] and seqs[255:258] == [255, 0, 1]
    assert delivered == 600 and ctrl.errors["duplicates"] == 0


def test_hello_resets_the_duplicate_filter():
    ctrl = Link()
    frame = encode_frame(0, T.HELLO)
    assert Hello() in ctrl.feed(frame)
    assert Hello() in ctrl.feed(frame)  # a restarted host starts at seq 0 again
    ka = encode_frame(0, *encode_message(KeepAlive(300)))
    ctrl.feed(encode_frame(3, *encode_message(KeepAlive(300))))
    assert KeepAlive(300) in ctrl.feed(ka)


def test_undecodable_frame_is_acked_and_reported():
    ctrl = Link()
    out = ctrl.feed(encode_frame(4, 0x77, b"\x01"))
    assert transmitted(out) == [encode_frame(4, T.ACK)]
    assert out[1] == Undecodable(0x77, "frame type: 119 is not a valid T")


def test_queue_is_bounded_and_drops_are_reported():
    link = Link(max_queue=4)
    out = []
    for i in range(10):
        out += link.send(Open(Leaf(i % 2)) if i < 5 else Lock(Leaf.EXIT))
    assert link.errors["queue_overflow"] == 5
    assert [e.message for e in out if isinstance(e, SendFailed)] == [Open(Leaf(1 - i % 2)) for i in range(4)] + [Lock(Leaf.EXIT)]


def test_link_tick_flushes_a_stale_partial_frame_after_a_quiet_gap():
    clock = Clock()
    link = Link(clock=clock, quiet_gap_s=0.02)
    frame = encode_frame(3, *encode_message(Tamper(True)))
    assert link.feed(b"\xa5\x1f" + frame) == []
    clock.now = 0.01
    assert link.tick() == []
    clock.now = 0.05
    out = link.tick()
    assert transmitted(out) == [encode_frame(3, T.ACK)] and Tamper(True) in out


def test_keepalive_jumps_the_queue_and_is_not_repeated():
    link = Link()
    link.send(Open(Leaf.ENTRY))  # outstanding
    for msg in (Close(Leaf.EXIT), KeepAlive(500), Lock(Leaf.EXIT), KeepAlive(600)):
        assert link.send(msg) == []
    order = []
    for _ in range(3):
        (ack_for,) = [FrameDecoder().feed(link._outstanding[1])[0].seq]
        out = link.feed(encode_frame(ack_for, T.ACK))
        (frame,) = FrameDecoder().feed(transmitted(out)[0])
        order.append(decode_message(frame.type, frame.payload))
    assert order == [KeepAlive(600), Close(Leaf.EXIT), Lock(Leaf.EXIT)] and link.idle is False


def test_stale_ack_ignored():
    link = Link()
    assert link.feed(encode_frame(9, T.ACK)) == []
    assert link.errors["stale_ack"] == 1


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 40), st.floats(0.0, 0.4))
def test_lossy_line_delivers_each_command_once_and_in_order(rng, count, loss):
    """Drops, bit flips and duplicated frames on both directions: every command arrives exactly once,
    in order, unless the sender reported it failed after all retries."""
    clock = Clock()
    host, ctrl = Link(clock=clock, max_retries=8), Link(clock=clock, max_retries=8)
    sent = [Reject(i, RejectReason.BAD_PAYLOAD) for i in range(count)]  # any distinct DATA messages
    received, failed = [], []

    def line(events, to):
        out = []
        for data in transmitted(events):
            r = rng.random()
            if r < loss / 2:
                continue  # dropped
            if r < loss:
                i = rng.randrange(len(data))
                data = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
            copies = 2 if rng.random() < loss / 4 else 1
            for _ in range(copies):
                out += to.feed(data)
        return out

    def run(host_out, ctrl_out):
        # carry frames both ways until neither side has anything more to say
        while host_out or ctrl_out:
            failed.extend(e.message for e in host_out if isinstance(e, SendFailed))
            received.extend(e for e in ctrl_out if isinstance(e, Reject))
            host_out, ctrl_out = line(ctrl_out, host), line(host_out, ctrl)

    pending = []
    for msg in sent:
        pending += host.send(msg)
    run(pending, [])
    for _ in range(2000):
        if host.idle:
            break
        clock.now += 0.2
        run(host.tick(), ctrl.tick())
    assert host.idle
    assert len(received) == len(set(received))  # never twice
    positions = [sent.index(m) for m in received]
    assert positions == sorted(positions)  # in order
    assert set(sent) - set(failed) <= set(received)  # nothing lost silently
