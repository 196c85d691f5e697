"""3DES primitives of ICAO 9303 Part 11: key derivation, ISO 9797-1 padding and retail MAC.

Two-key 3DES (K1 = K3) is expanded to 24 bytes before reaching `cryptography`,
which deprecates 16- and 8-byte TripleDES keys but computes the same thing.
"""
from __future__ import annotations

import hashlib

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from drivers.emrtd.apdu import ChipError

BLOCK = 8
ZERO_IV = bytes(BLOCK)
ENC_COUNTER = 1
MAC_COUNTER = 2


class PaddingError(ChipError):
    """Decrypted data does not end in ISO/IEC 9797-1 method 2 padding."""


def adjust_parity(key: bytes) -> bytes:
    """Set each byte's lowest bit so the byte has odd parity (DES key convention)."""
    return bytes((b & 0xFE) | ((bin(b >> 1).count("1") + 1) & 1) for b in key)


def derive_key(seed: bytes, counter: int) -> bytes:
    """ICAO 9303-11 §9.7.1 KDF for 3DES: first 16 bytes of SHA-1(seed || counter), parity adjusted."""
    return adjust_parity(hashlib.sha1(seed + counter.to_bytes(4, "big")).digest()[:16])


def pad(data: bytes) -> bytes:
    """ISO/IEC 9797-1 padding method 2: 0x80 then zeros up to a block boundary."""
    return data + b"\x80" + bytes(-(len(data) + 1) % BLOCK)


def unpad(data: bytes) -> bytes:
    end = data.rstrip(b"\x00")
    if not end or end[-1] != 0x80 or len(data) - len(end) >= BLOCK:
        raise PaddingError("decrypted data has no 0x80 padding marker")
    return end[:-1]


def _tdes(key16: bytes) -> TripleDES:
    return TripleDES(key16 + key16[:8])


def encrypt(key16: bytes, data: bytes, iv: bytes = ZERO_IV) -> bytes:
    """3DES-CBC encryption of block-aligned data."""
    enc = Cipher(_tdes(key16), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def decrypt(key16: bytes, data: bytes, iv: bytes = ZERO_IV) -> bytes:
    if len(data) % BLOCK:
        raise PaddingError(f"cryptogram of {len(data)} bytes is not a multiple of {BLOCK}")
    dec = Cipher(_tdes(key16), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def retail_mac(key16: bytes, padded: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 over already padded data.

    Single-DES CBC with Ka over every block, then DES^-1 with Kb and DES with Ka
    on the last chained block, which is 3DES-EDE(Ka, Kb, Ka) of that block.
    """
    if not padded or len(padded) % BLOCK:
        raise PaddingError(f"MAC input of {len(padded)} bytes is not block aligned")
    ka = key16[:8]
    chain = ZERO_IV
    if len(padded) > BLOCK:
        des = Cipher(TripleDES(ka * 3), modes.CBC(ZERO_IV)).encryptor()
        chain = (des.update(padded[:-BLOCK]) + des.finalize())[-BLOCK:]
    return encrypt(key16, padded[-BLOCK:], chain)
