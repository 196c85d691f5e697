"""Trust store for passive authentication: CSCA certificates, CRLs, ICAO master lists.

Sources:
- a directory (`TrustStore.from_dir`): ``*.pem *.crt *.cer *.der`` certificates (PEM files may
  hold several), ``*.crl`` CRLs, ``*.ml *.masterlist`` ICAO master lists; other files are
  ignored, a file of a known kind that does not parse raises `TrustError` naming it;
- an ICAO CSCA master list (`TrustStore.from_master_list`): CMS SignedData with eContentType
  id-icao-cscaMasterList (2.23.136.1.1.2) holding ``CscaMasterList ::= SEQUENCE { version
  INTEGER, certList SET OF Certificate }``.  Its signature is verified, and its signer
  certificate must be issued by a CSCA in the list itself or in `anchors`.

Chains (`TrustStore.chain`): a trust anchor is a self-signed CSCA in the store. CSCA link
certificates (a new CSCA key signed by the previous one, ICAO 9303-12 §4.1; master lists carry
them) are intermediates: a DS issued under the newest key chains DS → link → … → self-signed CSCA,
any number of levels. A certificate with a zero or negative serial number is never trusted or used
(`cms.serial_problem`); master lists keep the others and list those in `TrustStore.rejected`.
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


def key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def is_self_signed(cert: x509.Certificate) -> bool:
    """Subject equals issuer and the certificate's own key verifies its signature (a CSCA root;
    a link certificate is self-issued but signed by the previous key)."""
    if cert.subject != cert.issuer:
        return False
    aki, ski = _aki(cert), _ski(cert)
    if aki is not None and ski is not None and aki != ski:
        return False
    return _cms.verify_issued_by(cert, cert) is None


@dataclass(frozen=True, eq=False)
class Chain:
    """A verified path from a certificate up to a trust anchor: `path[0]` signed the certificate,
    each later one signed the one before, `path[-1]` is a self-signed CSCA of the store."""
    path: tuple[x509.Certificate, ...]

    @property
    def issuer(self) -> x509.Certificate:
        return self.path[0]

    @property
    def anchor(self) -> x509.Certificate:
        return self.path[-1]

    @property
    def links(self) -> tuple[x509.Certificate, ...]:
        return self.path[:-1]

    def describe(self) -> str:
        names = [_cms.name_str(self.anchor.subject)]
        if len(self.path) > 1:
            names.append(f"through {len(self.path) - 1} link certificate(s)")
        return " ".join(names)


MAX_CHAIN = 8


@dataclass
class TrustStore:
    cscas: list[x509.Certificate] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    #: Document-signer certificates for SODs that do not embed theirs.
    document_signers: list[x509.Certificate] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    #: Certificates a source offered that are never trusted, with why (e.g. a zero serial number).
    rejected: list[str] = field(default_factory=list)

    # ----------------------------------------------------------------- building
    def add_csca(self, cert: "x509.Certificate | bytes") -> x509.Certificate:
        """Trust a CSCA (self-signed) or CSCA link certificate. `TrustError` for a certificate
        whose serial number is zero or negative."""
        if not isinstance(cert, x509.Certificate):
            cert = _cms.load_certificate(cert)
        problem = _cms.serial_problem(cert)
        if problem:
            raise TrustError(f"{_cms.name_str(cert.subject)}: {problem}: refused")
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
            problem = _cms.serial_problem(c)
            if problem:
                self.rejected.append(f"master list entry {_cms.name_str(c.subject)}: {problem}")
                continue
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
            except (OSError, ParseError, TrustError) as exc:
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
        self.rejected.extend(other.rejected)
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

    def chains(self, cert: x509.Certificate, max_depth: int = MAX_CHAIN) -> tuple[list[Chain], list[str]]:
        """Every verified path from `cert` to a self-signed CSCA of the store (shortest first), and
        why the other candidates failed. Only CA certificates with a positive serial number are used."""
        found: list[Chain] = []
        why: list[str] = []

        def walk(current: x509.Certificate, path: tuple[x509.Certificate, ...]) -> None:
            if len(path) >= max_depth:
                why.append(f"chain longer than {max_depth} certificates")
                return
            for cand in self.issuers_of(current):
                if any(cand is p for p in path) or cand is current:
                    continue
                problem = _cms.verify_issued_by(current, cand)
                if problem:
                    why.append(problem)
                    continue
                if not is_ca(cand):
                    why.append(f"{_cms.name_str(cand.subject)} is not a CA certificate")
                    continue
                if _cms.serial_problem(cand):
                    why.append(f"{_cms.name_str(cand.subject)}: {_cms.serial_problem(cand)}")
                    continue
                if is_self_signed(cand):
                    found.append(Chain(path + (cand,)))
                else:
                    walk(cand, path + (cand,))
                    if not any(c.path[:len(path) + 1] == path + (cand,) for c in found):
                        why.append(f"link certificate {_cms.name_str(cand.subject)} (key "
                                   f"{(_ski(cand) or b'').hex()[:16]}) leads to no trusted self-signed CSCA")
        walk(cert, ())
        found.sort(key=lambda c: len(c.path))
        return found, why

    def chain(self, cert: x509.Certificate, now: _dt.datetime | None = None) -> tuple[Chain | None, str]:
        """The path to trust `cert` by (the shortest one whose certificates are all valid at `now`,
        else the shortest), or None and why."""
        found, why = self.chains(cert)
        if not found:
            return None, "; ".join(dict.fromkeys(why)) or "no trusted CSCA has that subject and key identifier"
        if now is not None:
            for c in found:
                if all(x.not_valid_before_utc <= now <= x.not_valid_after_utc for x in c.path):
                    return c, ""
        return found[0], ""

    def crls_for(self, csca: x509.Certificate) -> list[x509.CertificateRevocationList]:
        """CRLs issued under `csca`'s name whose signature verifies with its key or with the key of
        another trusted certificate of that CSCA (a CRL signed with the newest key after a rollover)."""
        keys = [csca] + [c for c in self.cscas if c.subject == csca.subject and c is not csca]
        out = []
        for crl in self.crls:
            if crl.issuer != csca.subject:
                continue
            for k in keys:
                try:
                    if crl.is_signature_valid(cert_public_key(k)):
                        out.append(crl)
                        break
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
                "links": sum(1 for c in self.cscas if not is_self_signed(c)),
                "countries": sorted(self.countries), "sources": list(self.sources),
                "rejected": list(self.rejected)}


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
