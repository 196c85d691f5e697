"""Passive authentication end to end with the test PKI: the genuine document passes, each
forged variant fails with its own reason, and every check reports passed/failed/not_checked."""
import datetime as dt

import pytest
from asn1crypto import cms as acms
from asn1crypto import core
from cryptography.hazmat.primitives.asymmetric import utils

from icao9303 import lds, mrz, pa, trust
from simulators.testpki import EXPECTED_FAILURE, SIGNERS, VARIANTS, TestPki, synth_face_jpeg

LINES = mrz.compose_td3(issuer="UTO", surname="ERIKSSON", given_names="ANNA MARIA",
                        document_number="L898902C3", nationality="UTO", birth_date="740812",
                        sex="F", expiry_date="340415", personal_number="ZE184226B")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def store(pki):
    return trust.TrustStore.from_dir(pki.trust_dir)


@pytest.fixture(scope="module")
def face():
    return synth_face_jpeg(7)


@pytest.fixture(scope="module")
def genuine(pki, face):
    return pki.personalise(LINES, face, data_groups=(1, 2, 11, 12, 14, 15))


def statuses(result):
    return {c.name: c.status for c in result.checks}


@pytest.mark.parametrize("signer", sorted(SIGNERS))
@pytest.mark.parametrize("container", [lds.ISO19794_5, lds.ISO39794_5])
def test_genuine_document_passes_every_check(pki, store, face, signer, container):
    doc = pki.personalise(LINES, face, signer=signer, dg2_container=container)
    result = pa.verify(doc.sod, doc.data_groups, store, mrz=doc.mrz_lines)
    assert result.passed, result.reasons
    st = statuses(result)
    assert set(st.values()) == {"passed"}
    assert {"sod", "ds_certificate", "sod_signature", "csca_chain", "ds_validity",
            "csca_validity", "revocation", "dg1_hash", "dg2_hash", "dg1_mrz",
            "issuing_state"} <= set(st)
    assert all(c.required for c in result.checks)


def test_genuine_with_all_data_groups(genuine, store):
    result = pa.verify(genuine.sod, genuine.data_groups, store, mrz=mrz.parse(genuine.mrz_lines))
    assert result.passed, result.reasons
    assert [c.name for c in result.checks if c.name.endswith("_hash")] == \
        ["dg1_hash", "dg2_hash", "dg11_hash", "dg12_hash", "dg14_hash", "dg15_hash"]
    d = result.to_dict()
    assert d["passed"] and d["hash_algorithm"] == "sha256" and "DS UTO 01" in d["ds_certificate"]


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "genuine"])
def test_each_forged_variant_fails_with_its_own_check(pki, store, face, variant):
    doc = pki.personalise(LINES, face, variant=variant)
    result = pa.verify(doc.sod, doc.data_groups, store, mrz=doc.mrz_lines)
    assert not result.passed
    failed = {c.name for c in result.checks if c.status == "failed"}
    assert failed == {EXPECTED_FAILURE[variant]}, result.reasons
    assert doc.expected_failure == EXPECTED_FAILURE[variant]


def test_forged_variants_have_distinct_reasons(pki, store, face):
    reasons = {}
    for variant in VARIANTS[1:]:
        doc = pki.personalise(LINES, face, variant=variant)
        result = pa.verify(doc.sod, doc.data_groups, store, mrz=doc.mrz_lines)
        reasons[variant] = result.failed[0].reason
    assert len(set(reasons.values())) == len(reasons)
    assert "revoked" in reasons["revoked_ds"] and "expired" in reasons["expired_ds"]
    assert "UTO" in reasons["country_mismatch"] and "NL" in reasons["country_mismatch"]
    assert "signature does not verify" in reasons["wrong_signature"]


def test_tampered_dg1_against_the_genuine_printed_page_also_fails_dg1_mrz(pki, store, face):
    doc = pki.personalise(LINES, face, variant="tampered_dg1")
    result = pa.verify(doc.sod, doc.data_groups, store, mrz=LINES)
    st = statuses(result)
    assert st["dg1_hash"] == st["dg1_mrz"] == "failed"
    assert "birth_date_raw" in result.check("dg1_mrz").reason


def test_trust_from_master_list_plus_crls(pki, genuine):
    store = trust.TrustStore.from_master_list(pki.master_list_path)
    for crl in sorted((pki.dir / "crls").glob("*.crl")):
        store.add_crl(crl)
    result = pa.verify(genuine.sod, genuine.data_groups, store, mrz=genuine.mrz_lines)
    assert result.passed, result.reasons


def test_missing_crl_leaves_revocation_not_checked(pki, genuine):
    store = trust.TrustStore.from_master_list(pki.master_list_path)
    result = pa.verify(genuine.sod, genuine.data_groups, store, mrz=genuine.mrz_lines)
    assert result.check("revocation").status == "not_checked"
    assert not result.passed and [c.name for c in result.failed] == ["revocation"]
    lenient = pa.DEFAULT_POLICY.without("revocation")
    assert lenient.required == frozenset(pa.ALL_CHECKS) - {"revocation"}
    with pytest.raises(ValueError):
        lenient.without("nonsense")
    assert pa.verify(genuine.sod, genuine.data_groups, store, mrz=genuine.mrz_lines,
                     policy=lenient).passed


def test_expired_crl_and_forged_crl(pki, genuine, store):
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)
    result = pa.verify(genuine.sod, genuine.data_groups, store, mrz=genuine.mrz_lines, now=later)
    assert result.check("revocation").status == "not_checked"
    assert "expired" in result.check("revocation").reason
    stale_ok = pa.Policy(require_current_crl=False)
    assert pa.verify(genuine.sod, genuine.data_groups, store, mrz=genuine.mrz_lines,
                     now=later, policy=stale_ok).check("revocation").status == "passed"
    # A CRL under the CSCA's name but signed by another key is refused.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    fake = (x509.CertificateRevocationListBuilder().issuer_name(pki.certs["csca_rsa"].subject)
            .last_update(dt.datetime.now(dt.timezone.utc))
            .next_update(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30))
            .sign(pki.keys["csca_rogue"], hashes.SHA256()))
    forged = trust.TrustStore(cscas=list(store.cscas), crls=[fake])
    r = pa.verify(genuine.sod, genuine.data_groups, forged, mrz=genuine.mrz_lines)
    assert r.check("revocation").status == "failed" and "invalid signature" in r.check("revocation").reason


def test_validity_is_judged_at_now(genuine, store):
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=11 * 365)
    result = pa.verify(genuine.sod, genuine.data_groups, store, mrz=genuine.mrz_lines, now=future)
    assert result.check("ds_validity").status == "failed"


def test_optical_mrz_mismatch_names_the_fields(genuine, store):
    other = mrz.compose_td3(issuer="UTO", surname="ERIKSSON", given_names="ANNA MARIA",
                            document_number="L898902C4", nationality="UTO", birth_date="740812",
                            sex="F", expiry_date="340415", personal_number="ZE184226B")
    result = pa.verify(genuine.sod, genuine.data_groups, store, mrz=other)
    assert not result.passed
    assert result.check("dg1_mrz").status == "failed"
    assert "document_number" in result.check("dg1_mrz").reason


def test_without_optical_mrz(genuine, store):
    result = pa.verify(genuine.sod, genuine.data_groups, store)
    assert result.check("dg1_mrz").status == "not_checked" and not result.passed
    policy = pa.Policy(required=frozenset(pa.ALL_CHECKS) - {"dg1_mrz"})
    assert pa.verify(genuine.sod, genuine.data_groups, store, policy=policy).passed


def test_data_group_not_in_sod_and_required_group_missing(pki, store, face):
    doc = pki.personalise(LINES, face)
    extra = dict(doc.data_groups)
    extra[11] = lds.build_dg11({"full_name": "X"})
    r = pa.verify(doc.sod, extra, store, mrz=doc.mrz_lines)
    assert r.check("dg11_hash").status == "failed" and "no hash" in r.check("dg11_hash").reason
    only_dg1 = {1: doc.data_groups[1]}
    r = pa.verify(doc.sod, only_dg1, store, mrz=doc.mrz_lines)
    assert r.check("dg2_hash").status == "failed" and "required" in r.check("dg2_hash").reason
    r = pa.verify(doc.sod, only_dg1, store, mrz=doc.mrz_lines,
                  policy=pa.Policy(required_data_groups=frozenset({1})))
    assert r.passed and r.check("dg2_hash").status == "not_checked"


def test_advisory_checks_are_reported_but_do_not_decide(pki, store, face):
    doc = pki.personalise(LINES, face, variant="country_mismatch")
    policy = pa.Policy(required=frozenset(pa.ALL_CHECKS) - {"issuing_state"},
                       advisory=frozenset({"issuing_state"}))
    r = pa.verify(doc.sod, doc.data_groups, store, mrz=doc.mrz_lines, policy=policy)
    assert r.passed and r.check("issuing_state").status == "failed"
    assert r.check("issuing_state").advisory


def test_untrusted_store_and_empty_store(genuine):
    r = pa.verify(genuine.sod, genuine.data_groups, trust.TrustStore(), mrz=genuine.mrz_lines)
    assert not r.passed and r.check("csca_chain").status == "failed"
    assert r.check("sod_signature").status == "passed"     # the SOD itself is intact


@pytest.mark.parametrize("sod", [b"", b"\x77\x00", b"\x30\x03\x02\x01\x00", b"garbage" * 10])
def test_malformed_sod_is_a_failed_check_not_an_exception(genuine, store, sod):
    r = pa.verify(sod, genuine.data_groups, store, mrz=genuine.mrz_lines)
    assert not r.passed and r.check("sod").status == "failed"
    assert r.check("sod_signature").status == "not_checked"
    assert r.check("dg1_hash").status == "not_checked"


def test_sod_without_embedded_certificate_uses_trust_store_signers(pki, genuine, store):
    info = acms.ContentInfo.load(lds.sod_content(genuine.sod))
    sd = info["content"]
    sd["certificates"] = None
    bare = lds.build_sod(acms.ContentInfo({"content_type": "signed_data", "content": sd}).dump())
    r = pa.verify(bare, genuine.data_groups, store, mrz=genuine.mrz_lines)
    assert r.check("ds_certificate").status == "failed"
    with_ds = trust.TrustStore(cscas=list(store.cscas), crls=list(store.crls))
    with_ds.add_document_signer(genuine.ds_certificate)
    assert pa.verify(bare, genuine.data_groups, with_ds, mrz=genuine.mrz_lines).passed


def _resign(sod: bytes, mutate) -> bytes:
    info = acms.ContentInfo.load(lds.sod_content(sod))
    sd = info["content"]
    mutate(sd["signer_infos"][0])
    return lds.build_sod(acms.ContentInfo({"content_type": "signed_data", "content": sd}).dump(force=True))


def test_signed_attributes_are_verified_as_a_der_set(pki, face, store):
    doc = pki.personalise(LINES, face)
    # Store the attributes in non-DER order (same length, so only those bytes change): the
    # signature was made over the DER SET and must still verify.
    from icao9303 import tlv
    content = lds.sod_content(doc.sod)
    si = acms.ContentInfo.load(content)["content"]["signer_infos"][0]
    attrs = si["signed_attrs"].contents
    parts, pos = [], 0
    while pos < len(attrs):
        _, end = tlv.parse_one(attrs, pos, recurse=False)
        parts.append(attrs[pos:end])
        pos = end
    assert len(parts) == 3 and parts == sorted(parts)
    swapped = content.replace(attrs, b"".join(reversed(parts)))
    assert swapped != content and len(swapped) == len(content)
    assert pa.verify(lds.build_sod(swapped), doc.data_groups, store, mrz=doc.mrz_lines).passed


