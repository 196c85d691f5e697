"""Property tests and fuzzing of the document parsers: arbitrary or mutated input never
crashes or hangs them - they return a result or raise their own ParseError subclass."""
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from icao9303 import cms, lds, mrz, pa, tlv, trust
from core.errors import ParseError
from simulators.testpki import TestPki, synth_face_jpeg

FUZZ = settings(max_examples=120, deadline=2000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
HEAVY = settings(max_examples=50, deadline=5000, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])

MRZ_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
TODAY = dt.date(2025, 11, 26)
LINES = mrz.compose_td3(issuer="UTO", surname="ERIKSSON", given_names="ANNA MARIA",
                        document_number="L898902C3", nationality="UTO", birth_date="740812",
                        sex="F", expiry_date="340415", personal_number="ZE184226B")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    pki = TestPki.create(tmp_path_factory.mktemp("pki"))
    doc = pki.personalise(LINES, synth_face_jpeg(5), data_groups=(1, 2, 11, 12, 14, 15))
    store = trust.TrustStore.from_dir(pki.trust_dir)
    return {"pki": pki, "doc": doc, "store": store, "ml": pki.master_list(),
            "cert": pki.certs["ds_rsa"].public_bytes(cms_encoding()),
            "crl": pki.crls["csca_rsa"].public_bytes(cms_encoding())}


def cms_encoding():
    from cryptography.hazmat.primitives.serialization import Encoding
    return Encoding.DER


