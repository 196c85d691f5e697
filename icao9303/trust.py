"""Trust store for passive authentication: CSCA certificates, CRLs, ICAO master lists.

Sources:
- a directory (`TrustStore.from_dir`): ``*.pem *.crt *.cer *.der`` certificates (PEM files may
  hold several), ``*.crl`` CRLs, ``*.ml *.masterlist`` ICAO master lists; other files are
  ignored, a file of a known kind that does not parse raises `TrustError` naming it;
- an ICAO CSCA master list (`TrustStore.from_master_list`): CMS SignedData with eContentType
  id-icao-cscaMasterList (2.23.136.1.1.2) holding ``CscaMasterList ::= SEQUENCE { version
  INTEGER, certList SET OF Certificate }``.  Its signature is verified, and its signer
  certificate must be issued by a CSCA in the list itself or in `anchors`.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import core
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from icao9303 import cms as _cms
from icao9303.eckeys import cert_public_key
from core.errors import EGateError, ParseError

ID_ICAO_CSCA_MASTER_LIST = "2.23.136.1.1.2"
CERT_SUFFIXES = {".pem", ".crt", ".cer", ".der"}
CRL_SUFFIXES = {".crl"}
ML_SUFFIXES = {".ml", ".masterlist"}


class TrustError(EGateError):
    """A trust source could not be loaded (file named in the message)."""


class MasterListError(ParseError):
    """A master list is malformed or its signature does not verify."""


class _CertSet(core.SetOf):
    _child_spec = ax509.Certificate


class CscaMasterList(core.Sequence):
    _fields = [("version", core.Integer), ("cert_list", _CertSet)]


def _ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (x509.ExtensionNotFound, ValueError):
        return None


def _aki(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier).value.key_identifier
    except (x509.ExtensionNotFound, ValueError):
        return None


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, ValueError):
        return False


@dataclass
class TrustStore:
    cscas: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    #: Document-signer certificates for SODs that do not embed theirs.
    document_signers: list[x509.Certificate] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    # ----------------------------------------------------------------- building
    def add_csca(self, cert: "x509.Certificate | bytes") -> x509.Certificate:
        if not isinstance(cert, x509.Certificate):
            cert = _cms.load_certificate(cert)
        fp = cert.fingerprint(_cms.hashes.SHA256())
        if not any(c.fingerprint(_cms.hashes.SHA256()) == fp for c in self.cscas):
            self.cscas.append(cert)
        return cert

    def add_crl(self, crl: "x509.CertificateRevocationList | bytes | str | Path"
                ) -> x509.CertificateRevocationList:
        """Add a CRL (object, DER/PEM bytes or a file path).  Its signature is checked when
        it is used, against the CSCA it names."""
        if isinstance(crl, (str, Path)):
            path = Path(crl)
            try:
                crl = _cms.load_crl(path.read_bytes())
            except (OSError, _cms.CertificateError) as exc:
                raise TrustError(f"{path}: {exc}") from exc
            self.sources.append(str(path))
        elif not isinstance(crl, x509.CertificateRevocationList):
            crl = _cms.load_crl(crl)
        self.crls.append(crl)
        return crl

    def add_document_signer(self, cert: "x509.Certificate | bytes") -> x509.Certificate:
        if not isinstance(cert, x509.Certificate):
            cert = _cms.load_certificate(cert)
        self.document_signers.append(cert)
        return cert

    def add_master_list(self, data: bytes, *, anchors: "TrustStore | None" = None,
                        verify: bool = True, now: _dt.datetime | None = None) -> int:
        """Add the CSCAs of an ICAO master list; returns how many certificates it held."""
        certs = parse_master_list(data, anchors=anchors, verify=verify, now=now)
        for c in certs:
            self.add_csca(c)
        return len(certs)

    @classmethod
    def from_dir(cls, path, *, anchors: "TrustStore | None" = None,
                 verify_master_lists: bool = True) -> "TrustStore":
        root = Path(path)
        if not root.is_dir():
            raise TrustError(f"{root}: not a directory")
        store = cls()
        files = sorted(p for p in root.rglob("*") if p.is_file())
        mls = []
        for p in files:
            suffix = p.suffix.lower()
            try:
                if suffix in CERT_SUFFIXES:
                    for cert in _cms.load_certificates(p.read_bytes()):
                        store.add_csca(cert)
                    store.sources.append(str(p))
                elif suffix in CRL_SUFFIXES:
                    store.add_crl(p)
                elif suffix in ML_SUFFIXES:
                    mls.append(p)
            except (OSError, ParseError) as exc:
                raise TrustError(f"{p}: {exc}") from exc
        for p in mls:   # after the certificates, so a list's signer may chain to them
            try:
                store.add_master_list(p.read_bytes(), anchors=anchors or store,
                                      verify=verify_master_lists)
            except (OSError, ParseError) as exc:
                raise TrustError(f"{p}: {exc}") from exc
            store.sources.append(str(p))
        return store

    @classmethod
    def from_master_list(cls, path, *, anchors: "TrustStore | None" = None,
                         verify: bool = True) -> "TrustStore":
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise TrustError(f"{p}: {exc}") from exc
        store = cls()
        try:
            store.add_master_list(data, anchors=anchors, verify=verify)
        except ParseError as exc:
            raise TrustError(f"{p}: {exc}") from exc
        store.sources.append(str(p))
        return store

    def merge(self, other: "TrustStore") -> "TrustStore":
        for c in other.cscas:
            self.add_csca(c)
        self.crls.extend(other.crls)
        self.document_signers.extend(other.document_signers)
        self.sources.extend(other.sources)
        return self

    # ----------------------------------------------------------------- lookups
    def issuers_of(self, cert: x509.Certificate) -> list[x509.Certificate]:
        """CSCAs whose subject is `cert`'s issuer (and whose key id matches, when both say)."""
        aki = _aki(cert)
        out = []
        for c in self.cscas:
            if c.subject != cert.issuer:
                continue
            ski = _ski(c)
            if aki is not None and ski is not None and aki != ski:
                continue
            out.append(c)
        return out

    def crls_for(self, csca: x509.Certificate) -> list[x509.CertificateRevocationList]:
        """CRLs issued by `csca` whose signature verifies with its key."""
        out = []
        for crl in self.crls:
            if crl.issuer != csca.subject:
                continue
            try:
                if crl.is_signature_valid(cert_public_key(csca)):
                    out.append(crl)
            except _cms._PARSE_ERRORS:
                continue
        return out

    @property
    def countries(self) -> set[str]:
        return {c for c in (_cms.country_of(x.subject) for x in self.cscas) if c}

    def __len__(self) -> int:
        return len(self.cscas)

    def summary(self) -> dict:
        return {"cscas": len(self.cscas), "crls": len(self.crls),
                "countries": sorted(self.countries), "sources": list(self.sources)}


