"""Card side of PACE (Generic Mapping) and Active Authentication for the simulated chip.

Written from ICAO 9303-11 apart from the terminal (drivers/emrtd/pace.py, aa.py) so the two check
each other: only the group arithmetic and domain parameters (`drivers.emrtd.groups`), the KDF
and the cipher/MAC primitives are shared. Sans-IO: `CardPace.step(cla, data) -> (data, sw)`.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from drivers.emrtd import crypto, groups
from icao9303 import secinfo, tlv

SW_OK = 0x9000
SW_AUTH_FAILED = 0x6300
SW_WRONG_DATA = 0x6A80
SW_REF_NOT_FOUND = 0x6A88
SW_CONDITIONS = 0x6985
SW_WRONG_LENGTH = 0x6700

# ISO/IEC 10118-3 hash identifiers for the 9796-2 two-byte trailer
TRAILER_IDS = {"sha1": 0x33, "sha224": 0x38, "sha256": 0x34, "sha384": 0x36, "sha512": 0x35}


class CardPace:
    """One PACE run on the card. `passwords`: password reference -> key (1 MRZ: SHA-1 of the MRZ
    information, 2 CAN: its digits). `fault`: "bad_token" (the chip's T_IC is wrong) or
    "refuse" (MSE:Set AT answered 6A80), to exercise the terminal's failure paths."""

    def __init__(self, card_access: secinfo.SecurityInfoSet, passwords: dict[int, bytes], random_bytes,
                 fault: str | None = None, cam_key: int | None = None, ops: list | None = None):
        """`cam_key`: the static chip-authentication private key (PACE-CAM), a scalar on the PACE curve.
        `ops`: a list the public-key operations are reported to, as (kind, bits) (the timing model)."""
        self.cam_key = cam_key
        self.ops = ops if ops is not None else []
        self.offered = {p.oid_der: p for p in card_access.pace if p.parameter_id in groups.STANDARD}
        self.passwords = passwords
        self.random_bytes = random_bytes
        self.fault = fault
        self.info: secinfo.PaceInfo | None = None
        self.state = "idle"
        self.result: tuple[bytes, bytes, str] | None = None  # (KS_Enc, KS_MAC, cipher) once done

    def _scalar(self, group) -> int:
        size = (group.n.bit_length() + 7) // 8 + 8
        return 1 + int.from_bytes(self.random_bytes(size), "big") % (group.n - 1)

    def set_at(self, data: bytes) -> int:
        """MSE:Set AT (P1P2 C1A4): 80 protocol OID, 83 password reference, optional 84 parameter id."""
        self.state, self.info, self.result = "idle", None, None
        if self.fault == "refuse":
            return SW_WRONG_DATA
        try:
            objs = {o.tag: o.value for o in tlv.parse(data, max_depth=0)}
        except tlv.TlvError:
            return SW_WRONG_DATA
        info = self.offered.get(objs.get(0x80, b""))
        if info is None:
            return SW_REF_NOT_FOUND
        ref = objs.get(0x83, b"")
        if len(ref) != 1 or ref[0] not in self.passwords:
            return SW_REF_NOT_FOUND
        if 0x84 in objs and objs[0x84] != bytes((info.parameter_id,)):
            return SW_REF_NOT_FOUND
        self.info = info
        self.group = groups.standard(info.parameter_id)
        self.k_pi = crypto.kdf(self.passwords[ref[0]], crypto.PI_COUNTER, info.cipher)
        self.state = "nonce"
        return SW_OK

    def general_authenticate(self, cla: int, data: bytes) -> tuple[bytes, int]:
        if self.info is None:
            return b"", SW_CONDITIONS
        chained = bool(cla & 0x10)
        try:
            top = tlv.parse_single(data, 0x7C, max_depth=1, allow_trailing=False)
        except tlv.TlvError:
            return self._fail(SW_WRONG_DATA)
        objs = {o.tag: o.value for o in top.children or ()}
        g, cipher = self.group, self.info.cipher
        try:
            if self.state == "nonce" and chained and not objs:
                size = 16  # for 3DES too, as real chips do; Integrated Mapping: the length of its constants
                if self.info.mapping == "IM":
                    from drivers.emrtd.pace import im_nonce_length
                    size = im_nonce_length(cipher)
                self.s = self.random_bytes(size)
                z = crypto.encrypt_block(cipher, self.k_pi, self.s)
                self.state = "map"
                return tlv.encode(0x7C, tlv.encode(0x80, z)), SW_OK
            if self.state == "map" and chained and 0x81 in objs and self.info.mapping == "IM":
                from drivers.emrtd.pace import im_map, im_pseudo_random  # shared primitives, like the KDF
                r = im_pseudo_random(cipher, self.s, objs[0x81], g.p)
                self.g_mapped = im_map(g, int.from_bytes(r, "big"))
                self._work(1)
                self.state = "agree"
                return tlv.encode(0x7C, tlv.encode(0x82, b"")), SW_OK
            if self.state == "map" and chained and 0x81 in objs:
                pk_map_ifd = g.decode(objs[0x81])
                sk_map = self.sk_map = self._scalar(g)
                h = g.mul(sk_map, pk_map_ifd)
                self.g_mapped = g.add(g.mul(int.from_bytes(self.s, "big"), g.generator), h)
                self._work(3)
                self.state = "agree"
                return tlv.encode(0x7C, tlv.encode(0x82, g.encode(g.mul(sk_map, g.generator)))), SW_OK
            if self.state == "agree" and chained and 0x83 in objs:
                self.pk_ifd = objs[0x83]
                sk = self._scalar(g)
                self.pk_ic = g.encode(g.mul(sk, self.g_mapped))
                if self.pk_ifd == self.pk_ic:
                    return self._fail(SW_WRONG_DATA)
                k = g.shared_secret(g.mul(sk, g.decode(self.pk_ifd)))
                self._work(2)
                self.ks_enc = crypto.kdf(k, crypto.ENC_COUNTER, cipher)
                self.ks_mac = crypto.kdf(k, crypto.MAC_COUNTER, cipher)
                self.state = "tokens"
                return tlv.encode(0x7C, tlv.encode(0x84, self.pk_ic)), SW_OK
            if self.state == "tokens" and not chained and 0x85 in objs:
                expected = crypto.mac8(cipher, self.ks_mac, self._token_input(self.pk_ic))
                if not hmac.compare_digest(expected, objs[0x85]):
                    return self._fail(SW_AUTH_FAILED)
                t_ic = crypto.mac8(cipher, self.ks_mac, self._token_input(self.pk_ifd))
                if self.fault == "bad_token":
                    t_ic = bytes((t_ic[0] ^ 1,)) + t_ic[1:]
                answer = tlv.encode(0x86, t_ic)
                if self.info.mapping == "CAM":
                    if self.cam_key is None:
                        return self._fail(SW_CONDITIONS)
                    # CA_IC = SK_map,IC / SK_IC(static) mod n, so that CA_IC * PK_IC = PK_map,IC
                    ca_ic = self.sk_map * pow(self.cam_key, -1, g.n) % g.n
                    answer += tlv.encode(0x8A, _aes_cbc_ff(self.ks_enc, crypto.pad(ca_ic.to_bytes(g.size, "big"), 16)))
                self.state, self.result = "done", (self.ks_enc, self.ks_mac, cipher)
                return tlv.encode(0x7C, answer), SW_OK
        except (groups.GroupError, ValueError):
            return self._fail(SW_WRONG_DATA)
        return self._fail(SW_CONDITIONS)

    def _work(self, n: int) -> None:
        kind = "dh" if self.group.kind == "DH" else "ec"
        self.ops.extend([(kind, self.group.p.bit_length())] * n)

    def _token_input(self, public: bytes) -> bytes:
        tag = 0x84 if self.group.kind == "DH" else 0x86
        return tlv.encode(0x7F49, [tlv.encode(0x06, secinfo.encode_oid(self.info.protocol)), tlv.encode(tag, public)])

    def _fail(self, sw: int) -> tuple[bytes, int]:
        self.state, self.info = "idle", None
        return b"", sw


def _aes_cbc_ff(key: bytes, data: bytes) -> bytes:
    """AES-CBC with IV = E(key, FF..FF) (PACE-CAM's encrypted chip authentication data)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    iv = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(b"\xff" * 16)
    return Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor().update(data)


# ------------------------------------------------------------------------------- active authentication
@dataclass
class AaSigner:
    """The chip's Active Authentication key. RSA: ISO/IEC 9796-2 scheme 1 with `hash_name`
    (trailer BC for SHA-1 unless `two_byte_trailer`, else xxCC); ECDSA: plain r||s, or DER."""

    key: object                    # cryptography RSA or EC private key
    hash_name: str = "sha256"
    two_byte_trailer: bool = True
    der_signature: bool = False

    def cost(self) -> tuple[str, int]:
        """The signature as the timing model counts it: ("sign", RSA bits) or ("ec", curve bits)."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            return "sign", self.key.key_size
        return "ec", self.key.curve.key_size

    def sign(self, challenge: bytes, random_bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self._sign_9796_2(challenge, random_bytes)
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            algorithm = {"sha1": hashes.SHA1(), "sha224": hashes.SHA224(), "sha256": hashes.SHA256(),
                         "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[self.hash_name]
            der = self.key.sign(challenge, ec.ECDSA(algorithm))
            if self.der_signature:
                return der
            r, s = decode_dss_signature(der)
            size = (self.key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        raise TypeError(f"no Active Authentication with {type(self.key).__name__}")

    def _sign_9796_2(self, challenge: bytes, random_bytes) -> bytes:
        numbers = self.key.private_numbers()
        n = numbers.public_numbers.n
        k = (n.bit_length() + 7) // 8
        if self.hash_name == "sha1" and not self.two_byte_trailer:
            trailer = b"\xBC"
        else:
            trailer = bytes((TRAILER_IDS[self.hash_name], 0xCC))
        hlen = hashlib.new(self.hash_name).digest_size
        m1 = random_bytes(k - 1 - hlen - len(trailer))
        f = b"\x6A" + m1 + hashlib.new(self.hash_name, m1 + challenge).digest() + trailer
        m = int.from_bytes(f, "big")
        # CRT
        p, q = numbers.p, numbers.q
        m1_, m2_ = pow(m, numbers.dmp1, p), pow(m, numbers.dmq1, q)
        h = numbers.iqmp * (m1_ - m2_) % p
        return (m2_ + h * q).to_bytes(k, "big")
