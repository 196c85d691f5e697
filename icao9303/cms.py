"""CMS SignedData helpers shared by EF.SOD, EF.CardSecurity and ICAO master lists (asn1crypto +
cryptography).

Parsing is forced to completion inside `parse_signed_data`, so malformed input raises
`CmsError` there and never later from a lazily parsed attribute: the SignedData version, every
entry of the digest-algorithm set (which must list the signer's), every certificate choice (other
than plain certificates: parsed, then left out), the CRLs, the SignerInfo whole (version matching
its signer identifier: v1 issuerAndSerialNumber, v3 subjectKeyIdentifier; signed and unsigned
attributes, signingTime) and the certificates' names, dates and extensions.
"""
from __future__ import annotations

import contextlib
import hashlib
import warnings
from dataclasses import dataclass

from asn1crypto import algos, cms, core
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from core.errors import ParseError


class CmsError(ParseError):
    """A CMS SignedData structure is malformed or of the wrong type."""


class CertificateError(ParseError):
    """An X.509 certificate or CRL does not parse."""


HASHES = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
          "sha384": hashes.SHA384, "sha512": hashes.SHA512}

# BSI TR-03111 ecdsa-plain-signatures: r||s instead of a DER SEQUENCE.
_ECDSA_PLAIN = {"0.4.0.127.0.7.1.1.4.1.1": "sha1", "0.4.0.127.0.7.1.1.4.1.2": "sha224",
                "0.4.0.127.0.7.1.1.4.1.3": "sha256", "0.4.0.127.0.7.1.1.4.1.4": "sha384",
                "0.4.0.127.0.7.1.1.4.1.5": "sha512"}

_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError,
                 UnicodeError, RecursionError, NotImplementedError, x509.InvalidVersion,
                 x509.DuplicateExtension, x509.UnsupportedGeneralNameType,
                 UnsupportedAlgorithm)


def _checked_certificate(cert: x509.Certificate) -> x509.Certificate:
    """`cryptography` parses names, dates and extensions lazily: touch them all now so a
    malformed certificate fails here, as a CertificateError, and never later."""
    cert.subject.rfc4514_string()
    cert.issuer.rfc4514_string()
    for ext in cert.extensions:
        ext.value
    cert.not_valid_before_utc, cert.not_valid_after_utc
    serial_problem(cert)
    cert.signature_algorithm_oid
    cert.tbs_certificate_bytes, cert.signature
    return cert


