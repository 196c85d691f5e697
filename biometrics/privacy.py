"""Biometric data protection: samples in wiped memory, templates sealed at rest.

In memory.  A `BiometricSample` owns the buffer that holds one image or template
and every scratch copy made from it (decoded pixels, the encoded image handed to
NBIS, transcoded templates); leaving its `with` block — i.e. once the decision is
made — overwrites all of them with zeros.  Nothing is written to disk on the way.

    with BiometricSample.from_array(frame) as sample:
        decision = matcher.verify(sample, enrolled)
    # sample.raw is all zeros here

What Python cannot wipe, and how we keep it small: `bytes` objects are immutable,
so sample data never travels as `bytes` (readers fill a bytearray, ciphers decrypt
into one); the NBIS library copies its input into Rust memory that it frees (but
does not zero) when the handle is released, which we do right after the match.

At rest.  An enrolled template is sealed with AES-256-GCM under the key file named
by `storage.template_key` (64 hex digits, e.g. `openssl rand -hex 32`).  The
associated data binds the sealed record to the traveller id, so a template copied
to another traveller's row, altered, truncated or opened with another key fails
with `TamperedTemplateError` and never yields plaintext.

Sealed record: b"EGT\\x01" | nonce (12) | ciphertext | tag (16).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.settings import Secret, read_secret
from core.errors import ConfigError, EGateError, ParseError

SEALED_MAGIC = b"EGT\x01"
NONCE_LEN = 12
TAG_LEN = 16


class SampleWipedError(EGateError):
    """A sample was used after its buffers were wiped."""


class SealedTemplateError(ParseError):
    """A sealed template is not in the sealed-record format at all."""


class TamperedTemplateError(EGateError):
    """A sealed template failed authentication: altered, bound to another traveller, or wrong key."""


def _zero(buf) -> None:
    if isinstance(buf, np.ndarray):
        if buf.flags.writeable:
            buf.fill(0)
    elif len(buf):
        np.frombuffer(buf, np.uint8)[:] = 0


class BiometricSample:
    """A biometric image or template in a buffer we own; `wipe()` (or leaving `with`) zeroes it.

    `array` is a numpy view of the buffer (no copy).  `scratch(x)` registers any other
    array/bytearray derived from the sample so it is zeroed at the same time.
    """

    def __init__(self, nbytes: int, *, shape: tuple[int, ...] | None = None,
                 dtype=np.uint8, kind: str = "sample"):
        self.kind = kind
        self.raw = bytearray(nbytes)
        self._shape = shape if shape is not None else (nbytes // np.dtype(dtype).itemsize,)
        self._dtype = np.dtype(dtype)
        self._scratch: list = []
        self.wiped = False

    @classmethod
    def from_array(cls, array: np.ndarray, *, kind: str = "sample") -> "BiometricSample":
        """Copy `array` into an owned buffer and zero the caller's array (it is ours now)."""
        sample = cls(array.nbytes, shape=array.shape, dtype=array.dtype, kind=kind)
        sample.array[...] = array
        _zero(array)
        return sample

    @classmethod
    def from_buffer(cls, data, *, kind: str = "template") -> "BiometricSample":
        """Copy a bytes-like object into an owned buffer (the caller's copy is not touched)."""
        view = memoryview(data).cast("B")
        sample = cls(len(view), kind=kind)
        sample.raw[:] = view
        return sample

    @classmethod
    def read_file(cls, path, *, kind: str = "image file") -> "BiometricSample":
        """Read a file straight into an owned buffer (never through an immutable `bytes`)."""
        path = Path(path)
        size = path.stat().st_size
        sample = cls(size, kind=kind)
        with path.open("rb", buffering=0) as f:
            got = f.readinto(sample.raw)
        if got != size:
            sample.wipe()
            raise EGateError(f"{path}: read {got} of {size} bytes")
        return sample

    @property
    def array(self) -> np.ndarray:
        self._check()
        return np.frombuffer(self.raw, self._dtype).reshape(self._shape)

    @property
    def buffer(self) -> memoryview:
        self._check()
        return memoryview(self.raw)

    def scratch(self, buf):
        """Register a derived buffer (numpy array or bytearray) to be zeroed with the sample."""
        self._check()
        self._scratch.append(buf)
        return buf

    def wipe(self) -> None:
        for buf in self._scratch:
            _zero(buf)
        _zero(self.raw)
        self._scratch.clear()
        self.wiped = True

    def _check(self) -> None:
        if self.wiped:
            raise SampleWipedError(f"{self.kind} was already wiped")

    def __enter__(self) -> "BiometricSample":
        return self

    def __exit__(self, *exc) -> None:
        self.wipe()

    def __del__(self):
        # Safety net only: the decision path wipes explicitly through `with`.
        if not getattr(self, "wiped", True):
            self.wipe()

    def __repr__(self) -> str:
        return f"BiometricSample({self.kind}, {len(self.raw)} bytes{', wiped' if self.wiped else ''})"


# --------------------------------------------------------------- at rest

def load_template_key(path: Path | None) -> Secret:
    """The AES-256 key from the file named by `storage.template_key`: 64 hex digits."""
    if path is None:
        raise ConfigError("(gate config)", "storage.template_key", "nothing",
                          "a path to a key file (openssl rand -hex 32 > template.key)")
    text = read_secret(path).reveal()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigError(path, "storage.template_key",
                          f"a file of {len(text)} bytes that is not 64 hex digits", "64 hex digits (256-bit key)")
    return Secret(key)


def _aad(traveller_id: str) -> bytes:
    if not traveller_id:
        raise ValueError("traveller id must not be empty")
    return SEALED_MAGIC + traveller_id.encode("utf-8")


class TemplateVault:
    """Seal and open enrolled templates with AES-256-GCM bound to the traveller id."""

    def __init__(self, key: Secret):
        if len(key.reveal()) != 32:
            raise ValueError("template key must be 32 bytes")
        self._key = key

    @classmethod
    def from_key_file(cls, path: Path | None) -> "TemplateVault":
        return cls(load_template_key(path))

    def seal(self, template, traveller_id: str) -> bytes:
        """Encrypt a template (any bytes-like) for `traveller_id`; the result is safe to store."""
        nonce = os.urandom(NONCE_LEN)
        sealed = AESGCM(self._key.reveal()).encrypt(nonce, bytes(memoryview(template)), _aad(traveller_id))
        return SEALED_MAGIC + nonce + sealed

    def open(self, sealed, traveller_id: str) -> BiometricSample:
        """Authenticate and decrypt into a wiped-on-exit sample; raise on any tampering."""
        data = memoryview(sealed)
        if len(data) < len(SEALED_MAGIC) + NONCE_LEN + TAG_LEN or bytes(data[:4]) != SEALED_MAGIC:
            raise SealedTemplateError(f"sealed template: {len(data)} bytes, not a sealed record")
        nonce = bytes(data[4:4 + NONCE_LEN])
        body, tag = data[4 + NONCE_LEN:-TAG_LEN], bytes(data[-TAG_LEN:])
        decryptor = Cipher(algorithms.AES(self._key.reveal()), modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(_aad(traveller_id))
        sample = BiometricSample(len(body), kind="template")
        # Decrypt into our own buffer; update_into needs block_size - 1 bytes of headroom.
        out = sample.scratch(bytearray(len(body) + 15))
        try:
            n = decryptor.update_into(body, out)
            decryptor.finalize()
        except InvalidTag:
            sample.wipe()
            raise TamperedTemplateError(
                f"sealed template for traveller {traveller_id!r} failed authentication") from None
        sample.raw[:] = memoryview(out)[:n]
        return sample
