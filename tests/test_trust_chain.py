"""Trust chain: CSCA link certificates over several levels, key usage, validity at signing time,
country consistency, serial numbers, master lists and CRLs; CMS structures parsed in full before use
(digest-algorithm set, SignerInfo version, certificate choices); the CMS parsers fuzzed."""
import datetime as dt

import pytest
from asn1crypto import cms as acms
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings, strategies as st

from core.errors import ParseError
from icao9303 import card_security, cms, lds, mrz, pa, secinfo, trust
from simulators.testpki import LINKS, TestPki, build_card_access, sign_cms, synth_face_jpeg, with_serial

LINES = mrz.compose_td3(issuer="UTO", surname="ERIKSSON", given_names="ANNA MARIA",
                        document_number="L898902C3", nationality="UTO", birth_date="740812",
                        sex="F", expiry_date="340415", personal_number="ZE184226B")
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def store(pki):
    return trust.TrustStore.from_dir(pki.trust_dir)


@pytest.fixture(scope="module")
def linked(pki):
    return pki.personalise(LINES, synth_face_jpeg(3), signer="rsa-linked")


def failed(result):
    return {c.name for c in result.checks if c.status == "failed"}


def _store(pki, *names, crls=("csca_rsa",)):
    return trust.TrustStore(cscas=[pki.certs[n] for n in names], crls=[pki.crls[n] for n in crls])


# --------------------------------------------------------------------------- link certificates

def test_ds_under_the_newest_key_chains_through_two_link_certificates(pki, store, linked):
    result = pa.verify(linked.sod, linked.data_groups, store, mrz=linked.mrz_lines)
    assert result.passed, result.reasons
    assert "through 2 link certificate(s)" in result.check("csca_chain").reason
    chain, _ = store.chain(pki.certs["ds_linked"])
    assert [c.subject for c in chain.path] == [pki.certs[n].subject for n in ("link_rsa_v3", "link_rsa_v2", "csca_rsa")]
    assert chain.path[0].public_key().public_numbers() == pki.certs["link_rsa_v3"].public_key().public_numbers()
    assert not trust.is_self_signed(pki.certs["link_rsa_v2"]) and trust.is_self_signed(pki.certs["csca_rsa"])
    assert store.summary()["links"] == 2


def test_a_missing_middle_link_or_root_breaks_the_chain_by_name(pki, linked):
    for names in (("csca_rsa", "link_rsa_v3"), ("link_rsa_v2", "link_rsa_v3")):
        result = pa.verify(linked.sod, linked.data_groups, _store(pki, *names), mrz=linked.mrz_lines)
        assert failed(result) == {"csca_chain"}, result.reasons
        assert "leads to no trusted self-signed CSCA" in result.check("csca_chain").reason


def test_master_list_carries_the_links(pki, linked):
    store = trust.TrustStore.from_master_list(pki.master_list_path)
    for crl in pki.crls.values():
        store.add_crl(crl)
    assert len(store) == 5
    assert pa.verify(linked.sod, linked.data_groups, store, mrz=linked.mrz_lines).passed


def test_revoked_link_certificate(pki, linked, store):
    now = dt.datetime.now(dt.timezone.utc)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(pki.certs["csca_rsa"].subject)
           .last_update(now - DAY).next_update(now + 30 * DAY)
           .add_revoked_certificate(x509.RevokedCertificateBuilder()
                                    .serial_number(pki.certs["link_rsa_v2"].serial_number)
                                    .revocation_date(now - DAY).build())
           .sign(pki.keys["csca_rsa"], hashes.SHA256()))
    revoking = trust.TrustStore(cscas=list(store.cscas), crls=[crl])
    result = pa.verify(linked.sod, linked.data_groups, revoking, mrz=linked.mrz_lines)
    assert failed(result) == {"revocation"} and "link certificate" in result.check("revocation").reason


def test_crl_signed_with_the_newest_key_counts_for_the_csca(pki, store):
    now = dt.datetime.now(dt.timezone.utc)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(pki.certs["csca_rsa"].subject)
           .last_update(now - DAY).next_update(now + 30 * DAY).sign(pki.keys["link_rsa_v3"], hashes.SHA256()))
    assert trust.TrustStore(cscas=list(store.cscas), crls=[crl]).crls_for(pki.certs["csca_rsa"]) == [crl]


# --------------------------------------------------------------------------- key usage, time, country

def _ds(pki, issuer, *, usage=(True, False), ca=False, nb=None, na=None, country="UT", serial=None,
        private_key_usage=None):
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.BrainpoolP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COUNTRY_NAME, country),
                      x509.NameAttribute(x509.NameOID.COMMON_NAME, "DS test")])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(pki.certs[issuer].subject)
         .public_key(key.public_key()).serial_number(serial or x509.random_serial_number())
         .not_valid_before(nb or now - 30 * DAY).not_valid_after(na or now + 3000 * DAY)
         .add_extension(x509.KeyUsage(usage[0], usage[1], False, False, False, ca, False, False, False),
                        critical=True)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.keys[issuer].public_key()),
                        critical=False))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    if private_key_usage:
        from asn1crypto import x509 as ax509
        der = ax509.PrivateKeyUsagePeriod({"not_before": private_key_usage[0],
                                           "not_after": private_key_usage[1]}).dump()
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.16"), der), critical=False)
    return key, b.sign(pki.keys[issuer], hashes.SHA256())


