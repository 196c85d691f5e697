"""PACE v2 (ICAO 9303-11 §4.4), terminal side: Generic Mapping over ECDH and DH, 3DES and AES, and
Chip Authentication Mapping (PACE-CAM, ECDH with AES).

Sans-IO: `PaceProtocol` builds each command from the chip's previous answer, and
`PaceProtocol.session` turns the last answer into a `SecureMessaging` session (SSC 0). `Pace`
is the access-control strategy that drives it over a plain channel (`drivers.emrtd.access`).

  MSE:Set AT        00 22 C1 A4  80 <protocol OID> 83 <password ref: 01 MRZ, 02 CAN> [84 <parameter id>]
  GA 1 (nonce)      10 86 00 00  7C 00                        -> 7C { 80 z }, s = D(K_pi, z)
  GA 2 (mapping)    10 86 00 00  7C { 81 PK_map,IFD }         -> 7C { 82 PK_map,IC }
                    Generic Mapping: G' = s*G + SK_map,IFD*PK_map,IC  (DH: g' = g^s * h)
  GA 3 (agreement)  10 86 00 00  7C { 83 PK_IFD = SK_IFD*G' } -> 7C { 84 PK_IC }
                    K = x(SK_IFD*PK_IC), KS_Enc = KDF(K,1), KS_MAC = KDF(K,2)
  GA 4 (tokens)     00 86 00 00  7C { 85 T_IFD }              -> 7C { 86 T_IC }
                    T_IFD = MAC(KS_MAC, 7F49{06 OID, 86 PK_IC}), T_IC over PK_IFD (DH: tag 84)

Integrated Mapping (ICAO 9303 variant, not the older TR-SAC one): GA 2 sends the terminal's nonce
7C{81 t} (the chip answers an empty 82) and both sides map G' = f(R(s, t) mod p): the pseudo-random
function R from AES (k0 = E_t(s), then E_ki(c1) blocks, k(i+1) = E_ki(c0)) and, for curves, the
ICAO App. B point encoding (simplified SWU, p = 3 mod 4); for DH g' = R^((p-1)/q) mod p. Only the
AES-128 constants are implemented (the worked example's), so IM runs with AES-128.

PACE-CAM runs the Generic Mapping with the CAM protocol OID; the chip's GA 4 answer adds
8A = E(KS_Enc, CA_IC) (AES-CBC, IV = E(KS_Enc, FF..FF)), and the chip is authentic when
CA_IC * PK_IC(static) = PK_map,IC for the chip-authentication key in EF.CardSecurity
(`verify_chip_authentication`); EF.CardSecurity itself must pass passive authentication.

The password key is SHA-1 of the MRZ information (document number, birth date, expiry date with
their check digits) or the CAN itself; K_pi = KDF(key, 3). Every public value is sent and checked
at its fixed length; received points are checked to be on the curve (DH values in the subgroup),
the mapped generator and the shared secret not to be the identity, and PK_IC to differ from
PK_IFD. The parameter id (84) goes with MSE:Set AT whenever it is a standardized one, because
chips with several PACEInfos need it (`send_parameter_id=False` reproduces ICAO's worked example).
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from drivers.emrtd import crypto, groups
from drivers.emrtd.apdu import ChipError, Command, Response, check
from drivers.emrtd.bac import BacKey
from drivers.emrtd.sm import SecureMessaging
from icao9303 import secinfo, tlv
from icao9303.secinfo import PaceInfo

PASSWORD_MRZ = 0x01
PASSWORD_CAN = 0x02
SUPPORTED_MAPPINGS = ("GM", "IM", "CAM")
# Integrated Mapping's pseudo-random function constants (ICAO 9303-11, AES-128)
# Integrated Mapping's constants c0, c1: 128-bit for 3DES and AES-128, 256-bit for AES-192/256
IM_CONSTANTS_128 = (bytes.fromhex("A668892A7C41E3CA739F40B057D85904"), bytes.fromhex("A4E136AC725F738B01C1F60217C188AD"))
IM_CONSTANTS_256 = (bytes.fromhex("D463D65234124EF7897054986DCA0A174E28DF758CBAA03F240616414D5A1676"),
                    bytes.fromhex("54BD7255F0AAF831BEC3423FCF39D69B6CBF066677D0FAAE5AADD99DF8E53517"))
IM_KEY_LENGTH = {"3DES": 16, "AES-128": 16, "AES-192": 24, "AES-256": 32}


def im_nonce_length(cipher: str) -> int:
    """Length of the chip's nonce s for Integrated Mapping: that of the constants (l = 128 or 256)."""
    return 16 if IM_KEY_LENGTH[cipher] <= 16 else 32


class PaceError(ChipError):
    """PACE could not be run or the chip's answers do not verify (bad point, token mismatch)."""


