"""SFace 2021dec int8bq embeddings through onnxruntime: 128-d, L2-normalised.

`session.disable_quant_qdq=1` lets onnxruntime run the block-quantised weights as
plain float kernels with the same scores: 49 -> 20 ms per face here (19 -> 11 ms in REFERENCE.md).
Intra-op threads do not spin while idle: the gate process has other threads (camera,
drivers, reactor) that a spinning pool would starve on two cores.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from biometrics import assets
from biometrics.face.align import SIZE

DIM = 128


def session(model: Path, threads: int = 2) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


class FaceEmbedder:
    def __init__(self, model: Path | None = None, threads: int = 2):
        self._session = session(model or assets.path("sface"), threads)
        self._input = self._session.get_inputs()[0].name

    @staticmethod
    def blob(aligned: np.ndarray) -> np.ndarray:
        """NCHW float32 RGB 0..255, as OpenCV's FaceRecognizerSF feeds the model."""
        if aligned.shape != (SIZE, SIZE, 3):
            raise ValueError(f"expected an aligned {SIZE}x{SIZE} BGR crop, got {aligned.shape}")
        return aligned[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)

    def infer(self, blob: np.ndarray) -> np.ndarray:
        """Raw model output for a prepared blob (what the benchmark calls 'bare inference')."""
        return self._session.run(None, {self._input: blob})[0]

    def embed(self, aligned: np.ndarray) -> np.ndarray:
        vector = self.infer(self.blob(aligned))[0].astype(np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector
