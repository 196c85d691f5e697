"""ISO/IEC 19794-2:2005 codec: byte layout, round trips, typed errors, fuzzing."""
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biometrics.finger import iso19794_2 as iso

ONE_MINUTIA = iso.Template(width=400, height=500, views=(iso.FingerView(
    minutiae=(iso.Minutia(54, 333, 32, iso.MinutiaType.RIDGE_ENDING, 14),), position=2, view=1,
    impression=0, quality=68),))

# Hand-assembled from the standard's field table, not from our encoder.
ONE_MINUTIA_BYTES = bytes.fromhex(
    "464d5200" "20323000" "00000024"   # FMR, version 20, record length 36
    "0000" "0190" "01f4" "00c5" "00c5"  # equipment, 400 x 500 px, 197 x 197 px/cm
    "01" "00"                           # one finger view, reserved
    "02" "10" "44" "01"                 # right index, view 1 / live plain, quality 68, 1 minutia
    "4036" "014d" "20" "0e"             # ending at (54, 333), 45 degrees, quality 14
    "0000")                             # no extended data


def test_encode_matches_the_standard_layout():
    assert bytes(iso.encode(ONE_MINUTIA)) == ONE_MINUTIA_BYTES


def test_decode_reads_the_standard_layout():
    t = iso.decode(ONE_MINUTIA_BYTES)
    assert t == ONE_MINUTIA
    m = t.views[0].minutiae[0]
    assert (m.x, m.y, m.degrees, m.type) == (54, 333, 45.0, iso.MinutiaType.RIDGE_ENDING)


def test_extended_data_blocks_survive_a_round_trip():
    view = iso.FingerView(minutiae=(), extended=struct.pack(">HH", 1, 6) + b"\x01\x02")
    t = iso.Template(width=10, height=10, views=(view,))
    assert iso.decode(iso.encode(t)) == t


@pytest.mark.parametrize("offset,value,field", [
    (0, b"FMX\x00", "format identifier"),
    (4, b" 30\x00", "version"),
    (8, b"\x00\x00\x00\x23", "record length"),
    (12, b"\x10\x00", "capture equipment"),
    (14, b"\x00\x00", "image width"),
    (18, b"\x00\x00", "x resolution"),
    (24, b"\x0b", "finger position"),
    (25, b"\x14", "impression type"),
    (23, b"\x01", "reserved byte"),
    (26, b"\x65", "finger quality"),
    (28, b"\xc0\x36", "minutia type"),
    (30, b"\x41\x4d", "minutia y"),
    (28, b"\x41\x90", "minutia position"),
    (33, b"\x65", "minutia quality"),
    (34, b"\x00\x05", "extended data"),
])
def test_each_malformed_field_is_named(offset, value, field):
    data = bytearray(ONE_MINUTIA_BYTES)
    data[offset:offset + len(value)] = value
    with pytest.raises(iso.TemplateError) as err:
        iso.decode(bytes(data))
    assert err.value.field == field


def test_truncation_and_trailing_bytes_are_refused():
    for cut in range(len(ONE_MINUTIA_BYTES)):
        with pytest.raises(iso.TemplateError):
            iso.decode(ONE_MINUTIA_BYTES[:cut])
    longer = bytearray(ONE_MINUTIA_BYTES + b"\0")
    longer[8:12] = (len(longer)).to_bytes(4, "big")
    with pytest.raises(iso.TemplateError, match="after the last finger view"):
        iso.decode(bytes(longer))


def test_encoder_refuses_what_the_decoder_would():
    bad = iso.Template(width=100, height=100, views=(iso.FingerView(
        minutiae=(iso.Minutia(150, 5, 0, iso.MinutiaType.BIFURCATION, 50),)),))
    with pytest.raises(iso.TemplateError, match="outside"):
        iso.encode(bad)


minutiae = st.builds(iso.Minutia, x=st.integers(0, 299), y=st.integers(0, 399), angle=st.integers(0, 255),
                     type=st.sampled_from(list(iso.MinutiaType)), quality=st.integers(0, 100))
views = st.builds(iso.FingerView, minutiae=st.lists(minutiae, max_size=40).map(tuple),
                  position=st.integers(0, 10), view=st.integers(0, 15),
                  impression=st.sampled_from(sorted(iso.IMPRESSION_TYPES)), quality=st.integers(0, 100))


@settings(max_examples=150, deadline=None)
@given(st.lists(views, max_size=3, unique_by=lambda v: (v.position, v.view)).map(tuple))
def test_round_trip(views_):
    t = iso.Template(width=300, height=400, views=views_)
    assert iso.decode(iso.encode(t)) == t


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_give_a_template_or_a_template_error(data):
    try:
        iso.decode(data)
    except iso.TemplateError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.integers(0, len(ONE_MINUTIA_BYTES) - 1), st.integers(0, 255))
def test_single_byte_corruption_gives_a_template_or_a_template_error(offset, value):
    data = bytearray(ONE_MINUTIA_BYTES)
    data[offset] = value
    try:
        t = iso.decode(bytes(data))
    except iso.TemplateError:
        return
    assert bytes(iso.encode(t)) == bytes(data)  # whatever decodes re-encodes identically