def test_message_digest_attribute_is_checked(pki, face, store):
    doc = pki.personalise(LINES, face)
    def wrong_digest(si):
        for attr in si["signed_attrs"]:
            if attr["type"].native == "message_digest":
                attr["values"] = [core.OctetString(b"\x00" * 32)]
    r = pa.verify(_resign(doc.sod, wrong_digest), doc.data_groups, store, mrz=doc.mrz_lines)
    assert r.check("sod_signature").status == "failed"
    assert "messageDigest" in r.check("sod_signature").reason


def test_plain_ecdsa_signature_bsi_tr_03111(pki, face, store):
    doc = pki.personalise(LINES, face, signer="ecdsa")
    def to_plain(si):
        r, s = utils.decode_dss_signature(si["signature"].native)
        n = 32
        si["signature"] = core.OctetString(r.to_bytes(n, "big") + s.to_bytes(n, "big"))
        si["signature_algorithm"] = {"algorithm": "0.4.0.127.0.7.1.1.4.1.3"}
    r = pa.verify(_resign(doc.sod, to_plain), doc.data_groups, store, mrz=doc.mrz_lines)
    assert r.passed, r.reasons


def test_parse_sod(genuine):
    sod = pa.parse_sod(genuine.sod)
    assert sod.hash_algorithm == "sha256" and sorted(sod.dg_hashes) == [1, 2, 11, 12, 14, 15]
    assert len(sod.certificates) == 1
    assert pa.parse_sod(lds.sod_content(genuine.sod)).dg_hashes == sod.dg_hashes


def test_sha1_and_sha512_sods(pki, face, store):
    for algo in ("sha1", "sha512"):
        doc = pki.personalise(LINES, face, hash_algorithm=algo)
        assert pa.verify(doc.sod, doc.data_groups, store, mrz=doc.mrz_lines).passed
    doc = pki.personalise(LINES, face, hash_algorithm="sha1")
    no_sha1 = pa.Policy(allowed_hash_algorithms=frozenset({"sha256"}))
    r = pa.verify(doc.sod, doc.data_groups, store, mrz=doc.mrz_lines, policy=no_sha1)
    assert r.check("sod").status == "failed" and not r.passed


