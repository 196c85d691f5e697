"""SecurityInfos (ICAO 9303-11 §9.2): what EF.CardAccess, DG14 and EF.CardSecurity say the chip offers.

`parse(der)` takes the DER `SET OF SecurityInfo` (EF.CardAccess and EF.CardSecurity's content are
that SET; DG14 wraps it in tag 6E: `parse_dg14`). It returns `SecurityInfoSet` with:

  pace          PACEInfo: protocol OID -> key agreement (DH/ECDH), mapping (GM/IM/CAM), cipher
                (3DES, AES-128/192/256), version, parameterId (the standardized domain parameters)
  pace_domain   PACEDomainParameterInfo: explicit (proprietary) domain parameters, kept as DER
  active_auth   ActiveAuthenticationInfo (id-AA): the ECDSA signature algorithm for AA
  chip_auth     ChipAuthenticationInfo: CA protocol (DH/ECDH, cipher), version, keyId
  chip_auth_keys ChipAuthenticationPublicKeyInfo: the key (SubjectPublicKeyInfo DER), keyId
  other         the OIDs of SecurityInfos not understood here (terminal authentication, ...)

Parsing never raises anything but `SecurityInfoError` (an `LdsError`), whatever the input.
"""
from __future__ import annotations

from dataclasses import dataclass

from icao9303 import tlv
from icao9303.lds import LdsError, _oid

ID_BSI = "0.4.0.127.0.7"
ID_PACE = ID_BSI + ".2.2.4"
ID_CA = ID_BSI + ".2.2.3"
ID_PK = ID_BSI + ".2.2.1"
ID_TA = ID_BSI + ".2.2.2"
ID_AA = "2.23.136.1.1.5"

_PACE_KINDS = {1: ("DH", "GM"), 2: ("ECDH", "GM"), 3: ("DH", "IM"), 4: ("ECDH", "IM"), 6: ("ECDH", "CAM")}
_CIPHERS = {1: "3DES", 2: "AES-128", 3: "AES-192", 4: "AES-256"}
_CA_KINDS = {1: "DH", 2: "ECDH"}

#: ECDSA signature algorithm OIDs (X9.62 and BSI TR-03111 plain) -> hash name
ECDSA_HASHES = {
    "1.2.840.10045.4.1": "sha1", "1.2.840.10045.4.3.1": "sha224", "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384", "1.2.840.10045.4.3.4": "sha512",
    ID_BSI + ".1.1.4.1.1": "sha1", ID_BSI + ".1.1.4.1.2": "sha224", ID_BSI + ".1.1.4.1.3": "sha256",
    ID_BSI + ".1.1.4.1.4": "sha384", ID_BSI + ".1.1.4.1.5": "sha512",
}


class SecurityInfoError(LdsError):
    """Bytes that are not a well-formed SET OF SecurityInfo."""


@dataclass(frozen=True)
class PaceInfo:
    protocol: str          # e.g. 0.4.0.127.0.7.2.2.4.2.2 (id-PACE-ECDH-GM-AES-CBC-CMAC-128)
    version: int
    parameter_id: int | None
    agreement: str         # "DH" | "ECDH"
    mapping: str           # "GM" | "IM" | "CAM"
    cipher: str            # "3DES" | "AES-128" | "AES-192" | "AES-256"

    @property
    def name(self) -> str:
        return f"PACE-{self.agreement}-{self.mapping}-{self.cipher}"

    @property
    def oid_der(self) -> bytes:
        """The OID's content bytes, as MSE:Set AT's DO'80' and the 7F49 token carry them."""
        return encode_oid(self.protocol)


@dataclass(frozen=True)
class PaceDomainParameterInfo:
    protocol: str
    algorithm_der: bytes   # AlgorithmIdentifier with the explicit domain parameters
    parameter_id: int | None


@dataclass(frozen=True)
class ActiveAuthenticationInfo:
    version: int
    signature_algorithm: str   # OID

    @property
    def hash_name(self) -> str | None:
        return ECDSA_HASHES.get(self.signature_algorithm)


@dataclass(frozen=True)
class ChipAuthenticationInfo:
    protocol: str
    version: int
    key_id: int | None
    agreement: str   # "DH" | "ECDH"
    cipher: str


@dataclass(frozen=True)
class ChipAuthenticationPublicKeyInfo:
    protocol: str           # id-PK-DH / id-PK-ECDH
    public_key_der: bytes   # SubjectPublicKeyInfo
    key_id: int | None


