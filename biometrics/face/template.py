"""Enrolled face template: one SFace embedding as bytes, for `privacy.TemplateVault`.

Layout: b"SFT1" | 128 little-endian float32 (516 bytes).  The magic names the model,
so a template from another embedder is refused rather than matched meaninglessly.
`encode` writes into a bytearray (wipeable); `decode` reads a view of the caller's
buffer, so decoding a vault's `BiometricSample` leaves nothing behind when it is wiped.
"""
from __future__ import annotations

import numpy as np

from biometrics.face.embedder import DIM
from core.errors import ParseError

MAGIC = b"SFT1"
SIZE = len(MAGIC) + 4 * DIM


class FaceTemplateError(ParseError):
    """Bytes that are not a face template of this model."""


def encode(embedding: np.ndarray) -> bytearray:
    vector = np.asarray(embedding, dtype="<f4")
    if vector.shape != (DIM,) or not np.all(np.isfinite(vector)):
        raise ValueError(f"expected a finite {DIM}-d embedding, got shape {vector.shape}")
    out = bytearray(SIZE)
    out[:len(MAGIC)] = MAGIC
    np.frombuffer(out, "<f4", DIM, len(MAGIC))[:] = vector
    return out


def decode(data) -> np.ndarray:
    """A read-only view of the embedding inside `data` (bytes-like); typed error if malformed."""
    view = memoryview(data).cast("B")
    if len(view) != SIZE:
        raise FaceTemplateError(f"face template: {len(view)} bytes, expected {SIZE}")
    if bytes(view[:len(MAGIC)]) != MAGIC:
        raise FaceTemplateError(f"face template: magic {bytes(view[:len(MAGIC)])!r}, expected {MAGIC!r}")
    vector = np.frombuffer(view, "<f4", DIM, len(MAGIC))
    if not np.all(np.isfinite(vector)) or not 0.5 < float(np.linalg.norm(vector)) < 1.5:
        raise FaceTemplateError("face template: not a normalised embedding")
    return vector
