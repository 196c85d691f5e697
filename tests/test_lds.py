"""LDS files: file map, EF.COM, DG1, DG2 (19794-5 and 39794-5, JPEG and JPEG 2000), DG11, DG12,
DG14, DG15, EF.SOD."""
import struct

import cv2
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from icao9303 import lds, tlv
from icao9303.lds import LdsError

TD3 = ["P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
       "L898902C36UTO7408122F1204159ZE184226B<<<<<10"]


def face(fmt=".jpg", w=240, h=320):
    img = np.full((h, w, 3), 200, np.uint8)
    cv2.circle(img, (w // 2, h // 2), w // 3, (80, 120, 190), -1)
    ok, enc = cv2.imencode(fmt, img)
    return bytes(enc)


def test_file_map():
    assert lds.BY_NAME["EF.COM"].fid == 0x011E and lds.BY_NAME["EF.COM"].sfi == 0x1E
    assert lds.BY_NAME["EF.SOD"].fid == 0x011D and lds.BY_NAME["EF.SOD"].tag == 0x77
    assert lds.BY_DG[1].tag == 0x61 and lds.BY_DG[2].tag == 0x75 and lds.BY_DG[15].tag == 0x6F
    assert all(lds.BY_DG[n].fid == 0x0100 + n and lds.BY_DG[n].sfi == n for n in range(1, 17))
    assert lds.dg_for_tag(0x6B) == 11 and lds.tag_for_dg(12) == 0x6C
    assert [lds.BY_NAME[n].out_name for n in ("EF.COM", "DG1", "EF.SOD")] == \
        ["EF.COM", "DG1.bin", "SOD.bin"]
    assert lds.EMRTD_AID.hex().upper() == "A0000002471001"


def test_com_known_bytes():
    data = bytes.fromhex("60165F0104303130375F36063034303030305C0461756B6C")
    com = lds.parse_com(data)
    assert (com.lds_version, com.unicode_version) == ("1.7", "4.0.0")
    assert com.data_groups == (1, 2, 11, 12)
    assert lds.build_com([1, 2, 11, 12]) == data


def test_com_rejects_unknown_tag():
    with pytest.raises(LdsError, match="no data group"):
        lds.parse_com(tlv.encode(0x60, [tlv.encode(0x5C, b"\x61\x99")]))


def test_dg1_round_trip():
    data = lds.build_dg1(TD3)
    assert data[:5] == bytes.fromhex("615B5F1F58")
    m = lds.parse_dg1(data)
    assert m.valid and m.document_number == "L898902C3"


def test_dg1_with_bad_check_digit_is_reported_not_raised():
    bad = [TD3[0], TD3[1][:-1] + "9"]
    m = lds.parse_dg1(lds.build_dg1(bad))
    assert not m.valid and not m.check("composite").valid and not m.repairs


@pytest.mark.parametrize("data,match", [
    (tlv.encode(0x61, [tlv.encode(0x5F1F, b"P<UTO")]), "characters"),
    (tlv.encode(0x61, [tlv.encode(0x5F1E, b"x")]), "5F1F missing"),
    (tlv.encode(0x62, b""), "expected tag 61"),
    (b"\x61\x10", "DG1"),
])
def test_dg1_errors(data, match):
    with pytest.raises(LdsError, match=match):
        lds.parse_dg1(data)


def iso19794_record(image: bytes, w: int, h: int, data_type: int = 0) -> bytes:
    """A 19794-5:2005 facial record written field by field from the standard."""
    facial_info = struct.pack(">IHBBB3sH3s3s", 20 + 12 + len(image), 0, 1, 3, 2, b"\0\0\0", 0,
                              b"\0\0\0", b"\0\0\0")
    image_info = struct.pack(">BBHHBBHH", 1, data_type, w, h, 1, 2, 0, 0)
    record = facial_info + image_info + image
    return b"FAC\0" + b"010\0" + struct.pack(">IH", 14 + len(record), 1) + record


def dg2_with(bdb_tag: int, bdb: bytes, fmt_type: int) -> bytes:
    bht = tlv.encode(0xA1, [tlv.encode(0x80, b"\x01\x01"), tlv.encode(0x81, b"\x02"),
                            tlv.encode(0x87, b"\x01\x01"), tlv.encode(0x88, fmt_type.to_bytes(2, "big"))])
    return tlv.encode(0x75, [tlv.encode(0x7F61, [tlv.encode(0x02, b"\x01"),
                                                 tlv.encode(0x7F60, [bht, tlv.encode(bdb_tag, bdb)])])])


def test_dg2_19794_5_written_from_the_standard():
    img = face()
    faces = lds.parse_dg2(dg2_with(0x5F2E, iso19794_record(img, 240, 320), 0x0008))
    assert len(faces) == 1
    f = faces[0]
    assert (f.container, f.image_format, f.width, f.height) == (lds.ISO19794_5, "jpeg", 240, 320)
    assert f.data == img and f.image.shape == (320, 240, 3)
    assert f.header["gender"] == 1 and f.header["eye_colour"] == 3


def test_dg2_39794_5_written_from_the_asn1_module():
    img = face()
    def i(tag, n):
        return tlv.encode(tag, n.to_bytes(2 if n > 127 else 1, "big"))
    # FaceImageDataBlock ::= [APPLICATION 5] SEQUENCE { versionBlock [0], representationBlocks [1] }
    rep = tlv.encode(0x30, [i(0x80, 0),                                  # representationId
                            tlv.encode(0xA1, [tlv.encode(0xA0, [         # imageRepresentation / base
                                tlv.encode(0xA0, [tlv.encode(0x80, img),  # 2D block: data
                                                  tlv.encode(0xA1, [tlv.encode(0xA0, [i(0x80, 2)]),
                                                                    tlv.encode(0xA7, [i(0x80, 240), i(0x81, 320)])])])])])])
    fidb = tlv.encode(0x65, [tlv.encode(0xA0, [i(0x80, 3), tlv.encode(0x81, (2019).to_bytes(2, "big"))]),
                             tlv.encode(0xA1, [rep])])
    faces = lds.parse_dg2(dg2_with(0x7F2E, tlv.encode(0xA1, [fidb]), 0x002A))
    f = faces[0]
    assert (f.container, f.image_format, f.width, f.height) == (lds.ISO39794_5, "jpeg", 240, 320)
    assert f.header == {"generation": 3, "year": 2019, "image_data_format": 2}
    assert f.data == img and f.image.shape == (320, 240, 3)


@pytest.mark.parametrize("container", [lds.ISO19794_5, lds.ISO39794_5])
@pytest.mark.parametrize("fmt,name", [(".jpg", "jpeg"), (".jp2", "jpeg2000")])
def test_dg2_builder_round_trip(container, fmt, name):
    img = face(fmt)
    f = lds.parse_dg2(lds.build_dg2(img, container=container))[0]
    assert (f.container, f.image_format, f.data) == (container, name, img)
    assert f.image.shape == (320, 240, 3)


def test_dg2_decode_can_be_skipped():
    assert lds.parse_dg2(lds.build_dg2(face()), decode=False)[0].image is None


def test_dg2_undecodable_image_is_an_error():
    # SOI, a valid SOF0 (16x16, 3 components), then EOI: a size but no image data.
    sof = bytes.fromhex("FFC000110800100010030122000211010311 01".replace(" ", ""))
    jpeg = b"\xFF\xD8" + sof + b"\xFF\xD9"
    assert lds.image_dimensions(jpeg) == (16, 16)
    data = dg2_with(0x5F2E, iso19794_record(jpeg, 16, 16), 0x0008)
    with pytest.raises(LdsError, match="could not be decoded"):
        lds.parse_dg2(data)


@pytest.mark.parametrize("mutate,match", [
    (lambda r: b"FAD\0" + r[4:], "FAC"),
    (lambda r: r[:4] + b"030\0" + r[8:], "version"),
    (lambda r: r[:8] + b"\x00\x00\x00\x10" + r[12:], "record length"),
    (lambda r: r[:12] + b"\x00\x00" + r[14:], "facial images"),
    (lambda r: r[:14] + b"\xFF\xFF\xFF\xFF" + r[18:], "inconsistent"),
])
def test_dg2_19794_5_header_errors(mutate, match):
    rec = mutate(iso19794_record(face(), 240, 320))
    with pytest.raises(LdsError, match=match):
        lds.parse_dg2(dg2_with(0x5F2E, rec, 0x0008))


def test_dg2_count_mismatch():
    good = lds.build_dg2(face())
    top = tlv.parse_single(good)
    group = top.find(0x7F61)
    bad = tlv.encode(0x75, [tlv.encode(0x7F61, [tlv.encode(0x02, b"\x02"), *group.find_all(0x7F60)])])
    with pytest.raises(LdsError, match="2 biometric templates declared, 1 present"):
        lds.parse_dg2(bad)


def test_dg11_dg12_round_trip():
    d11 = {"full_name": "ERIKSSON<<ANNA<MARIA", "place_of_birth": "ZENITH,UTOPIA",
           "full_date_of_birth": "1974-08-12", "personal_number": "123",
           "other_names": ["ANNA SVENSSON", "ANNA E"]}
    out = lds.parse_dg11(lds.build_dg11(d11))
    assert {k: out[k] for k in d11} == d11
    assert out["tag_list"] == ["5F0E", "5F11", "5F2B", "5F10", "5F0F"]
    d12 = {"issuing_authority": "UTOPIA", "date_of_issue": "2020-01-02",
           "image_of_front": b"\xFF\xD8\xFF\x00", "other_persons": ["CHILD<<ONE"]}
    out = lds.parse_dg12(lds.build_dg12(d12))
    assert {k: out[k] for k in d12} == d12


def test_dg11_bcd_date_of_birth():
    data = tlv.encode(0x6B, [tlv.encode(0x5C, b"\x5F\x2B"), tlv.encode(0x5F2B, bytes.fromhex("19740812"))])
    assert lds.parse_dg11(data)["full_date_of_birth"] == "1974-08-12"


def test_dg14_and_dg15():
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    assert lds.parse_dg15(lds.build_dg15(spki)) == spki
    with pytest.raises(LdsError, match="does not load"):
        lds.parse_dg15(lds.build_dg15(tlv.encode(0x30, b"\x02\x01\x05")))
    oid = bytes.fromhex("060A04007F00070202010202")                       # id-PK-ECDH ... (sample)
    infos = tlv.encode(0x31, [tlv.encode(0x30, [oid, spki])])
    si = lds.parse_dg14(lds.build_dg14(infos))
    assert si.protocols == ("0.4.0.127.0.7.2.2.1.2.2",) and si.der == infos


def test_sod_content():
    inner = tlv.encode(0x30, b"\x01\x02")
    assert lds.sod_content(lds.build_sod(inner)) == inner
    with pytest.raises(LdsError, match="expected tag 77"):
        lds.sod_content(inner)
    with pytest.raises(LdsError, match="declares"):
        lds.sod_content(b"\x77\x05\x00")


@pytest.mark.parametrize("fmt", [".jpg", ".jp2"])
def test_image_dimensions_from_headers(fmt):
    assert lds.image_dimensions(face(fmt, 123, 77)) == (123, 77)
    assert lds.image_dimensions(b"\xFF\x4F\xFF\x51" + bytes(4) + (640).to_bytes(4, "big")
                                + (480).to_bytes(4, "big") + bytes(8)) == (640, 480)


def test_hostile_image_size_is_refused_before_decoding():
    jpeg = bytearray(face())
    sof = jpeg.find(b"\xFF\xC0")
    jpeg[sof + 5:sof + 9] = b"\xFF\xFF\xFF\xFF"          # 65535 x 65535 declared
    with pytest.raises(LdsError, match="implausible"):
        lds.decode_image(bytes(jpeg))
    with pytest.raises(LdsError, match="no image size"):
        lds.decode_image(b"\xFF\xD8\xFF\xE0\x00\x02")