@dataclass(frozen=True)
class SecurityInfoSet:
    der: bytes
    pace: tuple[PaceInfo, ...] = ()
    pace_domain: tuple[PaceDomainParameterInfo, ...] = ()
    active_auth: ActiveAuthenticationInfo | None = None
    chip_auth: tuple[ChipAuthenticationInfo, ...] = ()
    chip_auth_keys: tuple[ChipAuthenticationPublicKeyInfo, ...] = ()
    other: tuple[str, ...] = ()

    @property
    def protocols(self) -> tuple[str, ...]:
        return (tuple(p.protocol for p in self.pace) + tuple(d.protocol for d in self.pace_domain)
                + ((ID_AA,) if self.active_auth else ()) + tuple(c.protocol for c in self.chip_auth)
                + tuple(k.protocol for k in self.chip_auth_keys) + self.other)


def encode_oid(dotted: str) -> bytes:
    """Content bytes of an OBJECT IDENTIFIER (no tag, no length)."""
    try:
        arcs = [int(x) for x in dotted.split(".")]
        if len(arcs) < 2 or arcs[0] > 2 or min(arcs) < 0:
            raise ValueError
    except ValueError:
        raise SecurityInfoError(f"not an OID: {dotted!r}") from None
    out = bytearray()
    for n in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def _int(item: tlv.Tlv, what: str) -> int:
    if item.tag != 0x02 or not item.value or len(item.value) > 8:
        raise SecurityInfoError(f"{what}: expected a small INTEGER")
    return int.from_bytes(item.value, "big", signed=True)


def _oid_of(item: tlv.Tlv, what: str) -> str:
    if item.tag != 0x06:
        raise SecurityInfoError(f"{what}: expected an OBJECT IDENTIFIER, found tag {item.tag:X}")
    try:
        return _oid(item.value)
    except LdsError as exc:
        raise SecurityInfoError(f"{what}: {exc}") from None


def _arcs_after(oid: str, prefix: str) -> list[int] | None:
    if not oid.startswith(prefix + "."):
        return None
    try:
        return [int(x) for x in oid[len(prefix) + 1:].split(".")]
    except ValueError:
        return None


def parse(der: bytes) -> SecurityInfoSet:
    """A DER SET OF SecurityInfo (EF.CardAccess, EF.CardSecurity content, DG14 content)."""
    try:
        top = tlv.parse_single(bytes(der), 0x31)
    except tlv.TlvError as exc:
        raise SecurityInfoError(f"SecurityInfos: {exc}") from None
    pace, domain, ca, keys, other = [], [], [], [], []
    aa = None
    for n, info in enumerate(top.children or ()):
        what = f"SecurityInfo {n + 1}"
        if info.tag != 0x30 or not info.children:
            raise SecurityInfoError(f"{what}: not a SEQUENCE")
        oid = _oid_of(info.children[0], what)
        rest = info.children[1:]
        what = f"{what} ({oid})"
        pace_arcs = _arcs_after(oid, ID_PACE)
        ca_arcs = _arcs_after(oid, ID_CA)
        if pace_arcs and len(pace_arcs) == 2 and pace_arcs[0] in _PACE_KINDS and pace_arcs[1] in _CIPHERS:
            if not rest or len(rest) > 2:
                raise SecurityInfoError(f"{what}: PACEInfo needs version and an optional parameterId")
            agreement, mapping = _PACE_KINDS[pace_arcs[0]]
            pace.append(PaceInfo(oid, _int(rest[0], what), _int(rest[1], what) if len(rest) > 1 else None,
                                 agreement, mapping, _CIPHERS[pace_arcs[1]]))
        elif pace_arcs and len(pace_arcs) == 1 and pace_arcs[0] in _PACE_KINDS:
            if not rest or len(rest) > 2 or rest[0].tag != 0x30:
                raise SecurityInfoError(f"{what}: PACEDomainParameterInfo needs an AlgorithmIdentifier")
            domain.append(PaceDomainParameterInfo(oid, rest[0].encode(),
                                                  _int(rest[1], what) if len(rest) > 1 else None))
        elif oid == ID_AA:
            if len(rest) != 2:
                raise SecurityInfoError(f"{what}: ActiveAuthenticationInfo needs version and signatureAlgorithm")
            aa = ActiveAuthenticationInfo(_int(rest[0], what), _oid_of(rest[1], what))
        elif ca_arcs and len(ca_arcs) == 2 and ca_arcs[0] in _CA_KINDS and ca_arcs[1] in _CIPHERS:
            if not rest or len(rest) > 2:
                raise SecurityInfoError(f"{what}: ChipAuthenticationInfo needs version and an optional keyId")
            ca.append(ChipAuthenticationInfo(oid, _int(rest[0], what), _int(rest[1], what) if len(rest) > 1 else None,
                                             _CA_KINDS[ca_arcs[0]], _CIPHERS[ca_arcs[1]]))
        elif oid in (ID_PK + ".1", ID_PK + ".2"):
            if not rest or len(rest) > 2 or rest[0].tag != 0x30:
                raise SecurityInfoError(f"{what}: ChipAuthenticationPublicKeyInfo needs a SubjectPublicKeyInfo")
            keys.append(ChipAuthenticationPublicKeyInfo(oid, rest[0].encode(),
                                                        _int(rest[1], what) if len(rest) > 1 else None))
        else:
            other.append(oid)
    return SecurityInfoSet(top.encode(), tuple(pace), tuple(domain), aa, tuple(ca), tuple(keys), tuple(other))


