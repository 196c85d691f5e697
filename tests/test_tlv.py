"""BER-TLV: multi-byte tags, long-form lengths, nesting, typed errors."""
import pytest

from icao9303 import tlv
from icao9303.tlv import TlvError


def test_round_trip_nested_with_multibyte_tags_and_long_lengths():
    inner = tlv.encode(0x5F2E, b"\xAB" * 300)                 # 82 01 2C length
    data = tlv.encode(0x75, [tlv.encode(0x7F61, [tlv.encode(0x02, b"\x01"),
                                                 tlv.encode(0x7F60, [inner])])])
    (top,) = tlv.parse(data)
    assert top.tag == 0x75 and top.constructed and top.encode() == data
    group = top.require(0x7F61)
    assert group.find(0x02).value == b"\x01"
    bdb = group.find(0x7F60).find(0x5F2E)
    assert bdb.value == b"\xAB" * 300 and not bdb.constructed and bdb.header_length == 5


@pytest.mark.parametrize("n,enc", [(0, "00"), (0x7F, "7F"), (0x80, "8180"), (0xFF, "81FF"),
                                   (0x100, "820100"), (0x10000, "83010000"),
                                   (0x1000000, "8401000000")])
def test_length_encodings(n, enc):
    assert tlv.encode_length(n).hex().upper() == enc
    assert tlv.read_length(bytes.fromhex(enc), 0) == (n, len(enc) // 2)


def test_three_byte_tag():
    data = tlv.encode(0x5F8101, b"x")
    assert data[:3] == b"\x5F\x81\x01"
    assert tlv.parse(data)[0].tag == 0x5F8101


def test_siblings_and_find_all():
    data = tlv.encode(0x30, [tlv.encode(0x04, b"a"), tlv.encode(0x04, b"b"), tlv.encode(0x05, b"")])
    top = tlv.parse_single(data, 0x30, allow_trailing=False)
    assert [c.value for c in top.find_all(0x04)] == [b"a", b"b"]
    assert top.find(0x06) is None
    with pytest.raises(TlvError, match="6 missing"):
        top.require(0x06)


@pytest.mark.parametrize("data,match", [
    (b"\x61", "truncated"),
    (b"\x5F", "truncated multi-byte tag"),
    (b"\x5F\x81", "truncated multi-byte tag"),
    (b"\x61\x05ab", "declares 5 bytes"),
    (b"\x61\x82\x01", "truncated length"),
    (b"\x61\x80\x00\x00", "indefinite"),
    (b"\x61\x85\x00\x00\x00\x00\x01", "too long"),
    (b"\x7F\xFF\xFF\xFF\x01\x00", "longer than"),
    (b"\x61\x03\x04\x05a", "declares 5 bytes"),      # child overruns its parent
])
def test_malformed_input_raises_typed_errors(data, match):
    with pytest.raises(TlvError, match=match):
        tlv.parse(data)


def test_depth_is_bounded():
    data = b""
    for _ in range(40):
        data = tlv.encode(0x30, data)
    with pytest.raises(TlvError, match="nesting"):
        tlv.parse(data)
    assert tlv.parse(data, max_depth=64)


def test_parse_single_checks_tag_and_trailing_padding():
    data = tlv.encode(0x61, b"") + b"\x00\x00"
    assert tlv.parse_single(data, 0x61).tag == 0x61
    with pytest.raises(TlvError, match="trailing"):
        tlv.parse_single(data, 0x61, allow_trailing=False)
    with pytest.raises(TlvError, match="expected tag 60"):
        tlv.parse_single(data, 0x60)


def test_total_length_from_a_file_header():
    data = tlv.encode(0x75, b"\x00" * 25000)
    assert tlv.total_length(data[:4]) == len(data)
    assert tlv.total_length(data[:2]) is None
    assert tlv.total_length(b"\x61\x05") == 7


def test_errors_are_parse_errors():
    from core.errors import ParseError
    assert issubclass(TlvError, ParseError)
    with pytest.raises(TlvError):
        tlv.parse("not bytes")
