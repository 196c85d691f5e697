"""nbis-py's own variant of the ISO/IEC 19794-2:2005 record, in both directions.

nbis-py 0.1.3 writes and reads a record that differs from the standard: the header
is 22 bytes (no number-of-views and reserved bytes), there is no extended-data
length after the minutiae, and minutia quality runs 0..63 instead of 0..100.  The
standard codec is `iso19794_2`; this module only bridges to the library.
"""
from __future__ import annotations

from biometrics.finger import iso19794_2 as iso

HEADER_LEN = 22
NBIS_QUALITY_MAX = 63


def record(template: iso.Template, view_index: int = 0) -> bytearray:
    """One finger view of a Template as nbis-py's record (a bytearray, so it can be wiped)."""
    if not template.views:
        raise ValueError("template has no finger view")
    v = template.views[view_index]
    out = bytearray(HEADER_LEN + iso.VIEW_HEADER_LEN + iso.MINUTIA_LEN * len(v.minutiae))
    out[0:8] = iso.MAGIC
    out[8:12] = len(out).to_bytes(4, "big")
    out[14:16] = template.width.to_bytes(2, "big")
    out[16:18] = template.height.to_bytes(2, "big")
    out[18:20] = template.resolution_x.to_bytes(2, "big")
    out[20:22] = template.resolution_y.to_bytes(2, "big")
    out[22:26] = bytes((v.position, v.view << 4 | v.impression, v.quality, len(v.minutiae)))
    pos = HEADER_LEN + iso.VIEW_HEADER_LEN
    for m in v.minutiae:
        tx = int(m.type) << 14 | m.x
        out[pos:pos + 6] = bytes((tx >> 8, tx & 0xFF, m.y >> 8, m.y & 0xFF, m.angle,
                                  round(m.quality * NBIS_QUALITY_MAX / 100)))
        pos += iso.MINUTIA_LEN
    return out


def minutiae(data: bytes, width: int, height: int) -> tuple[iso.Minutia, ...]:
    """The minutiae of an nbis-py record, as standard minutiae (those inside the image)."""
    count = data[HEADER_LEN + 3]
    start = HEADER_LEN + iso.VIEW_HEADER_LEN
    body = memoryview(data)[start:start + iso.MINUTIA_LEN * count]
    out = []
    for k in range(0, len(body), iso.MINUTIA_LEN):
        b0, b1, b2, b3, angle, q = body[k:k + iso.MINUTIA_LEN]
        x, y, kind = (b0 & 0x3F) << 8 | b1, (b2 & 0x3F) << 8 | b3, b0 >> 6
        if x < width and y < height:
            out.append(iso.Minutia(x=x, y=y, angle=angle,
                                   type=iso.MinutiaType(kind) if kind < 3 else iso.MinutiaType.OTHER,
                                   quality=min(100, round(q * 100 / NBIS_QUALITY_MAX))))
    return tuple(out)
