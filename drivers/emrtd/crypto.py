"""3DES primitives of ICAO 9303 Part 11: key derivation, ISO 9797-1 padding and retail MAC.

Two-key 3DES (K1 = K3) is expanded to 24 bytes before reaching `cryptography`,
which deprecates 16- and 8-byte TripleDES keys but computes the same thing.

`Tdes` and `RetailMac` keep one OpenSSL context per key for the whole session:
secure messaging makes several cipher calls per APDU, and creating a context
costs more than the cipher work on a 231-byte chunk. Every message still
starts from a zero IV: a CBC context continues from the last ciphertext block
C, so the first block is XORed with C on the way in (encryption) or out
(decryption), which cancels the chaining.
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


def _misaligned(data: bytes, what: str) -> PaddingError:
    return PaddingError(f"{what} of {len(data)} bytes is not a whole number of {BLOCK}-byte blocks")


def _xor_first(block_source: bytes, chain: int) -> bytes:
    return (int.from_bytes(block_source[:BLOCK], "big") ^ chain).to_bytes(BLOCK, "big")


class Tdes:
    """Two-key 3DES-CBC with a zero IV for every message."""

    def __init__(self, key16: bytes):
        key = key16 + key16[:8]
        self._enc = Cipher(TripleDES(key), modes.CBC(ZERO_IV)).encryptor()
        self._dec = Cipher(TripleDES(key), modes.CBC(ZERO_IV)).decryptor()
        self._enc_chain = self._dec_chain = 0

    def encrypt(self, data: bytes) -> bytes:
        if not data or len(data) % BLOCK:
            raise _misaligned(data, "plaintext")
        out = self._enc.update(_xor_first(data, self._enc_chain) + data[BLOCK:])
        self._enc_chain = int.from_bytes(out[-BLOCK:], "big")
        return out

    def decrypt(self, data: bytes) -> bytes:
        if not data or len(data) % BLOCK:
            raise _misaligned(data, "cryptogram")
        out = self._dec.update(data)
        first = _xor_first(out, self._dec_chain)
        self._dec_chain = int.from_bytes(data[-BLOCK:], "big")
        return first + out[BLOCK:]


class RetailMac:
    """ISO/IEC 9797-1 MAC algorithm 3 (retail MAC) over already padded data.

    Single-DES CBC with Ka over every block but the last, then 3DES-EDE(Ka, Kb, Ka)
    of the last block XOR the chain, which equals DES^-1 with Kb and DES with Ka
    after the last single-DES step.
    """

    def __init__(self, key16: bytes):
        self._des = Cipher(TripleDES(key16[:8] * 3), modes.CBC(ZERO_IV)).encryptor()
        self._final = Cipher(TripleDES(key16 + key16[:8]), modes.ECB()).encryptor()
        self._chain = 0

    def mac(self, padded: bytes) -> bytes:
        if not padded or len(padded) % BLOCK:
            raise _misaligned(padded, "MAC input")
        chain = 0
        if len(padded) > BLOCK:
            head = padded[:-BLOCK]
            out = self._des.update(_xor_first(head, self._chain) + head[BLOCK:])
            self._chain = chain = int.from_bytes(out[-BLOCK:], "big")
        return self._final.update(_xor_first(padded[-BLOCK:], chain))


def encrypt(key16: bytes, data: bytes) -> bytes:
    """One-off 3DES-CBC encryption (zero IV) of block-aligned data; sessions keep a `Tdes`."""
    if not data or len(data) % BLOCK:
        raise _misaligned(data, "plaintext")
    return Cipher(TripleDES(key16 + key16[:8]), modes.CBC(ZERO_IV)).encryptor().update(data)


def decrypt(key16: bytes, data: bytes) -> bytes:
    if not data or len(data) % BLOCK:
        raise _misaligned(data, "cryptogram")
    return Cipher(TripleDES(key16 + key16[:8]), modes.CBC(ZERO_IV)).decryptor().update(data)


def retail_mac(key16: bytes, padded: bytes) -> bytes:
    """One-off retail MAC; sessions keep a `RetailMac`."""
    return RetailMac(key16).mac(padded)
