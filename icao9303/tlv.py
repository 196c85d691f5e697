"""BER-TLV as used by ICAO 9303 LDS files (ISO/IEC 7816-4 / X.690 definite lengths).

Tags are returned as integers made of their bytes (``0x61``, ``0x5F1F``, ``0x7F61``).  A tag
whose first byte has bit 6 set is constructed and its value is parsed into `children`.
Everything malformed raises `TlvError` with the offset: truncated tags, lengths or values,
indefinite or oversized lengths, tags longer than 4 bytes, and nesting deeper than
`max_depth`.  Parsing is iterative over siblings and bounded in depth, so no input hangs it.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import ParseError

MAX_DEPTH = 16
MAX_TAG_BYTES = 4
MAX_LENGTH_BYTES = 4


class TlvError(ParseError):
    """Malformed BER-TLV data."""


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes
    children: tuple["Tlv", ...] | None = None   # None for primitive tags
    offset: int = 0                             # where the tag starts in the parsed buffer
    header_length: int = 0                      # tag + length bytes

    @property
    def constructed(self) -> bool:
        return self.children is not None

    @property
    def length(self) -> int:
        return len(self.value)

    def find(self, tag: int) -> "Tlv | None":
        """First direct child with `tag`."""
        return next((c for c in self.children or () if c.tag == tag), None)

    def find_all(self, tag: int) -> list["Tlv"]:
        return [c for c in self.children or () if c.tag == tag]

    def require(self, tag: int, error: type[ParseError] | None = None) -> "Tlv":
        """Direct child with `tag`, or raise `error` (TlvError by default) naming both tags."""
        found = self.find(tag)
        if found is None:
            raise (error or TlvError)(f"tag {tag:X} missing inside tag {self.tag:X}")
        return found

    def encode(self) -> bytes:
        return encode(self.tag, self.value)

    def __repr__(self) -> str:
        kids = f", {len(self.children)} children" if self.children is not None else ""
        return f"Tlv({self.tag:X}, {len(self.value)} bytes{kids})"


def tag_is_constructed(tag: int) -> bool:
    first = tag
    while first > 0xFF:
        first >>= 8
    return bool(first & 0x20)


def read_tag(data: bytes, pos: int) -> tuple[int, int]:
    """(tag, position after it)."""
    if pos >= len(data):
        raise TlvError(f"offset {pos}: truncated: tag expected, end of data")
    first = data[pos]
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:
        n = 1
        while True:
            if pos >= len(data):
                raise TlvError(f"offset {pos}: truncated multi-byte tag {tag:X}")
            b = data[pos]
            pos += 1
            n += 1
            if n > MAX_TAG_BYTES:
                raise TlvError(f"offset {pos - n}: tag longer than {MAX_TAG_BYTES} bytes")
            tag = (tag << 8) | b
            if not b & 0x80:
                break
    return tag, pos


def read_length(data: bytes, pos: int) -> tuple[int, int]:
    """(length, position after it).  Definite lengths only."""
    if pos >= len(data):
        raise TlvError(f"offset {pos}: truncated: length expected, end of data")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    if first == 0x80:
        raise TlvError(f"offset {pos - 1}: indefinite length is not allowed")
    n = first & 0x7F
    if n > MAX_LENGTH_BYTES:
        raise TlvError(f"offset {pos - 1}: length field of {n} bytes is too long")
    if pos + n > len(data):
        raise TlvError(f"offset {pos - 1}: truncated length field")
    return int.from_bytes(data[pos:pos + n], "big"), pos + n


def parse_one(data: bytes, pos: int = 0, *, max_depth: int = MAX_DEPTH,
              recurse: bool = True, _depth: int = 0) -> tuple[Tlv, int]:
    """Parse the TLV at `pos`; return it and the position after it."""
    if _depth > max_depth:
        raise TlvError(f"offset {pos}: nesting deeper than {max_depth}")
    start = pos
    tag, pos = read_tag(data, pos)
    length, pos = read_length(data, pos)
    end = pos + length
    if end > len(data):
        raise TlvError(f"offset {start}: tag {tag:X} declares {length} bytes, "
                       f"only {len(data) - pos} remain")
    value = bytes(data[pos:end])
    children = None
    if recurse and tag_is_constructed(tag):
        children = tuple(_parse_seq(data, pos, end, max_depth, _depth + 1))
    return Tlv(tag, value, children, start, pos - start), end


def _parse_seq(data: bytes, pos: int, end: int, max_depth: int, depth: int) -> list[Tlv]:
    out = []
    view = data[:end]
    while pos < end:
        item, pos = parse_one(view, pos, max_depth=max_depth, _depth=depth)
        out.append(item)
    return out


def parse(data: bytes, *, max_depth: int = MAX_DEPTH) -> list[Tlv]:
    """Parse a sequence of TLVs filling `data` exactly."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TlvError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    return _parse_seq(data, 0, len(data), max_depth, 0)


def parse_single(data: bytes, expected_tag: int | None = None, *,
                 allow_trailing: bool = True, max_depth: int = MAX_DEPTH) -> Tlv:
    """Parse the one top-level TLV of an LDS file.

    Chips may pad a file after its TLV (with 00 or FF); `allow_trailing` ignores that.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TlvError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    item, end = parse_one(data, 0, max_depth=max_depth)
    if expected_tag is not None and item.tag != expected_tag:
        raise TlvError(f"expected tag {expected_tag:X}, found {item.tag:X}")
    if end != len(data) and not allow_trailing:
        raise TlvError(f"{len(data) - end} trailing bytes after tag {item.tag:X}")
    return item


def encode_tag(tag: int) -> bytes:
    if tag < 0:
        raise TlvError(f"negative tag {tag}")
    n = max(1, (tag.bit_length() + 7) // 8)
    if n > MAX_TAG_BYTES:
        raise TlvError(f"tag {tag:X} longer than {MAX_TAG_BYTES} bytes")
    return tag.to_bytes(n, "big")


def encode_length(n: int) -> bytes:
    if n < 0:
        raise TlvError(f"negative length {n}")
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    if len(body) > MAX_LENGTH_BYTES:
        raise TlvError(f"length {n} too large")
    return bytes([0x80 | len(body)]) + body


def encode(tag: int, value: "bytes | list[bytes | Tlv] | tuple" = b"") -> bytes:
    """DER-style TLV.  `value` may be bytes or a list of already-encoded children / `Tlv`s."""
    if isinstance(value, (list, tuple)):
        value = b"".join(v.encode() if isinstance(v, Tlv) else bytes(v) for v in value)
    value = bytes(value)
    return encode_tag(tag) + encode_length(len(value)) + value


def total_length(header: bytes) -> int | None:
    """Total file length (header + value) from the first bytes of a TLV file, or None if
    `header` is too short to tell.  Used to size READ BINARY of a whole EF."""
    try:
        _tag, pos = read_tag(header, 0)
        length, pos = read_length(header, pos)
    except TlvError as exc:
        if "truncated" in str(exc):
            return None
        raise
    return pos + length