@contextlib.contextmanager
def _quiet():
    """cryptography warns about (and will one day refuse) serial numbers <= 0: we refuse them
    ourselves, by name (`serial_problem`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def _serial(cert: x509.Certificate) -> int:
    with _quiet():
        return cert.serial_number


def serial_problem(cert: x509.Certificate) -> str | None:
    """RFC 5280 §4.1.2.2 and ICAO 9303-12: a certificate serial number is a positive integer.
    A certificate with a zero or negative one is refused wherever it would be trusted or used."""
    serial = _serial(cert)
    if serial <= 0:
        return f"certificate serial number {serial} is {'zero' if serial == 0 else 'negative'}"
    return None


def load_certificate(data: bytes) -> x509.Certificate:
    """One certificate from DER or PEM bytes."""
    if not isinstance(data, (bytes, bytearray)):
        raise CertificateError(f"expected bytes, got {type(data).__name__}")
    try:
        with _quiet():
            if data.lstrip()[:5] == b"-----":
                return _checked_certificate(x509.load_pem_x509_certificate(bytes(data)))
            return _checked_certificate(x509.load_der_x509_certificate(bytes(data)))
    except _PARSE_ERRORS as exc:
        raise CertificateError(f"certificate does not parse: {exc}") from exc


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """All certificates in a PEM bundle, or the one DER certificate."""
    if not isinstance(data, (bytes, bytearray)):
        raise CertificateError(f"expected bytes, got {type(data).__name__}")
    try:
        with _quiet():
            if data.lstrip()[:5] == b"-----":
                certs = x509.load_pem_x509_certificates(bytes(data))
            else:
                certs = [x509.load_der_x509_certificate(bytes(data))]
            return [_checked_certificate(c) for c in certs]
    except _PARSE_ERRORS as exc:
        raise CertificateError(f"certificate does not parse: {exc}") from exc


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    if not isinstance(data, (bytes, bytearray)):
        raise CertificateError(f"expected bytes, got {type(data).__name__}")
    try:
        if data.lstrip()[:5] == b"-----":
            crl = x509.load_pem_x509_crl(bytes(data))
        else:
            crl = x509.load_der_x509_crl(bytes(data))
        crl.issuer.rfc4514_string()
        crl.last_update_utc, crl.next_update_utc
        for ext in crl.extensions:
            ext.value
        for entry in crl:
            entry.serial_number, entry.revocation_date_utc
            for ext in entry.extensions:
                ext.value
        return crl
    except _PARSE_ERRORS as exc:
        raise CertificateError(f"CRL does not parse: {exc}") from exc


@dataclass(frozen=True, eq=False)
class SignedData:
    content_type: str                       # dotted OID of eContentType
    content: bytes                          # eContent octets
    signer: cms.SignerInfo                  # the (single) SignerInfo
    certificates: tuple[x509.Certificate, ...]
    raw: cms.SignedData

    digest_algorithms: tuple[str, ...] = ()  # the SignedData's digestAlgorithms set, as parsed
    signing_time: "object | None" = None     # the signingTime signed attribute (aware datetime), if any

    @property
    def digest_algorithm(self) -> str:
        return self.signer["digest_algorithm"]["algorithm"].native


def parse_signed_data(der: bytes, expected_content_type: str | None = None,
                      what: str = "CMS") -> SignedData:
    """Parse a ContentInfo holding SignedData with exactly one SignerInfo."""
    if not isinstance(der, (bytes, bytearray)):
        raise CmsError(f"{what}: expected bytes, got {type(der).__name__}")
    try:
        info = cms.ContentInfo.load(bytes(der), strict=True)
        if info["content_type"].native != "signed_data":
            raise CmsError(f"{what}: content type {info['content_type'].dotted} is not signedData")
        sd = info["content"]
        eci = sd["encap_content_info"]
        ctype = eci["content_type"].dotted
        if expected_content_type and ctype != expected_content_type:
            raise CmsError(f"{what}: eContentType {ctype}, expected {expected_content_type}")
        content_field = eci["content"]
        if content_field.native is None:
            raise CmsError(f"{what}: no encapsulated content (detached signature)")
        content = content_field.contents if isinstance(content_field, core.ParsableOctetString) \
            else content_field.native
        if isinstance(content, core.Asn1Value):
            content = content.dump()
        version = sd["version"].native
        if version not in ("v1", "v3", "v4", "v5"):
            raise CmsError(f"{what}: SignedData version {version} is not 1, 3, 4 or 5")
        digests = tuple(a["algorithm"].native for a in sd["digest_algorithms"])
        for a in sd["digest_algorithms"]:
            a.native  # parameters too
        infos = sd["signer_infos"]
        if len(infos) != 1:
            raise CmsError(f"{what}: {len(infos)} SignerInfos, exactly one expected")
        signer = infos[0]
        signer.native  # force a full parse of the SignerInfo, signed and unsigned attributes included
        si_version, sid = signer["version"].native, signer["sid"].name
        expected_version = {"issuer_and_serial_number": "v1", "subject_key_identifier": "v3"}[sid]
        if si_version != expected_version:
            raise CmsError(f"{what}: SignerInfo version {si_version} with a {sid.replace('_', ' ')} "
                           f"(RFC 5652 §5.3: {expected_version})")
        digest = signer["digest_algorithm"]["algorithm"].native
        if digest not in digests:
            raise CmsError(f"{what}: the signer's digest algorithm {digest} is not in the SignedData's "
                           f"digestAlgorithms ({', '.join(digests) or 'empty'})")
        signing_time = None
        attrs = signer["signed_attrs"]
        for attr in attrs if attrs else ():
            if attr["type"].native == "signing_time":
                if len(attr["values"]) != 1:
                    raise CmsError(f"{what}: signingTime attribute with {len(attr['values'])} values")
                signing_time = attr["values"][0].native
        certs = []
        for choice in sd["certificates"] or []:
            if choice.name != "certificate":
                choice.native  # parsed in full, then left out: ICAO documents carry X.509 certificates
                continue
            certs.append(load_certificate(choice.chosen.dump()))
        if sd["crls"]:
            sd["crls"].native
    except (CmsError, CertificateError):
        raise
    except _PARSE_ERRORS as exc:
        raise CmsError(f"{what}: malformed CMS: {type(exc).__name__}: {exc}") from exc
    return SignedData(ctype, bytes(content), signer, tuple(certs), sd, digests, signing_time)


def signer_matches(signer: cms.SignerInfo, cert: x509.Certificate) -> bool:
    sid = signer["sid"]
    try:
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            return (ias["serial_number"].native == _serial(cert)
                    and ias["issuer"].dump() == cert.issuer.public_bytes())
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        return sid.chosen.native == ski
    except (x509.ExtensionNotFound, ValueError):
        return False


def signer_certificate(sd: SignedData, extra=()) -> x509.Certificate | None:
    for cert in (*sd.certificates, *extra):
        if signer_matches(sd.signer, cert):
            return cert
    return None


def signed_attr(signer: cms.SignerInfo, name: str):
    attrs = signer["signed_attrs"]
    if not attrs:
        return None
    for attr in attrs:
        if attr["type"].native == name or attr["type"].dotted == name:
            values = attr["values"]
            return values[0] if len(values) else None
    return None


def _signed_attr_encodings(signer: cms.SignerInfo) -> list[bytes]:
    """The signed attributes as a SET: as received, and canonically DER-sorted if different."""
    from icao9303 import tlv
    contents = signer["signed_attrs"].contents
    received = tlv.encode_tag(0x31) + tlv.encode_length(len(contents)) + contents
    out = [received]
    try:
        parts, pos = [], 0
        while pos < len(contents):
            item, nxt = tlv.parse_one(contents, pos, recurse=False)
            parts.append(contents[pos:nxt])
            pos = nxt
        der = tlv.encode(0x31, sorted(parts))
        if der != received:
            out.append(der)
    except tlv.TlvError:
        pass
    return out


def verify_raw_signature(public_key, signature: bytes, data: bytes,
                         sig_alg: algos.SignedDigestAlgorithm, digest_name: str) -> None:
    """Raise InvalidSignature / UnsupportedAlgorithm / ValueError unless it verifies."""
    dotted = sig_alg["algorithm"].dotted
    if dotted in _ECDSA_PLAIN:
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise InvalidSignature("plain ECDSA signature but the key is not EC")
        n = len(signature) // 2
        if n == 0 or len(signature) % 2:
            raise InvalidSignature("plain ECDSA signature has odd length")
        der = utils.encode_dss_signature(int.from_bytes(signature[:n], "big"),
                                         int.from_bytes(signature[n:], "big"))
        public_key.verify(der, data, ec.ECDSA(HASHES[_ECDSA_PLAIN[dotted]]()))
        return
    algo = sig_alg.signature_algo
    try:
        hash_name = sig_alg.hash_algo
    except ValueError:
        hash_name = digest_name                     # e.g. plain rsaEncryption / ecPublicKey
    if hash_name not in HASHES:
        raise UnsupportedAlgorithm(f"hash {hash_name}")
    h = HASHES[hash_name]()
    if algo == "rsassa_pss":
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise InvalidSignature("RSASSA-PSS signature but the key is not RSA")
        params = sig_alg["parameters"]
        p_hash = params["hash_algorithm"]["algorithm"].native
        mgf = params["mask_gen_algorithm"]
        mgf_hash = mgf["parameters"]["algorithm"].native if mgf["parameters"] else p_hash
        salt = params["salt_length"].native
        if p_hash not in HASHES or mgf_hash not in HASHES:
            raise UnsupportedAlgorithm(f"PSS with {p_hash}/{mgf_hash}")
        public_key.verify(signature, data,
                          padding.PSS(mgf=padding.MGF1(HASHES[mgf_hash]()), salt_length=salt),
                          HASHES[p_hash]())
    elif algo == "rsassa_pkcs1v15":
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise InvalidSignature("RSA signature but the key is not RSA")
        public_key.verify(signature, data, padding.PKCS1v15(), h)
    elif algo == "ecdsa":
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            raise InvalidSignature("ECDSA signature but the key is not EC")
        try:
            utils.decode_dss_signature(signature)
        except ValueError:
            n = len(signature) // 2                   # tolerate r||s from some issuers
            signature = utils.encode_dss_signature(int.from_bytes(signature[:n], "big"),
                                                   int.from_bytes(signature[n:], "big"))
        public_key.verify(signature, data, ec.ECDSA(h))
    else:
        raise UnsupportedAlgorithm(f"signature algorithm {algo}")


def verify_signer(sd: SignedData, cert: x509.Certificate) -> str | None:
    """None if the SignerInfo verifies with `cert`'s key over the content, else the reason."""
    signer = sd.signer
    try:
        digest_name = sd.digest_algorithm
        if digest_name not in HASHES:
            return f"digest algorithm {digest_name} is not supported"
        if not signer["signed_attrs"]:
            return "SignerInfo has no signed attributes"
        md = signed_attr(signer, "message_digest")
        if md is None:
            return "signed attributes lack messageDigest"
        actual = hashlib.new(digest_name, sd.content).digest()
        if md.native != actual:
            return f"messageDigest attribute does not match the {digest_name} of the content"
        ct = signed_attr(signer, "content_type")
        if ct is None:
            return "signed attributes lack contentType"
        if ct.dotted != sd.raw["encap_content_info"]["content_type"].dotted:
            return f"contentType attribute {ct.dotted} differs from eContentType"
        from icao9303.eckeys import cert_public_key
        public_key = cert_public_key(cert)
        signature = signer["signature"].native
        sig_alg = signer["signature_algorithm"]
        last: Exception | None = None
        for data in _signed_attr_encodings(signer):
            try:
                verify_raw_signature(public_key, signature, data, sig_alg, digest_name)
                return None
            except InvalidSignature as exc:
                last = exc
        return f"signature does not verify with the signer's key{': ' + str(last) if str(last) else ''}"
    except UnsupportedAlgorithm as exc:
        return f"unsupported algorithm: {exc}"
    except _PARSE_ERRORS as exc:
        return f"cannot verify: {type(exc).__name__}: {exc}"


def verify_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """None if `issuer` signed `cert` (names match, signature verifies), else the reason."""
    from icao9303.eckeys import cert_public_key
    try:
        if cert.issuer != issuer.subject:
            return "issuer name differs from the CA's subject"
        key = cert_public_key(issuer)
        params = cert.signature_algorithm_parameters
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, params,
                       cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, params)
        else:
            cert.verify_directly_issued_by(issuer)
        return None
    except InvalidSignature:
        return "certificate signature does not verify with the issuer's key"
    except _PARSE_ERRORS as exc:
        return f"cannot verify certificate signature: {exc}"


def name_str(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except ValueError:
        return repr(name)


def country_of(name: x509.Name) -> str | None:
    try:
        attrs = name.get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)
    except ValueError:
        return None
    return str(attrs[0].value).upper() if attrs else None


def to_asn1crypto(cert: x509.Certificate) -> ax509.Certificate:
    from cryptography.hazmat.primitives.serialization import Encoding
    return ax509.Certificate.load(cert.public_bytes(Encoding.DER))
