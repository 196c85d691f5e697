"""The sync test PKI (`egate pki init`): layout, identities, key types, modes, re-runs."""
from __future__ import annotations

import ipaddress
import json
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gate.cli import main as egate
from sync import pki, record


def cn(cert: x509.Certificate) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_layout_identities_and_modes(tmp_path, capsys):
    assert egate(["pki", "init", str(tmp_path / "pki"), "--gate", "SIM-LANE-01", "--gate", "SIM-LANE-02",
                  "--site", "TPE"]) == 0
    assert "files created" in capsys.readouterr().out
    d = tmp_path / "pki"
    files = sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())
    assert files == sorted([
        "ca.crt", "ca.key", "pki.json",
        "gates/SIM-LANE-01.crt", "gates/SIM-LANE-01.key", "gates/SIM-LANE-01.signing.pem",
        "gates/SIM-LANE-02.crt", "gates/SIM-LANE-02.key", "gates/SIM-LANE-02.signing.pem",
        "gate_keys/SIM-LANE-01.pem", "gate_keys/SIM-LANE-02.pem",
        "servers/central.crt", "servers/central.key", "servers/backup-TPE.crt", "servers/backup-TPE.key",
        "servers/offsite.crt", "servers/offsite.key",
        "forwarders/backup-TPE.crt", "forwarders/backup-TPE.key", "forwarders/offsite.crt", "forwarders/offsite.key"])
    for f in files:
        mode = stat.S_IMODE((d / f).stat().st_mode)
        assert mode == (0o600 if f.endswith((".key", ".signing.pem")) else 0o644), f
    ca = load(d / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    expected = {"gates/SIM-LANE-01.crt": ("SIM-LANE-01", ExtendedKeyUsageOID.CLIENT_AUTH),
                "forwarders/backup-TPE.crt": ("backup:TPE", ExtendedKeyUsageOID.CLIENT_AUTH),
                "forwarders/offsite.crt": ("backup:offsite", ExtendedKeyUsageOID.CLIENT_AUTH),
                "servers/central.crt": ("central", ExtendedKeyUsageOID.SERVER_AUTH),
                "servers/backup-TPE.crt": ("backup-TPE", ExtendedKeyUsageOID.SERVER_AUTH)}
    for f, (name, usage) in expected.items():
        cert = load(d / f)
        assert cn(cert) == name and cert.issuer == ca.subject
        cert.verify_directly_issued_by(ca)
        assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [usage]
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    san = load(d / "servers/central.crt").extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    # The record key pair: Ed25519, the public half where a receiver looks for it.
    key = record.load_signing_key(d / "gates/SIM-LANE-01.signing.pem")
    assert record.public_pem(key) == (d / "gate_keys/SIM-LANE-01.pem").read_bytes()
    manifest = json.loads((d / "pki.json").read_text())
    assert manifest["gates"]["SIM-LANE-02"]["signing_key"] == "gates/SIM-LANE-02.signing.pem"
    assert set(manifest["forwarders"]) == {"backup:TPE", "backup:offsite"}
    assert list(manifest["servers"]) == ["central", "backup-TPE", "offsite"]


def test_a_second_run_adds_what_is_missing_and_overwrites_nothing(tmp_path):
    first = pki.create(tmp_path, gates=["G-1"], sites=["TPE"])
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "pki.json"}
    again = pki.create(tmp_path, gates=["G-1"], sites=["TPE"])
    assert again.created == []
    more = pki.create(tmp_path, gates=["G-2"], sites=["KHH"])
    assert sorted(p.name for p in more.created) == sorted([
        "G-2.crt", "G-2.key", "G-2.signing.pem", "G-2.pem", "backup-KHH.crt", "backup-KHH.key",
        "backup-KHH.crt", "backup-KHH.key"])
    assert all(p.read_bytes() == data for p, data in before.items())
    load(more.gate_cert("G-2")).verify_directly_issued_by(load(first.ca_cert))
    manifest = json.loads((tmp_path / "pki.json").read_text())
    assert set(manifest["gates"]) == {"G-1", "G-2"}
    assert list(manifest["servers"]) == ["central", "backup-TPE", "backup-KHH", "offsite"]


@pytest.mark.parametrize("gates, sites", [(["../evil"], []), (["ok"], ["a/b"]), ([".hidden"], []),
                                          (["ok"], ["offsite"]), (["x" * 65], [])])
def test_names_that_are_no_file_names_are_refused(tmp_path, gates, sites):
    with pytest.raises(pki.PkiError):
        pki.create(tmp_path, gates=gates, sites=sites)
    assert not any(tmp_path.iterdir())


def test_a_half_pair_is_not_silently_replaced(tmp_path):
    layout = pki.create(tmp_path, gates=["G-1"], sites=[])
    layout.gate_cert("G-1").unlink()
    with pytest.raises(pki.PkiError, match="missing but its pair exists"):
        pki.create(tmp_path, gates=["G-1"], sites=[])
