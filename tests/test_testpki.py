"""The test PKI: what it creates, persists and personalises."""
import pytest
from cryptography import x509

from icao9303 import lds, mrz, pa, trust
from simulators.testpki import (EXPECTED_FAILURE, VARIANTS, TestPki, TestPkiError,
                                synth_face_jpeg, tamper_mrz)

LINES = mrz.compose_td3(issuer="UTO", surname="ERIKSSON", given_names="ANNA MARIA",
                        document_number="L898902C3", nationality="UTO", birth_date="740812",
                        sex="F", expiry_date="340415")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return TestPki.create(tmp_path_factory.mktemp("pki"))


def test_layout_on_disk(pki):
    d = pki.dir
    assert (d / "pki.json").is_file() and (d / "masterlist.ml").is_file()
    assert sorted(p.name for p in (d / "trust").iterdir()) == [
        "csca_ec.crl", "csca_ec.pem", "csca_foreign.crl", "csca_foreign.pem",
        "csca_rsa.crl", "csca_rsa.pem", "link_rsa_v2.pem", "link_rsa_v3.pem"]
    assert "csca_rogue.pem" in {p.name for p in (d / "certs").iterdir()}


def test_certificates_and_algorithms(pki):
    c = pki.certs
    assert c["csca_rsa"].public_key().key_size == 3072
    assert c["csca_ec"].public_key().curve.name == "brainpoolP384r1"
    assert c["ds_ec"].public_key().curve.name == "brainpoolP256r1"
    assert c["ds_rsa_pss"].signature_algorithm_oid == x509.SignatureAlgorithmOID.RSASSA_PSS
    assert c["csca_rogue"].subject == c["csca_rsa"].subject          # same name, other key
    assert c["csca_rogue"].public_key().public_numbers() != c["csca_rsa"].public_key().public_numbers()
    for name in ("ds_rsa", "ds_rsa_pss", "ds_expired", "ds_revoked", "ml_signer"):
        c[name].verify_directly_issued_by(c["csca_rsa"])
    assert c["ds_expired"].not_valid_after_utc < c["ds_rsa"].not_valid_before_utc.now(
        c["ds_rsa"].not_valid_before_utc.tzinfo)
    revoked = pki.crls["csca_rsa"].get_revoked_certificate_by_serial_number(c["ds_revoked"].serial_number)
    assert revoked is not None
    assert c["ds_foreign"].subject.get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)[0].value == "NL"


def test_load_round_trip(pki):
    again = TestPki.load(pki.dir)
    assert again.country == "UTO" and set(again.certs) == set(pki.certs)
    assert again.certs["ds_rsa"] == pki.certs["ds_rsa"]
    doc = again.personalise(LINES, synth_face_jpeg(1))
    assert pa.verify(doc.sod, doc.data_groups, trust.TrustStore.from_dir(pki.trust_dir),
                     mrz=doc.mrz_lines).passed
    assert TestPki.load_or_create(pki.dir).certs["ds_rsa"] == pki.certs["ds_rsa"]
    with pytest.raises(TestPkiError):
        TestPki.load(pki.dir / "nowhere")


def test_master_list_holds_the_trusted_cscas(pki):
    certs = trust.parse_master_list(pki.master_list())
    assert {c.subject.rfc4514_string() for c in certs} == {
        pki.certs[n].subject.rfc4514_string() for n in ("csca_rsa", "csca_ec", "csca_foreign")}


def test_synthetic_face_is_a_realistic_dg2_size():
    for seed in range(3):
        jpeg = synth_face_jpeg(seed)
        assert 15_000 <= len(jpeg) <= 30_000
        dg2 = lds.build_dg2(jpeg)
        assert 15_000 <= len(dg2) <= 30_000
        assert lds.parse_dg2(dg2)[0].image.shape == (531, 413, 3)
    assert synth_face_jpeg(1) == synth_face_jpeg(1) != synth_face_jpeg(2)


def test_personalised_files(pki, tmp_path):
    doc = pki.personalise(LINES, data_groups=(1, 2, 11, 12, 14, 15),
                          dg2_container=lds.ISO39794_5)
    assert list(doc.files) == ["EF.COM", "DG1", "DG2", "DG11", "DG12", "DG14", "DG15", "EF.SOD"]
    assert lds.parse_com(doc.files["EF.COM"]).data_groups == (1, 2, 11, 12, 14, 15)
    assert lds.dg1_mrz_text(doc.files["DG1"]) == "".join(LINES)
    assert lds.parse_dg2(doc.files["DG2"])[0].container == lds.ISO39794_5
    assert lds.parse_dg11(doc.files["DG11"])["full_date_of_birth"] == "1974-08-12"
    assert "issuing_authority" in lds.parse_dg12(doc.files["DG12"])
    assert lds.parse_dg14(doc.files["DG14"]).protocols[0] == "0.4.0.127.0.7.2.2.1.2"
    assert lds.parse_dg15(doc.files["DG15"])
    assert doc.aa_private_key.startswith(b"-----BEGIN PRIVATE KEY") and doc.ca_private_key
    out = doc.write(tmp_path / "doc")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["EF.COM", "DG1.bin", "DG2.bin", "DG11.bin", "DG12.bin", "DG14.bin", "DG15.bin",
         "SOD.bin", "mrz.txt"])


def test_variants_are_what_they_say(pki):
    face = synth_face_jpeg(3)
    genuine = pki.personalise(LINES, face)
    assert set(VARIANTS) - {"genuine"} == set(EXPECTED_FAILURE)
    t1 = pki.personalise(LINES, face, variant="tampered_dg1")
    assert t1.mrz_lines == tamper_mrz(LINES) and mrz.parse(t1.mrz_lines).valid
    import hashlib
    assert pa.parse_sod(t1.sod).dg_hashes[1] == hashlib.sha256(genuine.files["DG1"]).digest()
    assert t1.files["DG1"] != genuine.files["DG1"]
    t2 = pki.personalise(LINES, face, variant="tampered_dg2")
    assert t2.files["DG2"] != genuine.files["DG2"] and t2.files["DG1"] == genuine.files["DG1"]
    assert pki.personalise(LINES, face, variant="unknown_csca").signer == "ds_rogue"
    assert pki.personalise(LINES, face, variant="country_mismatch").signer == "ds_foreign"


def test_bad_arguments(pki):
    with pytest.raises(TestPkiError, match="variant"):
        pki.personalise(LINES, variant="nope")
    with pytest.raises(TestPkiError, match="signer"):
        pki.personalise(LINES, signer="dsa")
    with pytest.raises(mrz.MrzError):
        pki.personalise([LINES[0], LINES[1][:-1] + "0"])