def parse_card_access(data: bytes) -> SecurityInfoSet:
    """EF.CardAccess: the SET itself (trailing bytes after it are padding some chips leave)."""
    try:
        length = tlv.total_length(bytes(data[:8]))
    except tlv.TlvError as exc:
        raise SecurityInfoError(f"EF.CardAccess: {exc}") from None
    if length is None or length > len(data):
        raise SecurityInfoError(f"EF.CardAccess: {len(data)} bytes, header announces {length}")
    return parse(bytes(data[:length]))


def parse_dg14(data: bytes) -> SecurityInfoSet:
    try:
        top = tlv.parse_single(bytes(data), 0x6E)
    except tlv.TlvError as exc:
        raise SecurityInfoError(f"DG14: {exc}") from None
    if not top.children or top.children[0].tag != 0x31:
        raise SecurityInfoError("DG14: SET OF SecurityInfo missing")
    return parse(top.children[0].encode())


# ----------------------------------------------------------------------------- encoders (test PKI, simulator)

def _der_int(n: int) -> bytes:
    return tlv.encode(0x02, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True))


def pace_oid(agreement: str, mapping: str, cipher: str) -> str:
    kind = {v: k for k, v in _PACE_KINDS.items()}[(agreement, mapping)]
    return f"{ID_PACE}.{kind}.{ {v: k for k, v in _CIPHERS.items()}[cipher]}"


def encode_pace_info(protocol: str, parameter_id: int | None, version: int = 2) -> bytes:
    body = [tlv.encode(0x06, encode_oid(protocol)), _der_int(version)]
    if parameter_id is not None:
        body.append(_der_int(parameter_id))
    return tlv.encode(0x30, body)


def encode_active_auth_info(signature_algorithm: str, version: int = 1) -> bytes:
    return tlv.encode(0x30, [tlv.encode(0x06, encode_oid(ID_AA)), _der_int(version),
                             tlv.encode(0x06, encode_oid(signature_algorithm))])


def encode_set(infos: list[bytes]) -> bytes:
    """DER SET OF: elements sorted by their encoding."""
    return tlv.encode(0x31, sorted(infos))


ID_SECURITY_OBJECT = ID_BSI + ".3.2.1"  # eContentType of EF.CardSecurity


def parse_card_security(data: bytes):
    """EF.CardSecurity: a CMS SignedData (eContentType id-SecurityObject) of SecurityInfos.
    Returns (`cms.SignedData`, `SecurityInfoSet`); the signature is not checked here
    (`icao9303.card_security.verify` does, against the trust store)."""
    from icao9303 import cms
    try:
        length = tlv.total_length(bytes(data[:8]))
    except tlv.TlvError as exc:
        raise SecurityInfoError(f"EF.CardSecurity: {exc}") from None
    if length is None or length > len(data):
        raise SecurityInfoError(f"EF.CardSecurity: {len(data)} bytes, header announces {length}")
    try:
        signed = cms.parse_signed_data(bytes(data[:length]), ID_SECURITY_OBJECT, "EF.CardSecurity")
    except (cms.CmsError, cms.CertificateError) as exc:
        raise SecurityInfoError(str(exc)) from None
    return signed, parse(signed.content)
