"""Logical Data Structure of an eMRTD (ICAO 9303 Part 10): file map, EF.COM, DG1, DG2, DG11,
DG12, DG14, DG15, EF.SOD - parsing, and the encoders the test PKI personalises with.

Every parser takes the whole file as read from the chip (tag, length, value; trailing padding
is ignored) and raises `LdsError` for anything malformed.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from icao9303 import mrz as _mrz
from icao9303 import tlv
from core.errors import ParseError


class LdsError(ParseError):
    """An LDS elementary file is malformed."""


# --------------------------------------------------------------------------- file map

@dataclass(frozen=True)
class LdsFile:
    name: str            # "EF.COM", "DG1", ..., "EF.SOD"
    dg: int | None       # data-group number, None for EF.COM / EF.SOD / MF files
    fid: int             # file identifier for SELECT
    sfi: int             # short EF identifier
    tag: int             # outer tag of the file's TLV
    in_mf: bool = False  # lives in the master file, not the eMRTD application

    @property
    def out_name(self) -> str:
        """File name for `egate passport read --out`: EF.COM, DG1.bin, SOD.bin ..."""
        if self.name == "EF.SOD":
            return "SOD.bin"
        return self.name if self.name.startswith("EF.") else f"{self.name}.bin"


_DG_TAGS = {1: 0x61, 2: 0x75, 3: 0x63, 4: 0x76, 5: 0x65, 6: 0x66, 7: 0x67, 8: 0x68, 9: 0x69,
            10: 0x6A, 11: 0x6B, 12: 0x6C, 13: 0x6D, 14: 0x6E, 15: 0x6F, 16: 0x70}

FILES: tuple[LdsFile, ...] = (
    LdsFile("EF.COM", None, 0x011E, 0x1E, 0x60),
    *(LdsFile(f"DG{n}", n, 0x0100 + n, n, t) for n, t in _DG_TAGS.items()),
    LdsFile("EF.SOD", None, 0x011D, 0x1D, 0x77),
    LdsFile("EF.CardAccess", None, 0x011C, 0x1C, 0x31, in_mf=True),
    LdsFile("EF.CardSecurity", None, 0x011D, 0x1D, 0x31, in_mf=True),
)
BY_NAME = {f.name: f for f in FILES}
BY_DG = {f.dg: f for f in FILES if f.dg is not None}
BY_TAG = {f.tag: f for f in FILES if not f.in_mf}
BY_FID = {f.fid: f for f in FILES if not f.in_mf}

#: eMRTD application identifier (SELECT by DF name).
EMRTD_AID = bytes.fromhex("A0000002471001")


def dg_for_tag(tag: int) -> int | None:
    f = BY_TAG.get(tag)
    return f.dg if f else None


def tag_for_dg(dg: int) -> int:
    try:
        return BY_DG[dg].tag
    except KeyError:
        raise LdsError(f"no data group {dg}") from None


def _outer(data: bytes, tag: int, what: str) -> tlv.Tlv:
    try:
        return tlv.parse_single(data, tag)
    except tlv.TlvError as exc:
        raise LdsError(f"{what}: {exc}") from exc


def _child(parent: tlv.Tlv, tag: int, what: str) -> tlv.Tlv:
    found = parent.find(tag)
    if found is None:
        raise LdsError(f"{what}: tag {tag:X} missing")
    return found


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return value.decode("latin-1")
        except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 never fails
            raise LdsError(f"{what}: not text") from exc


# --------------------------------------------------------------------------- EF.COM

_DIGITS = set("0123456789")


@dataclass(frozen=True)
class Com:
    lds_version: str          # "1.7"
    unicode_version: str      # "4.0.0"
    tags: tuple[int, ...]     # tag list as stored
    data_groups: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"lds_version": self.lds_version, "unicode_version": self.unicode_version,
                "data_groups": list(self.data_groups)}


def parse_com(data: bytes) -> Com:
    top = _outer(data, 0x60, "EF.COM")
    lds_v = top.find(0x5F01)
    uni_v = top.find(0x5F36)
    tag_list = _child(top, 0x5C, "EF.COM")
    lds = _text(lds_v.value, "EF.COM LDS version") if lds_v else ""
    uni = _text(uni_v.value, "EF.COM Unicode version") if uni_v else ""
    if lds and (len(lds) != 4 or not set(lds) <= _DIGITS):
        raise LdsError(f"EF.COM: LDS version {lds!r} is not 4 digits")
    if uni and (len(uni) != 6 or not set(uni) <= _DIGITS):
        raise LdsError(f"EF.COM: Unicode version {uni!r} is not 6 digits")
    tags = tuple(tag_list.value)
    dgs = []
    for t in tags:
        dg = dg_for_tag(t)
        if dg is None:
            raise LdsError(f"EF.COM: tag list holds {t:02X}, which is no data group")
        dgs.append(dg)
    return Com(f"{int(lds[:2])}.{int(lds[2:])}" if lds else "",
               f"{int(uni[:2])}.{int(uni[2:4])}.{int(uni[4:])}" if uni else "",
               tags, tuple(dgs))


def build_com(data_groups, lds_version: str = "0107", unicode_version: str = "040000") -> bytes:
    tags = bytes(tag_for_dg(n) for n in data_groups)
    return tlv.encode(0x60, [tlv.encode(0x5F01, lds_version.encode()),
                             tlv.encode(0x5F36, unicode_version.encode()),
                             tlv.encode(0x5C, tags)])


# --------------------------------------------------------------------------- DG1

def dg1_mrz_text(data: bytes) -> str:
    """The MRZ characters stored in DG1 (88, 90 or 72 characters, no line breaks)."""
    top = _outer(data, 0x61, "DG1")
    raw = _child(top, 0x5F1F, "DG1").value
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise LdsError("DG1: MRZ data is not ASCII") from exc
    if len(text) not in (88, 90, 72):
        raise LdsError(f"DG1: MRZ data has {len(text)} characters, expected 88, 90 or 72")
    return text


def parse_dg1(data: bytes, *, today: _dt.date | None = None) -> _mrz.Mrz:
    """The chip's MRZ.  Check-digit failures are reported in the result, not raised; no OCR
    repair is applied (the chip holds exact characters)."""
    text = dg1_mrz_text(data)
    try:
        return _mrz.parse([text], today=today, repair=False, strict=False)
    except _mrz.MrzError as exc:
        raise LdsError(f"DG1: {exc}") from exc


def build_dg1(mrz_lines) -> bytes:
    text = "".join(x.strip() for x in mrz_lines)
    return tlv.encode(0x61, [tlv.encode(0x5F1F, text.encode("ascii"))])


# --------------------------------------------------------------------------- DG2

ISO19794_5 = "ISO/IEC 19794-5"
ISO39794_5 = "ISO/IEC 39794-5"
FORMAT_OWNER_JTC1_SC37 = 0x0101
FORMAT_TYPE_19794_FACE = 0x0008
FORMAT_TYPE_39794_FACE = 0x002A
MAX_FACES = 9
#: OpenCV refuses nothing up front; cap what we ask it to decode.
MAX_IMAGE_PIXELS = 4096 * 4096


def image_format_of(data: bytes) -> str:
    if data[:3] == b"\xFF\xD8\xFF":
        return "jpeg"
    if data[:12] == bytes.fromhex("0000000C6A5020200D0A870A") or data[:4] == b"\xFF\x4F\xFF\x51":
        return "jpeg2000"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    return "unknown"


@dataclass(frozen=True, eq=False)
class FaceImage:
    container: str                   # ISO/IEC 19794-5 or ISO/IEC 39794-5
    image_format: str                # jpeg, jpeg2000 (detected from the bytes themselves)
    data: bytes                      # the encoded image
    width: int | None                # as declared in the record header
    height: int | None
    image: "object | None" = None    # decoded BGR numpy array (None when decode=False)
    header: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        shape = None if self.image is None else list(self.image.shape)
        return {"container": self.container, "image_format": self.image_format,
                "bytes": len(self.data), "width": self.width, "height": self.height,
                "decoded_shape": shape}


def image_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG SOF segment or a JPEG 2000 header, without decoding."""
    fmt = image_format_of(data)
    if fmt == "jpeg":
        pos = 2
        while pos + 4 <= len(data):
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == 0xFF:                   # fill byte
                pos += 1
                continue
            if marker in (0x01, *range(0xD0, 0xD8)):
                pos += 2
                continue
            length = int.from_bytes(data[pos + 2:pos + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                if pos + 9 > len(data):
                    return None
                h = int.from_bytes(data[pos + 5:pos + 7], "big")
                w = int.from_bytes(data[pos + 7:pos + 9], "big")
                return w, h
            if marker == 0xDA or length < 2:
                return None
            pos += 2 + length
        return None
    if fmt == "jpeg2000":
        if data[:4] == b"\xFF\x4F\xFF\x51":       # raw codestream: SIZ segment
            if len(data) < 24:
                return None
            xs, ys = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
            xo, yo = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
            return xs - xo, ys - yo
        i = data.find(b"ihdr")
        if i < 0 or i + 12 > len(data):
            return None
        return int.from_bytes(data[i + 8:i + 12], "big"), int.from_bytes(data[i + 4:i + 8], "big")
    return None


def decode_image(data: bytes, what: str = "image"):
    """Decode JPEG / JPEG 2000 with OpenCV into a BGR array; LdsError if it cannot.

    The declared size is checked first, so a few hostile header bytes cannot make OpenCV
    allocate gigabytes."""
    import cv2
    import numpy as np
    fmt = image_format_of(data)
    if fmt not in ("jpeg", "jpeg2000"):
        raise LdsError(f"{what}: neither JPEG nor JPEG 2000 (starts {data[:4].hex()})")
    dims = image_dimensions(data)
    if dims is None:
        raise LdsError(f"{what}: {fmt} header gives no image size")
    if dims[0] <= 0 or dims[1] <= 0 or dims[0] * dims[1] > MAX_IMAGE_PIXELS:
        raise LdsError(f"{what}: declared size {dims[0]}x{dims[1]} is implausible")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise LdsError(f"{what}: {fmt} data could not be decoded")
    if img.shape[0] * img.shape[1] > MAX_IMAGE_PIXELS:
        raise LdsError(f"{what}: {img.shape[1]}x{img.shape[0]} image is implausibly large")
    return img


def _u(b: bytes, off: int, n: int) -> int:
    return int.from_bytes(b[off:off + n], "big")


def _parse_19794_5(bdb: bytes, what: str) -> list[tuple[bytes, int, int, dict]]:
    """(image bytes, width, height, header fields) for each facial record of a 19794-5:2005 BDB."""
    if len(bdb) < 14 or bdb[:4] != b"FAC\x00":
        raise LdsError(f"{what}: 19794-5 record does not start with 'FAC\\0'")
    version = bdb[4:8]
    if version != b"010\x00":
        raise LdsError(f"{what}: 19794-5 version {version!r} is not supported (010 expected)")
    record_len = _u(bdb, 8, 4)
    count = _u(bdb, 12, 2)
    if record_len not in (len(bdb), len(bdb) - 8):     # some issuers omit the header
        raise LdsError(f"{what}: record length {record_len} does not match {len(bdb)} bytes")
    if not 1 <= count <= MAX_FACES:
        raise LdsError(f"{what}: {count} facial images declared")
    pos = 14
    out = []
    for i in range(count):
        if pos + 20 > len(bdb):
            raise LdsError(f"{what}: facial record {i + 1} truncated")
        block_len = _u(bdb, pos, 4)
        points = _u(bdb, pos + 4, 2)
        header = {"gender": bdb[pos + 6], "eye_colour": bdb[pos + 7],
                  "hair_colour": bdb[pos + 8], "feature_points": points}
        info = pos + 20 + 8 * points
        img_start = info + 12
        end = pos + block_len
        if block_len < 32 + 8 * points or end > len(bdb) or img_start > end:
            raise LdsError(f"{what}: facial record {i + 1} length {block_len} is inconsistent")
        header.update({"face_image_type": bdb[info], "image_data_type": bdb[info + 1],
                       "colour_space": bdb[info + 6], "source_type": bdb[info + 7]})
        out.append((bdb[img_start:end], _u(bdb, info + 2, 2), _u(bdb, info + 4, 2), header))
        pos = end
    return out


def _der_int(value: bytes) -> int:
    if not value:
        raise LdsError("empty INTEGER")
    return int.from_bytes(value, "big", signed=True)


def _parse_39794_5(bdb: tlv.Tlv, what: str) -> list[tuple[bytes, int | None, int | None, dict]]:
    """Images of a 39794-5 FaceImageDataBlock under BDB tag 7F2E (ICAO 39794-5 eMRTD AP:
    7F2E { A1 { 65 FaceImageDataBlock } }; a bare 65 is accepted too)."""
    node = bdb.find(0xA1) or bdb
    fidb = node.find(0x65)
    if fidb is None:
        raise LdsError(f"{what}: 39794-5 FaceImageDataBlock ([APPLICATION 5]) missing")
    version = fidb.find(0xA0)
    header = {}
    if version is not None and version.find(0x80) and version.find(0x81):
        header["generation"] = _der_int(version.find(0x80).value)
        header["year"] = _der_int(version.find(0x81).value)
    reps = fidb.find(0xA1)
    if reps is None or not reps.find_all(0x30):
        raise LdsError(f"{what}: 39794-5 representation blocks missing")
    out = []
    for i, rep in enumerate(reps.find_all(0x30)[:MAX_FACES]):
        image_rep = rep.find(0xA1)
        base = image_rep.find(0xA0) if image_rep else None
        block = base.find(0xA0) if base else None
        data = block.find(0x80) if block else None
        if data is None:
            raise LdsError(f"{what}: representation {i + 1} has no 2D image data")
        info = block.find(0xA1)
        width = height = None
        h = dict(header)
        if info is not None:
            fmt = info.find(0xA0)
            if fmt is not None and fmt.find(0x80) is not None:
                h["image_data_format"] = _der_int(fmt.find(0x80).value)
            size = info.find(0xA7)
            if size is not None and size.find(0x80) and size.find(0x81):
                width, height = _der_int(size.find(0x80).value), _der_int(size.find(0x81).value)
        out.append((data.value, width, height, h))
    return out


def parse_dg2(data: bytes, *, decode: bool = True) -> list[FaceImage]:
    """Face images of DG2, from 19794-5 (BDB 5F2E) or 39794-5 (BDB 7F2E) containers."""
    top = _outer(data, 0x75, "DG2")
    group = _child(top, 0x7F61, "DG2")
    count_tlv = _child(group, 0x02, "DG2 biometric information group")
    count = int.from_bytes(count_tlv.value, "big") if count_tlv.value else 0
    bits = group.find_all(0x7F60)
    if not 1 <= count <= MAX_FACES or count != len(bits):
        raise LdsError(f"DG2: {count} biometric templates declared, {len(bits)} present")
    faces: list[FaceImage] = []
    for n, bit in enumerate(bits, 1):
        what = f"DG2 template {n}"
        bht = bit.find(0xA1)
        fmt_type = bht.find(0x88) if bht else None
        if bit.find(0x5F2E) is not None:
            records = _parse_19794_5(bit.find(0x5F2E).value, what)
            container = ISO19794_5
        elif bit.find(0x7F2E) is not None:
            if fmt_type is not None and int.from_bytes(fmt_type.value, "big") == FORMAT_TYPE_19794_FACE:
                records = _parse_19794_5(bit.find(0x7F2E).value, what)
                container = ISO19794_5
            else:
                records = _parse_39794_5(bit.find(0x7F2E), what)
                container = ISO39794_5
        else:
            raise LdsError(f"{what}: no biometric data block (5F2E or 7F2E); "
                           "enciphered (7D) templates are not supported")
        for i, (img, w, h, header) in enumerate(records, 1):
            fmt = image_format_of(img)
            decoded = decode_image(img, f"{what} image {i}") if decode else None
            faces.append(FaceImage(container, fmt, bytes(img), w, h, decoded, header))
    return faces


def _build_19794_5(image: bytes, width: int, height: int) -> bytes:
    fmt = image_format_of(image)
    data_type = {"jpeg": 0, "jpeg2000": 1}.get(fmt)
    if data_type is None:
        raise LdsError("face image must be JPEG or JPEG 2000")
    facial_info = (b"\x00\x00\x00\x00"        # block length, patched below
                   + b"\x00\x00"               # feature points
                   + b"\x00" + b"\x00" + b"\x00"   # gender, eye colour, hair colour
                   + b"\x00\x00\x00"           # property mask
                   + b"\x00\x00"               # expression
                   + b"\x00\x00\x00"           # pose angle
                   + b"\x00\x00\x00")          # pose angle uncertainty
    image_info = (bytes([1, data_type]) + width.to_bytes(2, "big") + height.to_bytes(2, "big")
                  + bytes([1, 2]) + b"\x00\x00" + b"\x00\x00")
    block = facial_info + image_info + image
    block = len(block).to_bytes(4, "big") + block[4:]
    total = 14 + len(block)
    return b"FAC\x00" + b"010\x00" + total.to_bytes(4, "big") + (1).to_bytes(2, "big") + block


def _enc_int(tag: int, n: int) -> bytes:
    length = max(1, (n.bit_length() + 8) // 8)
    return tlv.encode(tag, n.to_bytes(length, "big", signed=True))


def _build_39794_5(image: bytes, width: int, height: int) -> bytes:
    fmt = image_format_of(image)
    code = {"jpeg": 2, "jpeg2000": 3}.get(fmt)
    if code is None:
        raise LdsError("face image must be JPEG or JPEG 2000")
    version = tlv.encode(0xA0, [_enc_int(0x80, 3), _enc_int(0x81, 2019)])
    info = tlv.encode(0xA1, [tlv.encode(0xA0, [_enc_int(0x80, code)]),
                             tlv.encode(0xA7, [_enc_int(0x80, width), _enc_int(0x81, height)])])
    block2d = tlv.encode(0xA0, [tlv.encode(0x80, image), info])
    rep = tlv.encode(0x30, [_enc_int(0x80, 0), tlv.encode(0xA1, [tlv.encode(0xA0, [block2d])])])
    fidb = tlv.encode(0x65, [version, tlv.encode(0xA1, [rep])])
    return tlv.encode(0xA1, [fidb])          # content of 7F2E


def build_dg2(image: bytes, *, container: str = ISO19794_5, width: int | None = None,
              height: int | None = None) -> bytes:
    """DG2 with one face image in a 19794-5 (default) or 39794-5 container."""
    if width is None or height is None:
        img = decode_image(image, "face image")
        height, width = img.shape[:2]
    if container == ISO19794_5:
        fmt_type, bdb = FORMAT_TYPE_19794_FACE, tlv.encode(0x5F2E, _build_19794_5(image, width, height))
    elif container == ISO39794_5:
        fmt_type, bdb = FORMAT_TYPE_39794_FACE, tlv.encode(0x7F2E, _build_39794_5(image, width, height))
    else:
        raise LdsError(f"unknown face container {container!r}")
    bht = tlv.encode(0xA1, [tlv.encode(0x80, b"\x01\x01"), tlv.encode(0x81, b"\x02"),
                            tlv.encode(0x82, b"\x00"),
                            tlv.encode(0x87, FORMAT_OWNER_JTC1_SC37.to_bytes(2, "big")),
                            tlv.encode(0x88, fmt_type.to_bytes(2, "big"))])
    bit = tlv.encode(0x7F60, [bht, bdb])
    return tlv.encode(0x75, [tlv.encode(0x7F61, [tlv.encode(0x02, b"\x01"), bit])])


# --------------------------------------------------------------------------- DG11 / DG12

_DG11_FIELDS = {0x5F0E: "full_name", 0x5F10: "personal_number", 0x5F2B: "full_date_of_birth",
                0x5F11: "place_of_birth", 0x5F42: "permanent_address", 0x5F12: "telephone",
                0x5F13: "profession", 0x5F14: "title", 0x5F15: "personal_summary",
                0x5F16: "proof_of_citizenship", 0x5F17: "other_valid_td_numbers",
                0x5F18: "custody_information"}
_DG12_FIELDS = {0x5F19: "issuing_authority", 0x5F26: "date_of_issue",
                0x5F1B: "endorsements_and_observations", 0x5F1C: "tax_or_exit_requirements",
                0x5F1D: "image_of_front", 0x5F1E: "image_of_rear",
                0x5F55: "date_and_time_of_personalisation",
                0x5F56: "personalisation_system_serial_number"}
_BINARY_FIELDS = {"proof_of_citizenship", "image_of_front", "image_of_rear"}


def _date_field(value: bytes, what: str) -> str:
    """YYYYMMDD as ASCII (8 bytes) or BCD (4 bytes) → 'YYYY-MM-DD' (unknown parts kept)."""
    if len(value) == 4:
        s = value.hex()
    else:
        s = _text(value, what)
    if len(s) != 8:
        raise LdsError(f"{what}: date {s!r} is not YYYYMMDD")
    return f"{s[:4]}-{s[4:6]}-{s[6:]}"


def _parse_fields(data: bytes, tag: int, fields: dict, other_tag: int, other_key: str,
                  what: str) -> dict:
    top = _outer(data, tag, what)
    tag_list = top.find(0x5C)
    out: dict = {}
    for child in top.children or ():
        name = fields.get(child.tag)
        if name is None:
            continue
        if name in _BINARY_FIELDS:
            out[name] = child.value
        elif name in ("full_date_of_birth", "date_of_issue"):
            out[name] = _date_field(child.value, f"{what} {name}")
        else:
            out[name] = _text(child.value, f"{what} {name}")
    others = []
    for group in top.find_all(0xA0):
        for item in group.find_all(other_tag):
            others.append(_text(item.value, f"{what} {other_key}"))
    if others:
        out[other_key] = others
    if tag_list is not None:
        out["tag_list"] = [f"{t:X}" for t in _split_tags(tag_list.value)]
    return out


def _split_tags(b: bytes) -> list[int]:
    tags, pos = [], 0
    while pos < len(b):
        try:
            t, pos = tlv.read_tag(b, pos)
        except tlv.TlvError as exc:
            raise LdsError(f"tag list: {exc}") from exc
        tags.append(t)
    return tags


def parse_dg11(data: bytes) -> dict:
    """Additional personal details; keys from ICAO 9303 Part 10 (full_name, place_of_birth…)."""
    return _parse_fields(data, 0x6B, _DG11_FIELDS, 0x5F0F, "other_names", "DG11")


def parse_dg12(data: bytes) -> dict:
    """Additional document details (issuing_authority, date_of_issue …)."""
    return _parse_fields(data, 0x6C, _DG12_FIELDS, 0x5F1A, "other_persons", "DG12")


def _build_fields(tag: int, fields: dict, values: dict, other_tag: int, other_key: str) -> bytes:
    rev = {v: k for k, v in fields.items()}
    items, tags = [], []
    for key, val in values.items():
        if key == other_key:
            continue
        t = rev[key]
        if key in ("full_date_of_birth", "date_of_issue"):
            val = val.replace("-", "")
        raw = val if isinstance(val, (bytes, bytearray)) else str(val).encode("utf-8")
        items.append(tlv.encode(t, raw))
        tags.append(t)
    if values.get(other_key):
        names = values[other_key]
        items.append(tlv.encode(0xA0, [tlv.encode(0x02, bytes([len(names)]))]
                                + [tlv.encode(other_tag, n.encode("utf-8")) for n in names]))
        tags.append(other_tag)
    tag_list = b"".join(tlv.encode_tag(t) for t in tags)
    return tlv.encode(tag, [tlv.encode(0x5C, tag_list)] + items)


def build_dg11(values: dict) -> bytes:
    return _build_fields(0x6B, _DG11_FIELDS, values, 0x5F0F, "other_names")


def build_dg12(values: dict) -> bytes:
    return _build_fields(0x6C, _DG12_FIELDS, values, 0x5F1A, "other_persons")


# --------------------------------------------------------------------------- DG14 / DG15 / SOD

def _oid(value: bytes) -> str:
    if not value:
        raise LdsError("empty OBJECT IDENTIFIER")
    arcs, n = [], 0
    for b in value:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(n)
            n = 0
    if value[-1] & 0x80:
        raise LdsError("truncated OBJECT IDENTIFIER")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(x) for x in [first, arcs[0] - 40 * first, *arcs[1:]])


@dataclass(frozen=True)
class SecurityInfos:
    """DG14 (or EF.CardAccess / EF.CardSecurity) content, kept for chip authentication."""
    der: bytes                      # the SET OF SecurityInfo
    protocols: tuple[str, ...]      # protocol OIDs, in order


def parse_dg14(data: bytes) -> SecurityInfos:
    top = _outer(data, 0x6E, "DG14")
    sets = top.find(0x31)
    if sets is None:
        raise LdsError("DG14: SET OF SecurityInfo missing")
    protocols = []
    for info in sets.children or ():
        oid = info.find(0x06) if info.tag == 0x30 else None
        if oid is None:
            raise LdsError("DG14: SecurityInfo without protocol OID")
        protocols.append(_oid(oid.value))
    return SecurityInfos(sets.encode(), tuple(protocols))


def parse_dg15(data: bytes) -> bytes:
    """Active-authentication public key (DER SubjectPublicKeyInfo), checked to load."""
    top = _outer(data, 0x6F, "DG15")
    if not top.children:
        raise LdsError("DG15: SubjectPublicKeyInfo missing")
    spki = top.children[0].encode()
    from cryptography.exceptions import UnsupportedAlgorithm

    from icao9303.eckeys import load_public_key
    try:
        load_public_key(spki)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # Explicit parameters of a curve we do not know: legal, kept for later use.
        if not _is_explicit_ec(spki):
            raise LdsError(f"DG15: public key does not load: {exc}") from exc
    return spki


def _is_explicit_ec(spki: bytes) -> bool:
    from asn1crypto import keys
    try:
        info = keys.PublicKeyInfo.load(spki, strict=True)
        alg = info["algorithm"]
        return alg["algorithm"].native == "ec" and alg["parameters"].name == "specified"
    except Exception:   # noqa: BLE001 - any parse failure means "not an explicit EC key"
        return False


def build_dg14(security_infos_der: bytes) -> bytes:
    return tlv.encode(0x6E, security_infos_der)


def build_dg15(spki_der: bytes) -> bytes:
    return tlv.encode(0x6F, spki_der)


def sod_content(data: bytes) -> bytes:
    """The CMS ContentInfo inside EF.SOD (tag 77)."""
    try:
        tag, pos = tlv.read_tag(data, 0)
        length, pos = tlv.read_length(data, pos)
    except tlv.TlvError as exc:
        raise LdsError(f"EF.SOD: {exc}") from exc
    if tag != 0x77:
        raise LdsError(f"EF.SOD: expected tag 77, found {tag:X}")
    if pos + length > len(data):
        raise LdsError(f"EF.SOD: declares {length} bytes, only {len(data) - pos} present")
    return bytes(data[pos:pos + length])


def build_sod(content_info_der: bytes) -> bytes:
    return tlv.encode(0x77, content_info_der)