def _sod(pki, key, cert, *, signing_time=None, data_groups=None):
    dgs = data_groups or {1: lds.build_dg1(LINES), 2: lds.build_dg2(synth_face_jpeg(1))}
    lso = pa.LdsSecurityObject({"version": 0, "hash_algorithm": {"algorithm": "sha256"},
                                "data_group_hash_values": [
                                    {"data_group_number": n, "data_group_hash_value": _sha256(d)}
                                    for n, d in sorted(dgs.items())]}).dump()
    return lds.build_sod(sign_cms(lso, pa.ID_ICAO_LDS_SECURITY_OBJECT, key, cert, signing_time=signing_time)), dgs


def _sha256(data):
    import hashlib
    return hashlib.sha256(data).digest()


def _verify(pki, store, key, cert, **kw):
    sod, dgs = _sod(pki, key, cert, **kw)
    return pa.verify(sod, dgs, store, mrz=LINES)


def test_key_usage_of_the_ds_and_of_the_chain(pki, store):
    key, cert = _ds(pki, "csca_rsa", usage=(False, True))
    assert "digitalSignature" in _verify(pki, store, key, cert).check("key_usage").reason
    key, cert = _ds(pki, "csca_rsa", ca=True)
    r = _verify(pki, store, key, cert)
    assert failed(r) == {"key_usage"} and "is a CA" in r.check("key_usage").reason
    # a CSCA that may not sign certificates
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.BrainpoolP384R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "UT"),
                      x509.NameAttribute(x509.NameOID.COMMON_NAME, "CSCA without keyCertSign")])
    csca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ca_key.public_key())
            .serial_number(7).not_valid_before(now - 900 * DAY).not_valid_after(now + 4000 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, True, False, False), critical=True)
            .sign(ca_key, hashes.SHA384()))
    ds_key = ec.generate_private_key(ec.BrainpoolP256R1())
    ds = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ds_key.public_key())
          .serial_number(8).not_valid_before(now - 30 * DAY).not_valid_after(now + 3000 * DAY)
          .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
          .sign(ca_key, hashes.SHA384()))
    r = _verify(pki, trust.TrustStore(cscas=[csca]), ds_key, ds)
    assert "lacks keyUsage keyCertSign" in r.check("key_usage").reason


def test_signing_time_outside_the_ds_validity_or_key_usage_period_or_in_the_future(pki, store):
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    key, cert = _ds(pki, "csca_rsa")
    assert _verify(pki, store, key, cert).passed
    r = _verify(pki, store, key, cert, signing_time=now - 40 * DAY)
    assert failed(r) == {"signing_time"} and "outside the DS certificate's validity" in r.check("signing_time").reason
    r = _verify(pki, store, key, cert, signing_time=now + 5 * DAY)
    assert failed(r) == {"signing_time"} and "future" in r.check("signing_time").reason
    key, cert = _ds(pki, "csca_rsa", private_key_usage=(now - 30 * DAY, now - 10 * DAY))
    r = _verify(pki, store, key, cert)
    assert failed(r) == {"signing_time"} and "usage period" in r.check("signing_time").reason
    assert _verify(pki, store, key, cert, signing_time=now - 20 * DAY).check("signing_time").status == "passed"


def test_ds_issued_before_its_csca_was_valid(pki, store):
    key, cert = _ds(pki, "csca_rsa", nb=pki.certs["csca_rsa"].not_valid_before_utc - 10 * DAY)
    r = _verify(pki, store, key, cert, signing_time=cert.not_valid_before_utc + DAY)
    assert failed(r) == {"signing_time"} and "issuer's validity" in r.check("signing_time").reason


def test_country_consistency_of_ds_and_chain(pki, store):
    key, cert = _ds(pki, "csca_rsa", country="NL")
    r = _verify(pki, store, key, cert)
    assert failed(r) == {"issuing_state"}


# --------------------------------------------------------------------------- serial numbers

@pytest.mark.parametrize("serial", [0, -5])
def test_ds_with_zero_or_negative_serial_is_refused(pki, store, serial):
    key, cert = _ds(pki, "csca_rsa")
    cert = with_serial(cert, serial, pki.keys["csca_rsa"])
    assert cms.serial_problem(cert)
    r = _verify(pki, store, key, cert)
    assert failed(r) == {"ds_certificate"} and "refused" in r.check("ds_certificate").reason
    assert r.check("sod_signature").status == "not_checked"


