"""Cipher primitives of ICAO 9303 Part 11: key derivation, ISO 9797-1 padding, 3DES and retail MAC
(BAC, PACE with 3DES), AES-CBC and AES-CMAC (PACE and chip authentication with AES).

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
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from drivers.emrtd.apdu import ChipError

BLOCK = 8
ZERO_IV = bytes(BLOCK)
AES_BLOCK = 16
ENC_COUNTER = 1
MAC_COUNTER = 2
PI_COUNTER = 3  # PACE: the password key K_pi

#: cipher name -> (key length in bytes, KDF hash) (ICAO 9303-11 §9.7.1)
CIPHERS = {"3DES": (16, "sha1"), "AES-128": (16, "sha1"), "AES-192": (24, "sha256"), "AES-256": (32, "sha256")}


class PaddingError(ChipError):
    """Decrypted data does not end in ISO/IEC 9797-1 method 2 padding."""


def adjust_parity(key: bytes) -> bytes:
    """Set each byte's lowest bit so the byte has odd parity (DES key convention)."""
    return bytes((b & 0xFE) | ((bin(b >> 1).count("1") + 1) & 1) for b in key)


def derive_key(seed: bytes, counter: int) -> bytes:
    """ICAO 9303-11 §9.7.1 KDF for 3DES: first 16 bytes of SHA-1(seed || counter), parity adjusted."""
    return adjust_parity(hashlib.sha1(seed + counter.to_bytes(4, "big")).digest()[:16])


def kdf(secret: bytes, counter: int, cipher: str = "3DES") -> bytes:
    """ICAO 9303-11 §9.7.1 KDF for any cipher of `CIPHERS`: SHA-1 for 3DES (parity adjusted) and
    AES-128, SHA-256 for AES-192/256, truncated to the key length."""
    if cipher == "3DES":
        return derive_key(secret, counter)
    try:
        length, hash_name = CIPHERS[cipher]
    except KeyError:
        raise ChipError(f"no key derivation for cipher {cipher!r}") from None
    return hashlib.new(hash_name, secret + counter.to_bytes(4, "big")).digest()[:length]


def pad(data: bytes, block: int = BLOCK) -> bytes:
    """ISO/IEC 9797-1 padding method 2: 0x80 then zeros up to a block boundary."""
    return data + b"\x80" + bytes(-(len(data) + 1) % block)


def unpad(data: bytes, block: int = BLOCK) -> bytes:
    end = data.rstrip(b"\x00")
    if not end or end[-1] != 0x80 or len(data) - len(end) >= block:
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


# --------------------------------------------------------------------------- AES

class Aes:
    """AES for secure messaging (ICAO 9303-11 §9.8.6.2): CBC where each message's IV is
    E(KS_Enc, SSC) (`iv_for`), and the ECB block cipher the IV comes from."""

    def __init__(self, key: bytes):
        if len(key) not in (16, 24, 32):
            raise ChipError(f"AES key of {len(key)} bytes")
        self._algorithm = algorithms.AES(key)
        self._ecb = Cipher(self._algorithm, modes.ECB()).encryptor()

    def iv_for(self, ssc_block: bytes) -> bytes:
        return self._ecb.update(ssc_block)

    def encrypt(self, data: bytes, iv: bytes = bytes(AES_BLOCK)) -> bytes:
        if not data or len(data) % AES_BLOCK:
            raise PaddingError(f"plaintext of {len(data)} bytes is not a whole number of {AES_BLOCK}-byte blocks")
        return Cipher(self._algorithm, modes.CBC(iv)).encryptor().update(data)

    def decrypt(self, data: bytes, iv: bytes = bytes(AES_BLOCK)) -> bytes:
        if not data or len(data) % AES_BLOCK:
            raise PaddingError(f"cryptogram of {len(data)} bytes is not a whole number of {AES_BLOCK}-byte blocks")
        return Cipher(self._algorithm, modes.CBC(iv)).decryptor().update(data)


class AesCmac:
    """AES-CMAC (NIST SP 800-38B) truncated to 8 bytes, over data the caller has already padded
    (secure messaging pads before MACing; PACE tokens are MACed unpadded)."""

    def __init__(self, key: bytes):
        self._proto = CMAC(algorithms.AES(key))

    def mac(self, data: bytes) -> bytes:
        c = self._proto.copy()
        c.update(data)
        return c.finalize()[:8]


def mac8(cipher: str, key: bytes, data: bytes) -> bytes:
    """The 8-byte MAC of a cipher suite over unpadded `data`: retail MAC after padding (3DES),
    AES-CMAC (AES), as PACE's authentication tokens use it."""
    if cipher == "3DES":
        return retail_mac(key, pad(data))
    return AesCmac(key).mac(data)


def encrypt_block(cipher: str, key: bytes, data: bytes) -> bytes:
    """CBC with a zero IV under `cipher` (PACE's encrypted nonce)."""
    return encrypt(key, data) if cipher == "3DES" else Aes(key).encrypt(data)


def decrypt_block(cipher: str, key: bytes, data: bytes) -> bytes:
    return decrypt(key, data) if cipher == "3DES" else Aes(key).decrypt(data)
