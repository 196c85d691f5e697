"""Basic Access Control (ICAO 9303-11 §4.3): document keys from the MRZ, mutual authentication.

Sans-IO: `MutualAuthentication` builds the EXTERNAL AUTHENTICATE command from
the chip's challenge and turns the chip's answer into a `SecureMessaging`
session; `Bac.establish` drives it over a plain channel.
"""
from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import Callable

from drivers.emrtd import crypto
from drivers.emrtd.apdu import ChipError, Command, Response, check
from drivers.emrtd.sm import SecureMessaging
from icao9303 import mrz

GET_CHALLENGE = Command(0x00, 0x84, 0x00, 0x00, le=8)


class ChipAuthenticationMismatch(ChipError):
    """The chip's mutual-authentication answer does not verify: not the chip we challenged, or a wrong key."""


@dataclass(frozen=True)
class BacKey:
    """The MRZ fields BAC is keyed on: document number, birth date and expiry date (YYMMDD)."""

    document_number: str
    birth_date: str
    expiry_date: str

    def __post_init__(self):
        if not self.document_number:
            raise mrz.MrzError("document number is empty")
        self.mrz_information()  # MrzError now rather than at the chip

    @classmethod
    def from_mrz(cls, parsed: mrz.Mrz) -> BacKey:
        return cls(parsed.document_number, parsed.birth_date_raw, parsed.expiry_date_raw)

    def mrz_information(self) -> str:
        """Document number (padded to 9), birth and expiry dates, each followed by its check digit."""
        return mrz.bac_mrz_information(self.document_number, self.birth_date, self.expiry_date)

    def seed(self) -> bytes:
        return mrz.bac_seed(self.mrz_information())

    def document_keys(self) -> tuple[bytes, bytes]:
        """K_Enc and K_MAC derived from the key seed."""
        seed = self.seed()
        return crypto.derive_key(seed, crypto.ENC_COUNTER), crypto.derive_key(seed, crypto.MAC_COUNTER)


def session_keys(k_ifd: bytes, k_ic: bytes) -> tuple[bytes, bytes]:
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic))
    return crypto.derive_key(seed, crypto.ENC_COUNTER), crypto.derive_key(seed, crypto.MAC_COUNTER)


class MutualAuthentication:
    """Terminal side of BAC's challenge-response (§4.3.3.1). Randoms are fresh unless given (tests)."""

    def __init__(self, k_enc: bytes, k_mac: bytes, rnd_ifd: bytes | None = None, k_ifd: bytes | None = None):
        self.k_enc, self.k_mac = k_enc, k_mac
        self.rnd_ifd = rnd_ifd or os.urandom(8)
        self.k_ifd = k_ifd or os.urandom(16)
        self.rnd_ic = b""

    def external_authenticate(self, rnd_ic: bytes) -> Command:
        if len(rnd_ic) != 8:
            raise ChipAuthenticationMismatch(f"GET CHALLENGE returned {len(rnd_ic)} bytes, expected 8")
        self.rnd_ic = rnd_ic
        e_ifd = crypto.encrypt(self.k_enc, self.rnd_ifd + rnd_ic + self.k_ifd)
        return Command(0x00, 0x82, 0x00, 0x00, e_ifd + crypto.retail_mac(self.k_mac, crypto.pad(e_ifd)), le=40)

    def session(self, answer: bytes) -> SecureMessaging:
        if len(answer) != 40:
            raise ChipAuthenticationMismatch(f"EXTERNAL AUTHENTICATE returned {len(answer)} bytes, expected 40")
        e_ic, m_ic = answer[:32], answer[32:]
        if not hmac.compare_digest(crypto.retail_mac(self.k_mac, crypto.pad(e_ic)), m_ic):
            raise ChipAuthenticationMismatch("chip's authentication MAC does not verify")
        r = crypto.decrypt(self.k_enc, e_ic)
        if r[:8] != self.rnd_ic or r[8:16] != self.rnd_ifd:
            raise ChipAuthenticationMismatch("chip's authentication does not echo our challenge")
        ks_enc, ks_mac = session_keys(self.k_ifd, r[16:])
        ssc = int.from_bytes(self.rnd_ic[4:] + self.rnd_ifd[4:], "big")
        return SecureMessaging(ks_enc, ks_mac, ssc)


class Bac:
    """BAC as an access-control strategy (see `drivers.emrtd.access`)."""

    name = "BAC"

    def __init__(self, key: BacKey):
        self.key = key

    def establish(self, send: Callable[[Command], Response]) -> SecureMessaging:
        auth = MutualAuthentication(*self.key.document_keys())
        rnd_ic = check(send(GET_CHALLENGE), "GET CHALLENGE").data
        answer = check(send(auth.external_authenticate(rnd_ic)), "EXTERNAL AUTHENTICATE").data
        return auth.session(answer)
