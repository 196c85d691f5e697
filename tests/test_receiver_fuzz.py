"""Fuzzing what a receiver decodes: only the module's own error may come out, whatever the bytes.

`sync.record.decode_envelope` / `decode_body` raise RecordError only; the wire decoders
(`decode_batch`, `decode_heartbeat`, `decode_results`) raise ProtocolError only. Inputs are
random bytes, random msgpack values, and valid envelopes and bodies with bytes flipped, cut or
inserted (the shapes a truncated or tampered upload takes).
"""
from __future__ import annotations

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import record
from sync.receiver import protocol as P
from tests.receiver_helpers import passage

KEY = Ed25519PrivateKey.generate()
BODY = record.encode_body(gate="SIM-LANE-01", seq=42, passage=passage(42))
ENVELOPE = record.sign(BODY, KEY)
BEAT = msgpack.packb({"gate": "SIM-LANE-01", "at": "2025-01-01T00:00:00Z", "state": "idle", "health": {"door": None},
                      "outbox_depth": 0, "oldest_age_s": None, "counters": {"passages": 1}, "in_service_s": 1.0})
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

leaves = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**64, max_value=2**64 - 1),
                   st.floats(allow_nan=True), st.text(max_size=20), st.binary(max_size=40))
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=5)),
    max_leaves=20)


def packed(value) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True, strict_types=False)
    except (OverflowError, ValueError, TypeError):
        return b"\xc0"


@st.composite
def mutated(draw, base: bytes):
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[i] ^= draw(st.integers(1, 255))
        elif kind == "cut" and data:
            del data[i:i + draw(st.integers(1, 8))]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[i:]
    return bytes(data)


def inputs(base: bytes):
    return st.one_of(st.binary(max_size=512), values.map(packed), mutated(base))


def test_the_unmutated_inputs_decode():
    assert record.decode_envelope(ENVELOPE).verify(KEY.public_key())["id"] == "SIM-LANE-01:42"
    assert P.decode_batch(P.encode_batch([ENVELOPE])) == [ENVELOPE]
    assert P.decode_heartbeat(BEAT)["gate"] == "SIM-LANE-01"


@FUZZ
@given(inputs(ENVELOPE))
def test_decode_envelope_raises_record_error_only(data):
    try:
        env = record.decode_envelope(data)
    except record.RecordError:
        return
    try:
        env.verify(KEY.public_key())
    except record.RecordError:
        pass


@FUZZ
@given(inputs(BODY))
def test_decode_body_raises_record_error_only(data):
    try:
        record.decode_body(data)
    except record.RecordError:
        pass


@FUZZ
@given(inputs(P.encode_batch([ENVELOPE, ENVELOPE])))
def test_decode_batch_raises_protocol_error_only(data):
    try:
        items = P.decode_batch(data)
    except P.ProtocolError:
        return
    assert isinstance(items, list)
    for item in items:  # what the receiver then does with each item
        if isinstance(item, bytes):
            try:
                record.decode_body(record.decode_envelope(item).body)
            except record.RecordError:
                pass


@FUZZ
@given(inputs(BEAT))
def test_decode_heartbeat_raises_protocol_error_only(data):
    try:
        beat = P.decode_heartbeat(data)
    except P.ProtocolError:
        return
    assert set(beat) == set(P.HEARTBEAT_KEYS)


@FUZZ
@given(inputs(P.encode_results([{"id": "G:1", "status": "stored", "reason": None}])))
def test_decode_results_raises_protocol_error_only(data):
    try:
        P.decode_results(data, 1)
    except P.ProtocolError:
        pass


@pytest.mark.parametrize("data", [
    b"\xdd\xff\xff\xff\xff",            # an array header claiming 4 billion items
    b"\xdf\xff\xff\xff\xff",            # a map header claiming as many pairs
    b"\xc6\xff\xff\xff\xff",            # a bin claiming 4 GiB
    b"\x91" * 100_000,                  # nested 100,000 deep
    b"\xd4\x01\x00",                    # an ext type
])
def test_hostile_headers_are_refused_without_allocating(data):
    with pytest.raises(P.ProtocolError):
        P.decode_batch(data)
    with pytest.raises(P.ProtocolError):
        P.decode_heartbeat(data)
    with pytest.raises(record.RecordError):
        record.decode_envelope(data)