def test_trust_dir_errors_name_the_file(tmp_path, pki):
    d = tmp_path / "t"
    pki.write_trust_dir(d)
    (d / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(trust.TrustError, match="broken.pem"):
        trust.TrustStore.from_dir(d)
    with pytest.raises(trust.TrustError, match="not a directory"):
        trust.TrustStore.from_dir(tmp_path / "missing")


def test_master_list_signature_and_signer_are_verified(tmp_path, pki):
    data = bytearray(pki.master_list())
    # corrupt one byte inside the signed content (a certificate in the list)
    i = data.find(pki.certs["csca_ec"].tbs_certificate_bytes[-40:])
    data[i + 5] ^= 1
    with pytest.raises(trust.MasterListError):
        trust.parse_master_list(bytes(data))
    from simulators.testpki import sign_cms
    from icao9303.trust import CscaMasterList, ID_ICAO_CSCA_MASTER_LIST
    from asn1crypto import x509 as ax509
    from cryptography.hazmat.primitives.serialization import Encoding
    content = CscaMasterList({"version": 0, "cert_list": [
        ax509.Certificate.load(pki.certs["csca_rsa"].public_bytes(Encoding.DER))]}).dump()
    rogue = sign_cms(content, ID_ICAO_CSCA_MASTER_LIST, pki.keys["ds_rogue"], pki.certs["ds_rogue"])
    with pytest.raises(trust.MasterListError, match="not issued by any CSCA"):
        trust.parse_master_list(rogue)
    assert len(trust.parse_master_list(rogue, verify=False)) == 1


def test_trust_store_lookups(pki, store):
    ds = pki.certs["ds_rsa"]
    assert store.issuers_of(ds) == [pki.certs["csca_rsa"]]
    assert store.issuers_of(pki.certs["ds_rogue"]) == []
    assert len(store.crls_for(pki.certs["csca_rsa"])) == 1
    assert store.countries == {"UT", "NL"} and len(store) == 5  # three CSCAs, two link certificates


# --------------------------------------------------------------------------- explicit EC parameters

def _explicit_spki(spki):
    from asn1crypto import keys
    from icao9303 import eckeys
    info = keys.PublicKeyInfo.load(spki.dump() if hasattr(spki, "dump") else spki)
    oid = info["algorithm"]["parameters"].chosen.dotted
    name = next(n for n, (o, *_) in eckeys.CURVES.items() if o == oid)
    _, p, a, b, gx, n = eckeys.CURVES[name]
    gy = pow((gx ** 3 + a * gx + b) % p, (p + 1) // 4, p)
    assert (gy * gy - (gx ** 3 + a * gx + b)) % p == 0
    size = (p.bit_length() + 7) // 8
    domain = keys.SpecifiedECDomain({
        "version": "ecdpVer1", "field_id": {"field_type": "prime_field", "parameters": p},
        "curve": {"a": a.to_bytes(size, "big"), "b": b.to_bytes(size, "big")},
        "base": b"\x04" + gx.to_bytes(size, "big") + gy.to_bytes(size, "big"),
        "order": n, "cofactor": 1})
    return keys.PublicKeyInfo({"algorithm": {"algorithm": "ec", "parameters": keys.ECDomainParameters(
        name="specified", value=domain)}, "public_key": info["public_key"]})


def _with_explicit_key(cert, issuer_key):
    from asn1crypto import x509 as ax509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    ac = ax509.Certificate.load(cert.public_bytes(Encoding.DER))
    tbs = ac["tbs_certificate"]
    tbs["subject_public_key_info"] = _explicit_spki(tbs["subject_public_key_info"])
    h = hashes.SHA384() if issuer_key.curve.key_size >= 384 else hashes.SHA256()
    sig = issuer_key.sign(tbs.dump(force=True), ec.ECDSA(h))
    new = ax509.Certificate({"tbs_certificate": tbs, "signature_algorithm": ac["signature_algorithm"],
                             "signature_value": sig})
    out = x509.load_der_x509_certificate(new.dump())
    from cryptography.exceptions import UnsupportedAlgorithm
    with pytest.raises((ValueError, UnsupportedAlgorithm)):
        out.public_key()                    # `cryptography` alone cannot use it
    return out


def test_explicit_ec_parameters_in_ds_and_csca(pki, face):
    certs = dict(pki.certs)
    certs["ds_ec"] = _with_explicit_key(pki.certs["ds_ec"], pki.keys["csca_ec"])
    explicit_pki = TestPki(pki.dir, pki.country, pki.foreign_country, pki.keys, certs, pki.crls)
    doc = explicit_pki.personalise(LINES, face, signer="ecdsa")
    csca = _with_explicit_key(pki.certs["csca_ec"], pki.keys["csca_ec"])
    store = trust.TrustStore(cscas=[csca], crls=[pki.crls["csca_ec"]])
    result = pa.verify(doc.sod, doc.data_groups, store, mrz=doc.mrz_lines)
    assert result.passed, result.reasons
    # and a DG15 key with explicit parameters loads
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    key = ec.generate_private_key(ec.BrainpoolP256R1()).public_key()
    spki = _explicit_spki(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).dump()
    assert lds.parse_dg15(lds.build_dg15(spki)) == spki


def test_explicit_curve_table_matches_openssl():
    import shutil
    import subprocess
    from asn1crypto import keys
    from icao9303 import eckeys
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not installed")
    aliases = {"secp192r1": "prime192v1", "secp256r1": "prime256v1"}
    for name in eckeys.CURVES:
        der = subprocess.run(["openssl", "ecparam", "-name", aliases.get(name, name), "-param_enc",
                              "explicit", "-outform", "DER"], capture_output=True, check=True).stdout
        assert eckeys.curve_of(keys.ECDomainParameters.load(der).chosen) == name