@dataclass(frozen=True)
class Can:
    """The Card Access Number printed on the data page (6 digits on ICAO documents)."""

    number: str

    def __post_init__(self):
        if not self.number or not self.number.isdigit():
            raise PaceError("CAN must be digits")


Password = BacKey | Can


def password_key(password: Password) -> tuple[bytes, int, str]:
    """(key, password reference, label): SHA-1(MRZ information) for the MRZ, the CAN's bytes for a CAN."""
    if isinstance(password, Can):
        return password.number.encode("ascii"), PASSWORD_CAN, "CAN"
    return hashlib.sha1(password.mrz_information().encode("ascii")).digest(), PASSWORD_MRZ, "MRZ"


def supported(info: PaceInfo) -> bool:
    if info.mapping == "CAM" and info.cipher == "3DES":
        return False  # CAM is defined with AES only
    if info.mapping == "IM" and (info.cipher not in IM_KEY_LENGTH or (
            info.parameter_id in groups.STANDARD and groups.STANDARD[info.parameter_id].kind == "ECDH"
            and groups.STANDARD[info.parameter_id].p % 4 != 3)):
        return False  # IM: only the AES-128 constants, and the point encoding needs p = 3 mod 4
    return (info.mapping in SUPPORTED_MAPPINGS and info.version == 2
            and info.parameter_id is not None and info.parameter_id in groups.STANDARD
            and (groups.STANDARD[info.parameter_id].kind == "DH") == (info.agreement == "DH"))


def _rank(info: PaceInfo) -> tuple:
    return (info.mapping == "CAM", info.agreement == "ECDH", info.mapping == "GM", info.cipher != "3DES",
            crypto.CIPHERS[info.cipher][0])


