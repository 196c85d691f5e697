"""ISO/IEC 19794-2:2005 finger minutiae records: encode and decode, sans-IO.

Layout (all integers big-endian):

    record header, 24 bytes
        "FMR\\0"  " 20\\0"  record length (4)  certification bit + 12-bit equipment id (2)
        width (2)  height (2)  x resolution (2)  y resolution (2)  [pixels per cm]
        number of finger views (1)  reserved (1)
    per finger view
        finger position (1)  view number << 4 | impression type (1)  quality 0-100 (1)
        number of minutiae (1)
        per minutia, 6 bytes
            type (2 bits: 01 ridge ending, 10 bifurcation, 00 other) | x (14 bits)
            reserved 00 (2 bits) | y (14 bits)
            angle (1) in units of 360/256 degrees, counter-clockwise from the x axis
            quality 0-100 (1)
        extended data length (2), then blocks: type (2)  length incl. this header (2)  data

`decode` checks every field and raises `TemplateError` (a `ParseError`) naming the
field and its byte offset; `encode` refuses a `Template` the decoder would refuse,
so whatever this module writes it also reads back.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from core.errors import ParseError

MAGIC = b"FMR\x00 20\x00"
HEADER_LEN = 24
VIEW_HEADER_LEN = 4
MINUTIA_LEN = 6
ANGLE_UNIT = 360 / 256
MAX_VIEWS = 176            # 10 fingers x 16 views, and 16 for unknown position
IMPRESSION_TYPES = frozenset({0, 1, 2, 3, 8})  # live plain/rolled, non-live plain/rolled, swipe
PPCM_500_PPI = 197         # 500 ppi in pixels per centimetre


class TemplateError(ParseError):
    """A finger minutiae record is malformed; says which field, where, and why."""

    def __init__(self, field_name: str, offset: int, problem: str):
        self.field = field_name
        self.offset = offset
        self.problem = problem
        super().__init__(f"ISO/IEC 19794-2 record: {field_name} at byte {offset}: {problem}")


class MinutiaType(IntEnum):
    OTHER = 0
    RIDGE_ENDING = 1
    BIFURCATION = 2


@dataclass(frozen=True)
class Minutia:
    x: int
    y: int
    angle: int              # 0..255, units of 360/256 degrees
    type: MinutiaType
    quality: int            # 0..100

    @property
    def degrees(self) -> float:
        return self.angle * ANGLE_UNIT


@dataclass(frozen=True)
class FingerView:
    minutiae: tuple[Minutia, ...]
    position: int = 0       # 0 unknown, 1..10 right thumb .. left little
    view: int = 0
    impression: int = 0     # 0 live-scan plain
    quality: int = 0        # 0..100 (we store the NFIQ 2 score)
    extended: bytes = b""   # extended data blocks, kept verbatim


@dataclass(frozen=True)
class Template:
    width: int
    height: int
    views: tuple[FingerView, ...]
    resolution_x: int = PPCM_500_PPI
    resolution_y: int = PPCM_500_PPI
    equipment_id: int = 0
    certified: bool = False


# ------------------------------------------------------------------ decode

class _Reader:
    def __init__(self, data):
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int, what: str) -> memoryview:
        if self.pos + n > len(self.data):
            raise TemplateError(what, self.pos, f"needs {n} bytes, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u16(self, what: str) -> int:
        return int.from_bytes(self.take(2, what), "big")

    def u32(self, what: str) -> int:
        return int.from_bytes(self.take(4, what), "big")


def decode(data) -> Template:
    """Parse one record from a bytes-like object; raise TemplateError on anything malformed."""
    r = _Reader(data)
    if bytes(r.take(4, "format identifier")) != MAGIC[:4]:
        raise TemplateError("format identifier", 0, "is not 'FMR\\0'")
    if bytes(r.take(4, "version")) != MAGIC[4:]:
        raise TemplateError("version", 4, "is not ' 20\\0' (ISO/IEC 19794-2:2005)")
    length = r.u32("record length")
    if length != len(r.data):
        raise TemplateError("record length", 8, f"says {length} bytes, record has {len(r.data)}")
    equipment = r.u16("capture equipment")
    if equipment & 0x7000:
        raise TemplateError("capture equipment", 12, f"reserved compliance bits set (0x{equipment:04x})")
    width = r.u16("image width")
    height = r.u16("image height")
    res_x = r.u16("x resolution")
    res_y = r.u16("y resolution")
    for name, value, at in (("image width", width, 14), ("image height", height, 16),
                            ("x resolution", res_x, 18), ("y resolution", res_y, 20)):
        if value == 0:
            raise TemplateError(name, at, "is zero")
    n_views = r.u8("number of finger views")
    if n_views > MAX_VIEWS:
        raise TemplateError("number of finger views", 22, f"{n_views} exceeds {MAX_VIEWS}")
    if r.u8("reserved byte"):
        raise TemplateError("reserved byte", 23, "is not zero")
    views = tuple(_decode_view(r, width, height) for _ in range(n_views))
    seen = set()
    for v in views:
        if (v.position, v.view) in seen:
            raise TemplateError("finger view", HEADER_LEN, f"position {v.position} view {v.view} repeated")
        seen.add((v.position, v.view))
    if r.pos != len(r.data):
        raise TemplateError("record", r.pos, f"{len(r.data) - r.pos} bytes after the last finger view")
    return Template(width=width, height=height, views=views, resolution_x=res_x, resolution_y=res_y,
                    equipment_id=equipment & 0x0FFF, certified=bool(equipment & 0x8000))


def _decode_view(r: _Reader, width: int, height: int) -> FingerView:
    at = r.pos
    position = r.u8("finger position")
    if position > 10:
        raise TemplateError("finger position", at, f"{position} is not 0..10")
    packed = r.u8("view number / impression type")
    impression = packed & 0x0F
    if impression not in IMPRESSION_TYPES:
        raise TemplateError("impression type", at + 1, f"{impression} is not one of {sorted(IMPRESSION_TYPES)}")
    quality = r.u8("finger quality")
    if quality > 100:
        raise TemplateError("finger quality", at + 2, f"{quality} exceeds 100")
    count = r.u8("number of minutiae")
    minutiae = []
    for _ in range(count):
        m_at = r.pos
        raw = r.take(MINUTIA_LEN, "minutia")
        tx, ry, angle, m_quality = struct.unpack(">HHBB", raw)
        kind = tx >> 14
        if kind == 3:
            raise TemplateError("minutia type", m_at, "reserved value 11")
        x, y = tx & 0x3FFF, ry & 0x3FFF
        if ry >> 14:
            raise TemplateError("minutia y", m_at + 2, "reserved bits set")
        if x >= width or y >= height:
            raise TemplateError("minutia position", m_at, f"({x}, {y}) outside the {width}x{height} image")
        if m_quality > 100:
            raise TemplateError("minutia quality", m_at + 5, f"{m_quality} exceeds 100")
        minutiae.append(Minutia(x, y, angle, MinutiaType(kind), m_quality))
    ext_at = r.pos
    ext_len = r.u16("extended data length")
    extended = bytes(r.take(ext_len, "extended data"))
    _check_extended(extended, ext_at + 2)
    return FingerView(minutiae=tuple(minutiae), position=position, view=packed >> 4,
                      impression=impression, quality=quality, extended=extended)


def _check_extended(blob: bytes, base: int) -> None:
    pos = 0
    while pos < len(blob):
        if len(blob) - pos < 4:
            raise TemplateError("extended data block", base + pos, "truncated block header")
        block_type, block_len = struct.unpack_from(">HH", blob, pos)
        if block_type == 0:
            raise TemplateError("extended data block type", base + pos, "is zero")
        if block_len < 4 or pos + block_len > len(blob):
            raise TemplateError("extended data block length", base + pos + 2,
                                f"{block_len} does not fit the {len(blob) - pos} bytes left")
        pos += block_len


# ------------------------------------------------------------------ encode

def encode(template: Template) -> bytearray:
    """Serialise a Template; raise TemplateError if decode() would refuse the result.

    Returns a bytearray so the caller can wipe it (see biometrics.privacy).
    """
    out = bytearray()
    if not 0 < template.width < 1 << 16 or not 0 < template.height < 1 << 16:
        raise TemplateError("image size", 14, f"{template.width}x{template.height} not in 1..65535")
    if not 0 < template.resolution_x < 1 << 16 or not 0 < template.resolution_y < 1 << 16:
        raise TemplateError("resolution", 18, "must be 1..65535 pixels per cm")
    if not 0 <= template.equipment_id < 1 << 12:
        raise TemplateError("capture equipment", 12, "equipment id is 12 bits")
    if len(template.views) > MAX_VIEWS:
        raise TemplateError("number of finger views", 22, f"{len(template.views)} exceeds {MAX_VIEWS}")
    out += MAGIC + b"\0\0\0\0"
    out += struct.pack(">HHHHHBB", (0x8000 if template.certified else 0) | template.equipment_id,
                       template.width, template.height, template.resolution_x, template.resolution_y,
                       len(template.views), 0)
    for v in template.views:
        _encode_view(out, v, template.width, template.height)
    out[8:12] = len(out).to_bytes(4, "big")
    decode(out)  # one definition of validity: refuse anything we would not read back
    return out


def _encode_view(out: bytearray, v: FingerView, width: int, height: int) -> None:
    at = len(out)
    if len(v.minutiae) > 255:
        raise TemplateError("number of minutiae", at + 3, f"{len(v.minutiae)} exceeds 255")
    if not 0 <= v.view < 16:
        raise TemplateError("view number", at + 1, f"{v.view} is not 0..15")
    if not 0 <= v.position <= 255 or not 0 <= v.quality <= 255:
        raise TemplateError("finger view", at, "position and quality are single bytes")
    out += bytes((v.position, v.view << 4 | (v.impression & 0x0F), v.quality, len(v.minutiae)))
    for m in v.minutiae:
        if not (0 <= m.x < 1 << 14 and 0 <= m.y < 1 << 14 and 0 <= m.angle < 256 and 0 <= m.quality < 256):
            raise TemplateError("minutia", len(out), f"field out of range in {m}")
        out += struct.pack(">HHBB", int(m.type) << 14 | m.x, m.y, m.angle, m.quality)
    if len(v.extended) >= 1 << 16:
        raise TemplateError("extended data length", len(out), "exceeds 65535 bytes")
    out += len(v.extended).to_bytes(2, "big") + v.extended
