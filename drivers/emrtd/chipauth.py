"""Chip authenticity through the chip-authentication key: PACE-CAM (ICAO 9303-11 §4.4.3.5) and
Chip Authentication v1 (§6.2, the key in DG14).

Chip Authentication (ECDH): under the current secure messaging, MSE:Set AT (00 22 41 A4:
80 <id-CA OID>, 84 <keyId> when DG14 names one) and GENERAL AUTHENTICATE (00 86 00 00:
7C{80 <ephemeral public key>}, answered 7C 00); then K = x(SK_eph * PK_IC), new keys
KDF(K,1)/KDF(K,2) with the cipher of the CA OID (which may differ from the access cipher) and
SSC 0. The chip proves it holds the DG14 private key by answering the next command under the new
keys; a clone cannot (its answer does not verify, or it answers in plain). Set AT + General
Authenticate is used for 3DES too, as chips answer it (a real MY passport's trace is a test).

After a PACE-CAM run the terminal holds CA_IC (decrypted from the chip's GA 4 answer) and
PK_map,IC. EF.CardSecurity (read under secure messaging from the master file, a CMS SignedData
of SecurityInfos) holds the chip's static chip-authentication public key; the chip is authentic
when CA_IC * PK_IC = PK_map,IC. The key is chosen by keyId = the PACE parameter id (TR-03110;
documents with two keys break if the first key on the curve is taken), else the only key on the
PACE curve.

`verify_cam` never raises on chip data; it returns a `ChipAuthResult`. The result binds the chip
to EF.CardSecurity's key only: EF.CardSecurity's signature must pass passive authentication
(`icao9303.card_security.verify`) before the gate trusts it.
"""
from __future__ import annotations

from dataclasses import dataclass

from collections.abc import Iterator

from core.errors import ParseError
from drivers.emrtd import crypto, groups
from drivers.emrtd.apdu import Command
from drivers.emrtd.pace import PaceProtocol
from drivers.emrtd.sm import SecureMessaging
from icao9303 import secinfo, tlv


@dataclass
class ChipAuthResult:
    status: str          # "passed" | "failed" | "not_offered" | "not_checked" (offered in a form we cannot run)
    method: str = ""     # "PACE-CAM" or "CA-ECDH-AES-128 (brainpoolP256r1)"
    reason: str = ""
    key_id: int | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return {"status": self.status, "method": self.method, "reason": self.reason, "key_id": self.key_id}


def verify_cam(protocol: PaceProtocol, card_security: bytes) -> ChipAuthResult:
    method = "PACE-CAM"
    try:
        _, infos = secinfo.parse_card_security(card_security)
    except ParseError as exc:
        return ChipAuthResult("failed", method, f"EF.CardSecurity does not parse: {exc}")
    curve = protocol.group
    candidates = []
    for info in infos.chip_auth_keys:
        try:
            key_curve, point = groups.ec_public_key(info.public_key_der)
        except groups.GroupError:
            continue
        if key_curve == curve:
            candidates.append((info.key_id, point))
    if not candidates:
        return ChipAuthResult("failed", method, f"EF.CardSecurity has no chip-authentication key on {curve.name}")
    wanted = protocol.info.parameter_id
    chosen = [c for c in candidates if c[0] == wanted]
    if not chosen:
        if len(candidates) > 1:
            return ChipAuthResult("failed", method, f"{len(candidates)} keys on {curve.name} and none has keyId {wanted}")
        chosen = candidates
    key_id, point = chosen[0]
    if protocol.verify_chip_authentication(point):
        return ChipAuthResult("passed", method, f"CA_IC * PK_IC = PK_map,IC ({curve.name})", key_id)
    return ChipAuthResult("failed", method, "the chip's authentication data does not match EF.CardSecurity's key "
                                            "(a chip without the issuer's private key)", key_id)


# ----------------------------------------------------------------------------- Chip Authentication v1
DEFAULT_CA_PROTOCOL = secinfo.ID_CA + ".2.1"  # id-CA-ECDH-3DES-CBC-CBC: DG14 with a key and no ChipAuthenticationInfo


class ChipAuthenticationError(Exception):
    """DG14 offers nothing we can run (no ECDH key, unknown curve, ambiguous keys)."""