def test_csca_with_zero_serial_is_not_trusted(pki, tmp_path):
    bad = with_serial(pki.certs["csca_foreign"], 0, pki.keys["csca_foreign"])
    with pytest.raises(trust.TrustError, match="zero"):
        trust.TrustStore().add_csca(bad)
    (tmp_path / "bad.pem").write_bytes(bad.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(trust.TrustError, match="bad.pem"):
        trust.TrustStore.from_dir(tmp_path)
    from asn1crypto import x509 as ax509
    certs = [ax509.Certificate.load(c.public_bytes(serialization.Encoding.DER))
             for c in (pki.certs["csca_rsa"], bad)]
    ml = sign_cms(trust.CscaMasterList({"version": 0, "cert_list": certs}).dump(), trust.ID_ICAO_CSCA_MASTER_LIST,
                  pki.keys["ml_signer"], pki.certs["ml_signer"])
    store = trust.TrustStore()
    assert store.add_master_list(ml) == 2
    assert len(store) == 1 and "zero" in store.rejected[0]


# --------------------------------------------------------------------------- CMS parsed in full

def _mutate(sod: bytes, fn) -> bytes:
    info = acms.ContentInfo.load(lds.sod_content(sod))
    fn(info["content"])
    return lds.build_sod(acms.ContentInfo({"content_type": "signed_data", "content": info["content"]}).dump(force=True))


def test_cms_structure_is_checked_before_use(pki, linked):
    def digest_set(sd):
        sd["digest_algorithms"] = [{"algorithm": "sha512"}]

    def signer_version(sd):
        sd["signer_infos"][0]["version"] = "v3"

    def sd_version(sd):
        sd["version"] = "v2"

    for fn, words in ((digest_set, "digestAlgorithms"), (signer_version, "SignerInfo version"),
                      (sd_version, "SignedData version")):
        with pytest.raises(pa.SodError, match=words):
            pa.parse_sod(_mutate(linked.sod, fn))
        r = pa.verify(_mutate(linked.sod, fn), linked.data_groups, trust.TrustStore(), mrz=LINES)
        assert r.check("sod").status == "failed" and not r.passed


def test_other_certificate_choices_are_parsed_then_left_out(pki, linked):
    def add_v1_attr(sd):
        certs = list(sd["certificates"])
        certs.append(acms.CertificateChoices(name="other", value=acms.OtherCertificateFormat(
            {"other_cert_format": "1.2.3.4", "other_cert": core.Integer(5)})))
        sd["certificates"] = certs
    parsed = pa.parse_sod(_mutate(linked.sod, add_v1_attr))
    assert len(parsed.certificates) == 1 and parsed.signed_data.signing_time is not None
    assert parsed.signed_data.digest_algorithms == ("sha256",)


def test_card_security_under_a_linked_ds(pki, store):
    card_access = build_card_access("ECDH-CAM-AES-128/13")
    cam = ec.generate_private_key(ec.BrainpoolP256R1())
    data = pki.build_card_security(card_access, cam, "ds_linked")
    r = card_security.verify(data, store)
    assert r.passed, r.reasons
    assert {c.name for c in r.checks} >= {"key_usage", "signing_time", "csca_chain"}
    r = card_security.verify(pki.build_card_security(card_access, cam, "ds_no_sign_usage"), store)
    assert failed(r) == {"key_usage"}


# --------------------------------------------------------------------------- fuzzing

def _fuzzed(data: bytes, draw_ops):
    b = bytearray(data)
    for kind, pos, val in draw_ops:
        pos %= max(1, len(b))
        if kind == 0:
            b[pos] = val
        elif kind == 1:
            del b[pos:pos + 1 + val % 8]
        else:
            b[pos:pos] = bytes([val]) * (1 + val % 3)
    return bytes(b)


OPS = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_fuzzed_sod_master_list_and_card_security_never_raise_anything_else(pki, store, linked, ops):
    sod = _fuzzed(linked.sod, ops)
    try:
        parsed = pa.parse_sod(sod)
        parsed.signed_data.signer.native, parsed.dg_hashes  # nothing lazy left to fail
    except ParseError:
        pass
    r = pa.verify(sod, linked.data_groups, store, mrz=LINES)
    assert r.check("sod").status in ("passed", "failed")
    ml = _fuzzed(_ML[0] if _ML else pki.master_list(), ops)
    try:
        trust.parse_master_list(ml)
    except ParseError:
        pass
    cs = _fuzzed(_card_security(pki), ops)
    try:
        secinfo.parse_card_security(cs)
    except ParseError:
        pass
    assert card_security.verify(cs, store).checks


_ML: list = []
_CS: list = []


def _card_security(pki):
    if not _CS:
        _CS.append(pki.build_card_security(build_card_access("ECDH-CAM-AES-128/13"),
                                           ec.generate_private_key(ec.BrainpoolP256R1()), "ds_linked"))
    return _CS[0]


def test_links_constant_matches_the_trust_dir(pki):
    assert all(n in pki.certs for n in LINKS)
