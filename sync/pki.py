"""The sync test PKI: one CA, the gates' TLS and record-signing keys, the receivers' certificates.

`create(dir, gates=[...], sites=[...])` (and `egate pki init DIR --gate ID ... --site NAME ...`)
writes, under `dir`:

    ca.crt, ca.key                        the CA: trust anchor of every server and client here
    gates/<gate>.crt, <gate>.key          a gate's TLS client certificate (CN = gate id)
    gates/<gate>.signing.pem              a gate's Ed25519 record signing key (`storage.signing_key`)
    gate_keys/<gate>.pem                  its public key: a receiver's `gate_keys_dir`
    servers/central.crt, .key             server certificates, SAN 127.0.0.1 and localhost
    servers/backup-<site>.crt, .key
    servers/offsite.crt, .key
    forwarders/backup-<site>.crt, .key    client certificate of a backup forwarding to central
    forwarders/offsite.crt, .key            (CN backup:<site>, backup:offsite)
    publisher/signing.pem, public.pem     with publisher=True: central's Ed25519 bundle publishing key
                                          (`publish.signing_key`) and its public half (gates'
                                          `sync.bundles.publisher_key`, backups' `publish.verify_key`)
    pki.json                              what is where

Private keys are written 0600. TLS keys are ECDSA P-256. Running it again over the same
directory keeps the CA and every file that exists and adds only what is missing (another gate,
another site); it never overwrites a key. It is a *test* PKI: unencrypted keys, a CA whose key
sits beside its certificate. A production PKI issues the same shapes from a real CA.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.errors import EGateError

OFFSITE = "offsite"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # gate ids and site names: safe file names
VALID_DAYS = 730


class PkiError(EGateError):
    """A test PKI cannot be created as asked."""


def forwarder_cn(site: str) -> str:
    """The client identity of the backup receiver of `site` when it forwards to central."""
    return f"backup:{site}"


@dataclass
class Layout:
    """Where everything of a test PKI is, and what was created by this run."""
    dir: Path
    gates: list[str]
    sites: list[str]
    created: list[Path] = field(default_factory=list)

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def gate_keys_dir(self) -> Path:
        return self.dir / "gate_keys"

    def gate_cert(self, gate: str) -> Path:
        return self.dir / "gates" / f"{gate}.crt"

    def gate_key(self, gate: str) -> Path:
        return self.dir / "gates" / f"{gate}.key"

    def signing_key(self, gate: str) -> Path:
        return self.dir / "gates" / f"{gate}.signing.pem"

    def server_cert(self, name: str) -> Path:
        return self.dir / "servers" / f"{name}.crt"

    def server_key(self, name: str) -> Path:
        return self.dir / "servers" / f"{name}.key"

    def forwarder_cert(self, site: str) -> Path:
        return self.dir / "forwarders" / f"{_server_name(site)}.crt"

    def forwarder_key(self, site: str) -> Path:
        return self.dir / "forwarders" / f"{_server_name(site)}.key"

    def servers(self) -> list[str]:
        return ["central"] + [_server_name(s) for s in self.sites]

    @property
    def publisher_key(self) -> Path:
        return self.dir / "publisher" / "signing.pem"

    @property
    def publisher_public(self) -> Path:
        return self.dir / "publisher" / "public.pem"

    def manifest(self) -> dict:
        rel = lambda p: str(p.relative_to(self.dir))  # noqa: E731
        return {
            "ca": rel(self.ca_cert),
            "gate_keys_dir": rel(self.gate_keys_dir),
            "gates": {g: {"tls_cert": rel(self.gate_cert(g)), "tls_key": rel(self.gate_key(g)),
                          "signing_key": rel(self.signing_key(g)),
                          "public_key": rel(self.gate_keys_dir / f"{g}.pem")} for g in self.gates},
            "servers": {n: {"tls_cert": rel(self.server_cert(n)), "tls_key": rel(self.server_key(n))}
                        for n in self.servers()},
            "forwarders": {forwarder_cn(s): {"tls_cert": rel(self.forwarder_cert(s)),
                                             "tls_key": rel(self.forwarder_key(s))} for s in self.sites},
            **({"publisher": {"signing_key": rel(self.publisher_key), "public_key": rel(self.publisher_public)}}
               if self.publisher_key.exists() else {}),
        }


def _server_name(site: str) -> str:
    return OFFSITE if site == OFFSITE else f"backup-{site}"


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _write(path: Path, data: bytes, private: bool, created: list[Path]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600 if private else 0o644)
    os.replace(tmp, path)
    created.append(path)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "egate test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(ca_cert, ca_key, cn: str, key, *, server: bool) -> x509.Certificate:
    now = _now()
    builder = (x509.CertificateBuilder()
               .subject_name(_name(cn)).issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - _dt.timedelta(hours=1))
               .not_valid_after(now + _dt.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False, key_agreement=False,
                                            key_cert_sign=False, crl_sign=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _load_or_create_ca(layout: Layout):
    key_path = layout.dir / "ca.key"
    if layout.ca_cert.exists() or key_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(layout.ca_cert.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise PkiError(f"{layout.dir}: an existing CA that cannot be read ({exc}); use an empty directory") from None
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(_name("egate sync test CA")).issuer_name(_name("egate sync test CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(hours=1)).not_valid_after(now + _dt.timedelta(days=VALID_DAYS + 1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(key_path, _key_pem(key), True, layout.created)
    _write(layout.ca_cert, _cert_pem(cert), False, layout.created)
    return cert, key


def _pair(layout: Layout, ca, cn: str, cert_path: Path, key_path: Path, *, server: bool) -> None:
    if cert_path.exists() and key_path.exists():
        return
    if cert_path.exists() or key_path.exists():
        raise PkiError(f"{cert_path if key_path.exists() else key_path} is missing but its pair exists; "
                       "remove the other file to have both made again")
    key = ec.generate_private_key(ec.SECP256R1())
    _write(key_path, _key_pem(key), True, layout.created)
    _write(cert_path, _cert_pem(_issue(*ca, cn, key, server=server)), False, layout.created)


def create_publisher(layout: Layout) -> None:
    """Central's Ed25519 bundle publishing key and its public half, unless they exist."""
    private, public = layout.publisher_key, layout.publisher_public
    if private.exists():
        if not public.exists():
            key = serialization.load_pem_private_key(private.read_bytes(), password=None)
            _write(public, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo),
                   False, layout.created)
        return
    key = Ed25519PrivateKey.generate()
    _write(private, _key_pem(key), True, layout.created)
    _write(public, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo), False, layout.created)