def choose_ca(infos: secinfo.SecurityInfoSet):
    """(ChipAuthenticationInfo or None, key info, group, public key) for CA v1 with ECDH (a curve and
    a point) or DH (a DhGroup and y), or raises `ChipAuthenticationError` saying why not."""
    keys = []
    for k in infos.chip_auth_keys:
        if k.protocol not in (secinfo.ID_PK + ".1", secinfo.ID_PK + ".2"):
            continue
        dh = k.protocol == secinfo.ID_PK + ".1"
        try:
            keys.append((k, *(groups.dh_public_key if dh else groups.ec_public_key)(k.public_key_der)))
        except groups.GroupError as exc:
            raise ChipAuthenticationError(f"DG14 chip-authentication key: {exc}") from None
    if not keys:
        raise ChipAuthenticationError("DG14 has no chip-authentication key")
    runnable = [i for i in infos.chip_auth if i.version == 1]
    for info in runnable:
        match = [k for k in keys if (info.key_id is None or k[0].key_id == info.key_id)
                 and (k[1].kind == "DH") == (info.agreement == "DH")]
        if len(match) == 1 or (match and info.key_id is not None):
            return (info, *match[0])
    if infos.chip_auth and not runnable:
        raise ChipAuthenticationError("DG14 offers only unknown chip-authentication versions")
    if len(keys) != 1:
        raise ChipAuthenticationError(f"DG14 has {len(keys)} keys and no ChipAuthenticationInfo naming one")
    return (None, *keys[0])


class ChipAuthentication:
    """One CA v1 run (sans-IO). `scalars` gives the ephemeral private key for known-answer tests."""

    def __init__(self, info: secinfo.ChipAuthenticationInfo | None, key: secinfo.ChipAuthenticationPublicKeyInfo,
                 curve: groups.Curve, point, *, scalars: Iterator[int] | None = None):
        self.protocol = info.protocol if info else (DEFAULT_CA_PROTOCOL if curve.kind != "DH"
                                                     else secinfo.ID_CA + ".1.1")  # id-CA-DH-3DES-CBC-CBC
        self.cipher = info.cipher if info else "3DES"
        self.key_id = info.key_id if info and info.key_id is not None else key.key_id
        self.curve, self.point = curve, point
        self._sk = next(scalars) if scalars is not None else curve.random_scalar()

    def mse_set_at(self) -> Command:
        data = tlv.encode(0x80, secinfo.encode_oid(self.protocol))
        if self.key_id is not None:
            data += tlv.encode(0x84, self.key_id.to_bytes(max(1, (self.key_id.bit_length() + 7) // 8), "big"))
        return Command(0x00, 0x22, 0x41, 0xA4, data)

    def general_authenticate(self) -> Command:
        pk = self.curve.encode(self.curve.mul(self._sk, self.curve.generator))
        return Command(0x00, 0x86, 0x00, 0x00, tlv.encode(0x7C, tlv.encode(0x80, pk)), le=256)

    def session(self, answer: bytes) -> SecureMessaging:
        if answer:
            try:
                tlv.parse_single(answer, 0x7C, max_depth=1)
            except tlv.TlvError as exc:
                raise ChipAuthenticationError(f"GENERAL AUTHENTICATE (CA): answer is not a 7C template: {exc}") from None
        k = self.curve.shared_secret(self.curve.mul(self._sk, self.point))
        return SecureMessaging(crypto.kdf(k, crypto.ENC_COUNTER, self.cipher),
                               crypto.kdf(k, crypto.MAC_COUNTER, self.cipher), 0, self.cipher)

    def describe(self) -> str:
        agreement = "DH" if self.curve.kind == "DH" else "ECDH"
        return f"CA-{agreement}-{self.cipher} ({self.curve.name}" + (f", keyId {self.key_id})" if self.key_id is not None else ")")


def authenticate(session, dg14: bytes, *, scalars: Iterator[int] | None = None) -> ChipAuthResult:
    """Run CA v1 on an open `reader.ChipSession` with DG14's key; on success the session continues
    under the new keys. On failure the caller must re-open the chip (its session is unusable)."""
    from drivers.emrtd.apdu import StatusError
    from drivers.emrtd.crypto import PaddingError
    from drivers.emrtd.sm import SmError

    try:
        infos = secinfo.parse_dg14(dg14)
    except ParseError as exc:
        return ChipAuthResult("failed", "CA", f"DG14 does not parse: {exc}")
    try:
        info, key, curve, point = choose_ca(infos)
    except ChipAuthenticationError as exc:
        return ChipAuthResult("not_checked", "CA", str(exc))
    ca = ChipAuthentication(info, key, curve, point, scalars=scalars)
    method = ca.describe()
    try:
        session.send(ca.mse_set_at(), "MSE:Set AT (CA)")
        answer = session.send(ca.general_authenticate(), "GENERAL AUTHENTICATE (CA)").data
        session.sm = ca.session(answer)
    except (StatusError, SmError, PaddingError, ChipAuthenticationError) as exc:
        return ChipAuthResult("failed", method, f"chip refused chip authentication: {exc}", ca.key_id)
    try:  # the chip proves it holds the DG14 private key by answering under the new keys
        session.send(Command(0x00, 0xA4, 0x02, 0x0C, b"\x01\x1E"), "SELECT EF.COM (after CA)")
    except (StatusError, SmError, PaddingError) as exc:
        return ChipAuthResult("failed", method, "the chip does not answer under the keys agreed with DG14's key "
                                                f"(a chip without the issuer's private key): {exc}", ca.key_id)
    return ChipAuthResult("passed", method, "answers under the session keys agreed with DG14's key", ca.key_id)