def parse_master_list(data: bytes, *, anchors: TrustStore | None = None, verify: bool = True,
                      now: _dt.datetime | None = None) -> list[x509.Certificate]:
    """CSCA certificates of an ICAO master list, after checking its signature and signer."""
    try:
        sd = _cms.parse_signed_data(data, ID_ICAO_CSCA_MASTER_LIST, "master list")
    except ParseError as exc:
        raise MasterListError(str(exc)) from exc
    try:
        ml = CscaMasterList.load(sd.content, strict=True)
        certs = [_cms.load_certificate(c.dump()) for c in ml["cert_list"]]
    except _cms.CertificateError as exc:
        raise MasterListError(f"master list: {exc}") from exc
    except _cms._PARSE_ERRORS as exc:
        raise MasterListError(f"master list content is malformed: {exc}") from exc
    if not verify:
        return certs
    signer = _cms.signer_certificate(sd)
    if signer is None:
        raise MasterListError("master list: signer certificate not included")
    reason = _cms.verify_signer(sd, signer)
    if reason:
        raise MasterListError(f"master list: {reason}")
    now = now or _dt.datetime.now(_dt.timezone.utc)
    if not (signer.not_valid_before_utc <= now <= signer.not_valid_after_utc):
        raise MasterListError(f"master list signer certificate is not valid at {now:%Y-%m-%d}")
    pool = TrustStore(cscas=list(certs))
    if anchors is not None:
        pool.merge(anchors)
    for issuer in pool.issuers_of(signer):
        if _cms.verify_issued_by(signer, issuer) is None:
            return certs
    raise MasterListError("master list signer "
                          f"{_cms.name_str(signer.subject)} is not issued by any CSCA in the "
                          "list or in the anchors")


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)
