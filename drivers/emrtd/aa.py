"""Active Authentication (ICAO 9303-11 §6.1), terminal side: is this the chip the issuer personalised?

The terminal sends a fresh random 8-byte challenge in INTERNAL AUTHENTICATE (00 88 00 00) under
secure messaging; the chip signs it with the private key whose public half is in DG15.

  RSA    ISO/IEC 9796-2 digital signature scheme 1, partial message recovery: F = s^e mod n must
         be 6A || M1 || H(M1 || challenge) || trailer, the trailer BC (implicit hash: SHA-1, and
         as some issuers do, SHA-224/256/384/512 tried by length) or xx CC with the hash named by
         its ISO/IEC 10118-3 identifier (33 SHA-1, 38 SHA-224, 34 SHA-256, 36 SHA-384, 35 SHA-512).
         A representative ending in neither is also tried as n - F.
  ECDSA  over the challenge, with the hash DG14's ActiveAuthenticationInfo names; without it each
         of SHA-1/224/256/384/512 is tried (the one that verifies is reported). The signature is
         plain r || s (BSI TR-03111), or DER as some documents send it. Any standardized curve,
         brainpoolP320r1 and explicit parameters of a known curve included (`drivers.emrtd.groups`).

AA proves possession of the DG15 key only: the gate must also see DG15's hash pass passive
authentication, or a cloned chip could carry its own DG15. `authenticate` never raises on chip
data: the outcome is an `ActiveAuthResult` (passed, failed, not_offered) with its reason.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from asn1crypto import algos, keys

from drivers.emrtd import groups
from drivers.emrtd.apdu import Command, StatusError
from drivers.emrtd.crypto import PaddingError
from drivers.emrtd.sm import SmError
from icao9303 import lds, secinfo
from core.errors import ParseError

CHALLENGE_LENGTH = 8
HASH_IDS = {0x33: "sha1", 0x38: "sha224", 0x34: "sha256", 0x36: "sha384", 0x35: "sha512"}
HASHES = ("sha1", "sha224", "sha256", "sha384", "sha512")


@dataclass
class ActiveAuthResult:
    status: str            # "passed" | "failed" | "not_offered"
    reason: str = ""
    algorithm: str = ""    # e.g. "RSA-2048 ISO 9796-2 SHA-256 (trailer 34CC)", "ECDSA brainpoolP256r1 SHA-256 plain"
    challenge: bytes = b""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return {"status": self.status, "reason": self.reason, "algorithm": self.algorithm,
                "challenge": self.challenge.hex()}


def internal_authenticate(challenge: bytes) -> Command:
    return Command(0x00, 0x88, 0x00, 0x00, challenge, le=256)


def _pretty(hash_name: str) -> str:
    return hash_name.upper().replace("SHA", "SHA-")


# ---------------------------------------------------------------------------------- keys
def _public_key(spki: bytes):
    """('RSA', n, e) or ('EC', curve, point) from a SubjectPublicKeyInfo."""
    try:
        info = keys.PublicKeyInfo.load(spki, strict=True)
        algorithm = info["algorithm"]["algorithm"].native
        if algorithm == "rsa":
            pub = info["public_key"].parsed
            return "RSA", pub["modulus"].native, pub["public_exponent"].native
        if algorithm == "ec":
            curve, point = groups.ec_public_key(spki)
            return "EC", curve, point
    except (ValueError, TypeError, KeyError, AttributeError, groups.GroupError) as exc:
        raise ValueError(f"DG15 key: {exc}") from None
    raise ValueError(f"DG15 key: algorithm {algorithm} is not RSA or EC")


# ---------------------------------------------------------------------------------- RSA
def _verify_rsa(n: int, e: int, challenge: bytes, signature: bytes) -> tuple[bool, str, str]:
    k = (n.bit_length() + 7) // 8
    s = int.from_bytes(signature, "big")
    bits = f"RSA-{n.bit_length()}"
    if not 0 < s < n:
        return False, f"signature value out of range for {bits}", bits
    f = pow(s, e, n)
    reasons = []
    for candidate in (f, n - f):
        rep = candidate.to_bytes(k, "big")
        ok, why, name = _check_9796_2(rep, challenge)
        if ok:
            return True, "", f"{bits} ISO 9796-2 {name}"
        reasons.append(why)
    return False, reasons[0], f"{bits} ISO 9796-2"


def _check_9796_2(rep: bytes, challenge: bytes) -> tuple[bool, str, str]:
    rep = rep.lstrip(b"\x00")
    if not rep or rep[0] != 0x6A:
        return False, f"recovered message does not start with header 6A (partial recovery), found {rep[:1].hex()}", ""
    if rep[-1] == 0xBC:
        candidates, trailer = list(HASHES), "BC"
        tlen = 1
    elif rep[-1] == 0xCC and len(rep) > 2 and rep[-2] in HASH_IDS:
        candidates, trailer = [HASH_IDS[rep[-2]]], f"{rep[-2]:02X}CC"
        tlen = 2
    else:
        return False, f"recovered message ends in trailer {rep[-2:].hex().upper()}, not BC or a known xxCC", ""
    for name in candidates:
        hlen = hashlib.new(name).digest_size
        if len(rep) < 1 + hlen + tlen:
            continue
        m1, digest = rep[1:len(rep) - hlen - tlen], rep[len(rep) - hlen - tlen:len(rep) - tlen]
        if hmac.compare_digest(hashlib.new(name, m1 + challenge).digest(), digest):
            return True, "", f"{_pretty(name)} (trailer {trailer})"
    return False, f"hash in the recovered message does not match the challenge (trailer {trailer})", ""


# ---------------------------------------------------------------------------------- ECDSA
def _ecdsa_values(curve: groups.Curve, signature: bytes) -> list[tuple[int, int, str]]:
    out = []
    if len(signature) == 2 * curve.order_size:
        half = curve.order_size
        out.append((int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big"), "plain"))
    if signature[:1] == b"\x30":
        try:
            der = algos.DSASignature.load(signature, strict=True)
            out.append((der["r"].native, der["s"].native, "DER"))
        except (ValueError, TypeError):
            pass
    return out


def ecdsa_verify(curve: groups.Curve, point, digest: bytes, r: int, s: int) -> bool:
    n = curve.n
    if not (0 < r < n and 0 < s < n):
        return False
    e = int.from_bytes(digest, "big")
    excess = 8 * len(digest) - n.bit_length()
    if excess > 0:
        e >>= excess
    w = pow(s, -1, n)
    x = curve.add(curve.mul(e * w, curve.generator), curve.mul(r * w, point))
    return x is not None and x[0] % n == r


def _verify_ecdsa(curve, point, challenge: bytes, signature: bytes, hash_name: str | None) -> tuple[bool, str, str]:
    values = _ecdsa_values(curve, signature)
    base = f"ECDSA {curve.name}"
    if not values:
        return False, f"signature of {len(signature)} bytes is neither plain r||s nor DER", base
    hashes = [hash_name] if hash_name else list(HASHES)
    for name in hashes:
        digest = hashlib.new(name, challenge).digest()
        for r, s, form in values:
            if ecdsa_verify(curve, point, digest, r, s):
                note = "" if hash_name else " (hash not named in DG14: tried each)"
                return True, "", f"{base} {_pretty(name)} {form}{note}"
    named = f"with {_pretty(hash_name)} named in DG14" if hash_name else "with any of SHA-1/224/256/384/512"
    return False, f"ECDSA signature does not verify {named}", base


# ---------------------------------------------------------------------------------- entry points
def verify(spki: bytes, challenge: bytes, signature: bytes,
           aa_info: secinfo.ActiveAuthenticationInfo | None = None) -> ActiveAuthResult:
    """Check the chip's answer to `challenge` against the DG15 key."""
    try:
        kind, *key = _public_key(spki)
    except ValueError as exc:
        return ActiveAuthResult("failed", str(exc), "", challenge)
    if kind == "RSA":
        ok, why, name = _verify_rsa(key[0], key[1], challenge, signature)
    else:
        hash_name = aa_info.hash_name if aa_info else None
        if aa_info and hash_name is None:
            return ActiveAuthResult("failed", f"DG14 names signature algorithm {aa_info.signature_algorithm}, "
                                    "not an ECDSA hash we know", f"ECDSA {key[0].name}", challenge)
        ok, why, name = _verify_ecdsa(key[0], key[1], challenge, signature, hash_name)
    return ActiveAuthResult("passed" if ok else "failed", why, name, challenge)