@st.composite
def mutations(draw, data: bytes):
    """1-4 byte flips, insertions, deletions or a truncation of `data`."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not b:
            break
        kind = draw(st.sampled_from(["flip", "flip", "set", "insert", "delete", "truncate"]))
        i = draw(st.integers(0, len(b) - 1))
        if kind == "flip":
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            b[i] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF]))
        elif kind == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del b[i:i + draw(st.integers(1, 4))]
        else:
            del b[i:]
    return bytes(b)


def expect(fn, error, *args, **kw):
    """Call fn; it may return or raise `error` (a ParseError), nothing else."""
    assert issubclass(error, ParseError)
    try:
        return fn(*args, **kw)
    except error:
        return None


# --------------------------------------------------------------------------- MRZ

@FUZZ
@given(st.lists(st.text(max_size=100), max_size=4))
def test_mrz_arbitrary_text(lines):
    for strict in (True, False):
        expect(mrz.parse, mrz.MrzError, lines, today=TODAY, strict=strict)


@st.composite
def mrz_shaped(draw):
    shape = draw(st.sampled_from([(30, 30, 30), (36, 36), (44, 44)]))
    first = draw(st.sampled_from(["P", "I", "A", "C", "V", "X"]))
    lines = [draw(st.text(alphabet=MRZ_CHARS, min_size=n, max_size=n)) for n in shape]
    lines[0] = first + lines[0][1:]
    return lines


@FUZZ
@given(mrz_shaped())
def test_mrz_shaped_noise_gives_consistent_verdicts(lines):
    m = expect(mrz.parse, mrz.MrzError, lines, today=TODAY, strict=False)
    if m is None:
        return
    assert len(m.repairs) <= mrz.MAX_REPAIRS
    for r in m.repairs:                       # repairs only map listed confusions
        assert mrz.OCR_CONFUSIONS[r.found] == r.replaced_by
        assert lines[r.line - 1][r.column - 1] == r.found
    changed = sum(a != b for x, y in zip(lines, m.lines) for a, b in zip(x, y))
    assert changed == len(m.repairs)
    for c in m.checks:
        assert c.valid == (c.printed.isdigit() and int(c.printed) == c.computed) or c.printed == "<"
    if m.valid:
        mrz.parse(list(m.lines), today=TODAY)       # strict parse agrees


@FUZZ
@given(surname=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=15),
       given=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ ", max_size=15),
       number=st.text(alphabet=MRZ_CHARS[:-1], min_size=1, max_size=9),
       birth=st.dates(dt.date(1926, 1, 1), dt.date(2025, 11, 26)),
       expiry=st.dates(dt.date(2000, 1, 1), dt.date(2074, 12, 31)),
       sex=st.sampled_from("MFX"),
       personal=st.text(alphabet=MRZ_CHARS[:-1], max_size=14))
def test_mrz_compose_parse_round_trip(surname, given, number, birth, expiry, sex, personal):
    given = " ".join(given.split())
    lines = mrz.compose_td3(issuer="UTO", surname=surname, given_names=given,
                            document_number=number, nationality="UTO",
                            birth_date=birth.strftime("%y%m%d"), sex=sex,
                            expiry_date=expiry.strftime("%y%m%d"), personal_number=personal)
    m = mrz.parse(lines, today=TODAY)
    assert (m.surname, m.document_number, m.birth_date, m.expiry_date, m.sex) == \
        (surname, number, birth, expiry, sex)
    if len(surname) + 2 + len(given) <= 39:
        assert m.given_names == given
    assert m.optional_data == personal


@FUZZ
@given(st.data())
def test_mrz_single_misread_is_repaired_or_rejected_never_wrongly_accepted(data):
    # Replace one digit in a numeric field by its OCR look-alike letter.
    line2 = LINES[1]
    numeric = [i for i in list(range(13, 20)) + list(range(21, 28)) + [9, 42, 43]
               if line2[i] in mrz.OCR_CONFUSIONS.values()]
    i = data.draw(st.sampled_from(numeric))
    letter = {v: k for k, v in mrz.OCR_CONFUSIONS.items()}[line2[i]]
    m = mrz.parse([LINES[0], line2[:i] + letter + line2[i + 1:]], today=TODAY)
    assert m.lines == tuple(LINES) and len(m.repairs) == 1


# --------------------------------------------------------------------------- TLV

@FUZZ
@given(st.binary(max_size=512))
def test_tlv_arbitrary_bytes(data):
    items = expect(tlv.parse, tlv.TlvError, data)
    if items is not None:
        assert b"".join(i.encode() for i in items) == data or any(
            i.header_length != len(tlv.encode_tag(i.tag)) + len(tlv.encode_length(i.length))
            for i in items)   # non-minimal length encodings re-encode shorter
    expect(tlv.total_length, tlv.TlvError, data)


@FUZZ
@given(tag=st.sampled_from([0x02, 0x04, 0x30, 0x31, 0x5C, 0x5F1F, 0x5F2E, 0x7F2E, 0x7F61, 0x61,
                            0x75, 0xA0, 0xA1, 0x5F8101]),
       value=st.binary(max_size=300))
def test_tlv_round_trip(tag, value):
    if tlv.tag_is_constructed(tag):
        value = tlv.encode(0x04, value)
    (item,) = tlv.parse(tlv.encode(tag, value))
    assert (item.tag, item.value) == (tag, value)


@FUZZ
@given(st.data())
def test_tlv_mutated_dg2(sample, data):
    expect(tlv.parse, tlv.TlvError, data.draw(mutations(sample["doc"].files["DG2"])))


# --------------------------------------------------------------------------- LDS

PARSERS = {"EF.COM": lds.parse_com, "DG1": lds.parse_dg1, "DG11": lds.parse_dg11,
           "DG12": lds.parse_dg12, "DG14": lds.parse_dg14, "DG15": lds.parse_dg15}


@FUZZ
@given(st.binary(max_size=300))
def test_lds_parsers_arbitrary_bytes(data):
    for parse in (*PARSERS.values(), lds.parse_dg2, lds.sod_content):
        expect(parse, lds.LdsError, data)


@FUZZ
@given(st.data())
def test_lds_parsers_mutated_files(sample, data):
    name = data.draw(st.sampled_from(sorted(PARSERS)))
    expect(PARSERS[name], lds.LdsError, data.draw(mutations(sample["doc"].files[name])))


@HEAVY
@given(st.data())
def test_dg2_mutated(sample, data):
    faces = expect(lds.parse_dg2, lds.LdsError, data.draw(mutations(sample["doc"].files["DG2"])))
    if faces is not None:
        assert all(f.image is not None for f in faces)


# --------------------------------------------------------------------------- SOD / PA

@FUZZ
@given(st.binary(max_size=400))
def test_sod_arbitrary_bytes(data):
    expect(pa.parse_sod, pa.SodError, data)
    expect(pa.parse_sod, pa.SodError, b"\x77" + tlv.encode_length(len(data)) + data)


@HEAVY
@given(st.data())
def test_sod_mutated_parse_and_verify(sample, data):
    doc = sample["doc"]
    sod = data.draw(mutations(doc.sod))
    expect(pa.parse_sod, pa.SodError, sod)
    result = pa.verify(sod, doc.data_groups, sample["store"], mrz=doc.mrz_lines)
    assert {c.status for c in result.checks} <= {"passed", "failed", "not_checked"}
    if result.check("sod").status == "failed":
        assert not result.passed


@HEAVY
@given(st.data())
def test_verify_with_mutated_data_groups_never_passes(sample, data):
    doc = sample["doc"]
    n = data.draw(st.sampled_from(sorted(doc.data_groups)))
    changed = data.draw(mutations(doc.data_groups[n]))
    groups = dict(doc.data_groups)
    groups[n] = changed
    result = pa.verify(doc.sod, groups, sample["store"], mrz=doc.mrz_lines)
    assert result.passed == (changed == doc.data_groups[n])


# --------------------------------------------------------------------------- certificates

@FUZZ
@given(st.binary(max_size=400))
def test_certificate_and_crl_arbitrary_bytes(data):
    expect(cms.load_certificate, cms.CertificateError, data)
    expect(cms.load_certificates, cms.CertificateError, data)
    expect(cms.load_crl, cms.CertificateError, data)
    expect(trust.parse_master_list, trust.MasterListError, data)


@HEAVY
@given(st.data())
def test_certificate_mutated(sample, data):
    cert = expect(cms.load_certificate, cms.CertificateError, data.draw(mutations(sample["cert"])))
    if cert is not None:
        issuers = sample["store"].issuers_of(cert)
        for issuer in issuers:
            reason = cms.verify_issued_by(cert, issuer)
            assert reason is None or isinstance(reason, str)
        cms.country_of(cert.subject)
        cms.name_str(cert.subject)


@HEAVY
@given(st.data())
def test_crl_and_master_list_mutated(sample, data):
    crl = expect(cms.load_crl, cms.CertificateError, data.draw(mutations(sample["crl"])))
    if crl is not None:
        store = trust.TrustStore(cscas=list(sample["store"].cscas), crls=[crl])
        store.crls_for(sample["pki"].certs["csca_rsa"])
    expect(trust.parse_master_list, trust.MasterListError, data.draw(mutations(sample["ml"])))