def create(directory: str | Path, *, gates: list[str] | tuple[str, ...], sites: list[str] | tuple[str, ...],
           offsite: bool = True, publisher: bool = False) -> Layout:
    """Create (or complete) a test PKI in `directory`; see the module docstring for the layout."""
    names = list(gates) + list(sites)
    bad = [n for n in names if not NAME_RE.match(n)]
    if bad:
        raise PkiError(f"not usable as a gate id or site name: {', '.join(map(repr, bad))} "
                       "(letters, digits, '.', '_', '-'; at most 64)")
    if OFFSITE in sites:
        raise PkiError(f"{OFFSITE!r} is the off-site backup's name, not a site")
    all_sites = list(dict.fromkeys(sites)) + ([OFFSITE] if offsite else [])
    layout = Layout(Path(directory), list(dict.fromkeys(gates)), all_sites)
    layout.dir.mkdir(parents=True, exist_ok=True)
    previous = {}
    if (layout.dir / "pki.json").exists():
        try:
            previous = json.loads((layout.dir / "pki.json").read_text())
        except (OSError, ValueError):
            previous = {}
    ca = _load_or_create_ca(layout)
    for gate in layout.gates:
        _pair(layout, ca, gate, layout.gate_cert(gate), layout.gate_key(gate), server=False)
        signing, public = layout.signing_key(gate), layout.gate_keys_dir / f"{gate}.pem"
        if not signing.exists():
            key = Ed25519PrivateKey.generate()
            _write(signing, _key_pem(key), True, layout.created)
            _write(public, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo),
                   False, layout.created)
        elif not public.exists():
            key = serialization.load_pem_private_key(signing.read_bytes(), password=None)
            _write(public, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo),
                   False, layout.created)
    for name in layout.servers():
        _pair(layout, ca, name, layout.server_cert(name), layout.server_key(name), server=True)
    for site in layout.sites:
        _pair(layout, ca, forwarder_cn(site), layout.forwarder_cert(site), layout.forwarder_key(site), server=False)
    if publisher:
        create_publisher(layout)
    # The manifest covers everything made here, this run or before.
    layout.gates = list(dict.fromkeys(list(previous.get("gates", {})) + layout.gates))
    prev_sites = [cn.removeprefix("backup:") for cn in previous.get("forwarders", {})]
    merged = list(dict.fromkeys(prev_sites + layout.sites))
    layout.sites = [s for s in merged if s != OFFSITE] + [s for s in merged if s == OFFSITE]
    _write(layout.dir / "pki.json", (json.dumps(layout.manifest(), indent=2) + "\n").encode(), False, [])
    return layout