def authenticate(session, files: dict[str, bytes], challenge: bytes | None = None) -> ActiveAuthResult:
    """Run AA on an open `reader.ChipSession` when `files` holds DG15 (DG14 for the ECDSA hash)."""
    if "DG15" not in files:
        return ActiveAuthResult("not_offered", "no DG15 on the chip")
    try:
        spki = lds.parse_dg15(files["DG15"])
    except ParseError as exc:
        return ActiveAuthResult("failed", f"DG15 does not parse: {exc}")
    aa_info = None
    if "DG14" in files:
        try:
            aa_info = secinfo.parse_dg14(files["DG14"]).active_auth
        except ParseError:
            aa_info = None  # DG14's own check is passive authentication's; the hash is then tried
    challenge = challenge or os.urandom(CHALLENGE_LENGTH)
    try:
        answer = session.send(internal_authenticate(challenge), "INTERNAL AUTHENTICATE")
    except StatusError as exc:
        return ActiveAuthResult("failed", f"chip refused INTERNAL AUTHENTICATE: {exc}", "", challenge)
    except (SmError, PaddingError) as exc:  # transport failures (timeout, card pulled out) propagate
        return ActiveAuthResult("failed", f"INTERNAL AUTHENTICATE: {type(exc).__name__}: {exc}", "", challenge)
    return verify(spki, challenge, answer.data, aa_info)