def im_pseudo_random(cipher: str, s: bytes, t: bytes, p: int) -> bytes:
    """Integrated Mapping's R(s, t) (ICAO 9303-11 §4.4.3.3.2): k0 = E(t, s); then for i < n,
    x_i = E(k_i, c1) and k_(i+1) = E(k_i, c0), each key the first key-length bytes of k_i; the
    output x_0 || ... || x_(n-1), n = ceil((log2 p + 64) / l). E is the PACE cipher, CBC with a zero
    IV; l is 128 (3DES, AES-128: t and s of 16 bytes) or 256 (AES-192/256: s of 32 bytes, t of the
    key length). AES-128 is checked against ICAO's worked examples; 3DES and AES-192/256 follow the
    same construction with no published worked example."""
    try:
        key_length = IM_KEY_LENGTH[cipher]
    except KeyError:
        raise PaceError(f"Integrated Mapping with {cipher} is not supported") from None
    c0, c1 = IM_CONSTANTS_128 if key_length <= 16 else IM_CONSTANTS_256
    if len(t) != key_length or len(s) != len(c0):
        raise PaceError(f"Integrated Mapping with {cipher}: nonces of {len(s)} and {len(t)} bytes, "
                        f"expected {len(c0)} and {key_length}")
    n = -(-(p.bit_length() + 64) // (8 * len(s)))
    k, out = crypto.encrypt_block(cipher, t, s), b""
    for _ in range(n):
        key = k[:key_length]
        out += crypto.encrypt_block(cipher, key, c1)
        k = crypto.encrypt_block(cipher, key, c0)
    return out


def im_map(group: groups.Group, r: int):
    """G' from the field element R mod p: ICAO 9303-11 App. B point encoding (curves, p = 3 mod 4),
    or R^((p-1)/q) mod p (DH)."""
    p = group.p
    if group.kind == "DH":
        g = pow(r % p, (p - 1) // group.q, p)
        if g <= 1:
            raise PaceError("Integrated Mapping: the mapped generator is degenerate")
        return g
    if p % 4 != 3:
        raise PaceError(f"Integrated Mapping: point encoding needs p = 3 mod 4 ({group.name})")
    a, b, t = group.a, group.b, r % p
    alpha = -t * t % p
    x2 = -b * pow(a, -1, p) * (1 + pow((alpha + alpha * alpha) % p, -1, p)) % p
    x3 = alpha * x2 % p
    h2 = (pow(x2, 3, p) + a * x2 + b) % p
    u = pow(t, 3, p) * h2 % p
    big_a = pow(h2, p - 1 - (p + 1) // 4, p)
    point = (x2, big_a * h2 % p) if big_a * big_a * h2 % p == 1 else (x3, big_a * u % p)
    if not group.contains(point):
        raise PaceError("Integrated Mapping: the encoded point is not on the curve")
    return point


def choose(infos: secinfo.SecurityInfoSet) -> PaceInfo | None:
    """The PACEInfo to run among those EF.CardAccess lists: a mapping and standardized domain
    parameters we support, CAM first (it authenticates the chip), ECDH before DH, AES before 3DES,
    longer keys first."""
    usable = [p for p in infos.pace if supported(p)]
    return max(usable, key=_rank) if usable else None


def dynamic_data(data: bytes, tag: int, step: str) -> bytes:
    """The one data object `tag` inside a General Authenticate answer's 7C template."""
    try:
        top = tlv.parse_single(data, 0x7C, max_depth=1)
    except tlv.TlvError as exc:
        raise PaceError(f"{step}: answer is not a 7C template: {exc}") from None
    found = top.find(tag)
    if found is None:
        raise PaceError(f"{step}: answer has no data object {tag:02X}")
    return found.value


def general_authenticate(tag: int | None, value: bytes = b"", last: bool = False) -> Command:
    body = tlv.encode(0x7C, tlv.encode(tag, value) if tag is not None else b"")
    return Command(0x00 if last else 0x10, 0x86, 0x00, 0x00, body, le=256)


def public_key_token(info: PaceInfo, group: groups.Group, encoded: bytes) -> bytes:
    """The authentication token's input: 7F49 { 06 OID, 86 point } (DH: 84 public value)."""
    return tlv.encode(0x7F49, [tlv.encode(0x06, info.oid_der), tlv.encode(0x84 if group.kind == "DH" else 0x86, encoded)])


class PaceProtocol:
    """One PACE run. `scalars` gives the terminal's private keys (mapping, then ephemeral) for
    known-answer tests; by default they are random."""

    def __init__(self, info: PaceInfo, password: Password, *, scalars: Iterator[int] | None = None,
                 send_parameter_id: bool = True, im_nonce: bytes | None = None):
        if info.mapping not in SUPPORTED_MAPPINGS:
            raise PaceError(f"{info.name}: mapping {info.mapping} is not supported")
        if info.parameter_id is None:
            raise PaceError(f"{info.name}: no parameterId (proprietary domain parameters are not supported)")
        self.info = info
        self.group = groups.standard(info.parameter_id)
        if (self.group.kind == "DH") != (info.agreement == "DH"):
            raise PaceError(f"{info.name}: parameter id {info.parameter_id} is not a {info.agreement} group")
        self.cipher = info.cipher
        key, self.password_ref, self.password_label = password_key(password)
        self.k_pi = crypto.kdf(key, crypto.PI_COUNTER, self.cipher)
        self.send_parameter_id = send_parameter_id
        self._scalars = scalars
        self._im_nonce = im_nonce
        self.nonce = b""
        self.pk_map_ic = None
        self.chip_auth_data: bytes | None = None  # CA_IC (PACE-CAM)
        self.mapped_generator = None
        self.shared_secret = b""
        self.ks_enc = self.ks_mac = b""
        self._pk_ifd_encoded = self._pk_ic_encoded = b""

    def _scalar(self) -> int:
        return next(self._scalars) if self._scalars is not None else self.group.random_scalar()

    # --------------------------------------------------------------- commands
    def mse_set_at(self) -> Command:
        data = tlv.encode(0x80, self.info.oid_der) + tlv.encode(0x83, bytes((self.password_ref,)))
        if self.send_parameter_id:
            data += tlv.encode(0x84, bytes((self.info.parameter_id,)))
        return Command(0x00, 0x22, 0xC1, 0xA4, data)

    def encrypted_nonce(self) -> Command:
        return general_authenticate(None)

    def map_nonce(self, answer: bytes) -> Command:
        z = dynamic_data(answer, 0x80, "GA encrypted nonce")
        if not z or len(z) % (crypto.BLOCK if self.cipher == "3DES" else crypto.AES_BLOCK):
            raise PaceError(f"GA encrypted nonce: {len(z)} bytes is not a whole number of cipher blocks")
        self.nonce = crypto.decrypt_block(self.cipher, self.k_pi, z)
        g = self.group
        if self.info.mapping == "IM":
            import os
            self.im_nonce = self._im_nonce or os.urandom(IM_KEY_LENGTH.get(self.cipher, len(self.nonce)))
            return general_authenticate(0x81, self.im_nonce)
        self._sk_map = self._scalar()
        return general_authenticate(0x81, g.encode(g.mul(self._sk_map, g.generator)))

    def key_agreement(self, answer: bytes) -> Command:
        g = self.group
        if self.info.mapping == "IM":
            dynamic_data(answer, 0x82, "GA map nonce")  # empty in the ICAO variant
            r = int.from_bytes(im_pseudo_random(self.cipher, self.nonce, self.im_nonce, g.p), "big")
            self.mapped_generator = im_map(g, r)
            self._sk_ifd = self._scalar()
            self._pk_ifd_encoded = g.encode(g.mul(self._sk_ifd, self.mapped_generator))
            return general_authenticate(0x83, self._pk_ifd_encoded)
        pk_map_ic = self.pk_map_ic = g.decode(dynamic_data(answer, 0x82, "GA map nonce"))
        h = g.mul(self._sk_map, pk_map_ic)
        if h is None or (g.kind == "DH" and h == 1):
            raise PaceError("GA map nonce: the mapping's shared point is the identity")
        self.mapped_generator = g.add(g.mul(int.from_bytes(self.nonce, "big"), g.generator), h)
        if self.mapped_generator is None or (g.kind == "DH" and self.mapped_generator == 1):
            raise PaceError("GA map nonce: the mapped generator is the identity")
        self._sk_ifd = self._scalar()
        self._pk_ifd_encoded = g.encode(g.mul(self._sk_ifd, self.mapped_generator))
        return general_authenticate(0x83, self._pk_ifd_encoded)

    def mutual_authentication(self, answer: bytes) -> Command:
        g = self.group
        self._pk_ic_encoded = dynamic_data(answer, 0x84, "GA key agreement")
        pk_ic = g.decode(self._pk_ic_encoded)
        if self._pk_ic_encoded == self._pk_ifd_encoded:
            raise PaceError("GA key agreement: the chip returned our own public key")
        self.shared_secret = g.shared_secret(g.mul(self._sk_ifd, pk_ic))
        self.ks_enc = crypto.kdf(self.shared_secret, crypto.ENC_COUNTER, self.cipher)
        self.ks_mac = crypto.kdf(self.shared_secret, crypto.MAC_COUNTER, self.cipher)
        t_ifd = crypto.mac8(self.cipher, self.ks_mac, public_key_token(self.info, g, self._pk_ic_encoded))
        return general_authenticate(0x85, t_ifd, last=True)

    def session(self, answer: bytes) -> SecureMessaging:
        t_ic = dynamic_data(answer, 0x86, "GA mutual authentication")
        expected = crypto.mac8(self.cipher, self.ks_mac, public_key_token(self.info, self.group, self._pk_ifd_encoded))
        if not hmac.compare_digest(t_ic, expected):
            raise PaceError("GA mutual authentication: the chip's authentication token does not verify")
        if self.info.mapping == "CAM":
            encrypted = dynamic_data(answer, 0x8A, "GA mutual authentication (CAM)")
            aes = crypto.Aes(self.ks_enc)
            if not encrypted or len(encrypted) % crypto.AES_BLOCK:
                raise PaceError("GA mutual authentication (CAM): chip authentication data is not whole blocks")
            self.chip_auth_data = crypto.unpad(aes.decrypt(encrypted, aes.iv_for(b"\xff" * crypto.AES_BLOCK)),
                                               crypto.AES_BLOCK)
        return SecureMessaging(self.ks_enc, self.ks_mac, 0, self.cipher)

    def verify_chip_authentication(self, static_key) -> bool:
        """PACE-CAM: CA_IC * PK_IC(static) == PK_map,IC for the chip-authentication public key
        (a point of the PACE curve) from EF.CardSecurity."""
        if self.chip_auth_data is None or self.pk_map_ic is None:
            raise PaceError("no chip authentication data: not a PACE-CAM run")
        ca_ic = int.from_bytes(self.chip_auth_data, "big")
        if not 0 < ca_ic < self.group.n:
            return False
        return self.group.mul(ca_ic, static_key) == self.pk_map_ic


class Pace:
    """PACE as an access-control strategy (see `drivers.emrtd.access`)."""

    name = "PACE"
    before_select = True  # run in the master file, then select the eMRTD application under SM

    def __init__(self, info: PaceInfo, password: Password, *, send_parameter_id: bool = True):
        self.info = info
        self.password = password
        self.send_parameter_id = send_parameter_id
        self.protocol: PaceProtocol | None = None

    def describe(self) -> dict:
        g = groups.standard(self.info.parameter_id) if self.info.parameter_id in groups.STANDARD else None
        return {"protocol": self.info.name, "oid": self.info.protocol, "mapping": self.info.mapping,
                "agreement": self.info.agreement, "cipher": self.info.cipher,
                "parameter_id": self.info.parameter_id, "domain": g.name if g else None,
                "password": password_key(self.password)[2]}

    def establish(self, send: Callable[[Command], Response]) -> SecureMessaging:
        p = self.protocol = PaceProtocol(self.info, self.password, send_parameter_id=self.send_parameter_id)
        check(send(p.mse_set_at()), "MSE:Set AT (PACE)")
        answer = check(send(p.encrypted_nonce()), "GA encrypted nonce").data
        answer = check(send(p.map_nonce(answer)), "GA map nonce").data
        answer = check(send(p.key_agreement(answer)), "GA key agreement").data
        answer = check(send(p.mutual_authentication(answer)), "GA mutual authentication").data
        return p.session(answer)
