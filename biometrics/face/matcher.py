"""Cosine matching of SFace embeddings: best of N live frames against the references.

References are the DG2 chip photo's embedding and/or an enrolled template; the
score is the highest cosine over every (live frame, reference) pair.  Taking the
best of N frames raises an impostor's chance a little (frames of one face are
strongly correlated, so far less than N-fold); the gate limits N
(`thresholds.face_attempts` and the capture window).

How the threshold is set for a target false-match rate (default 0.1 %):
* The OpenCV Zoo publishes cosine 0.363 as SFace's same/different operating point
  (chosen on LFW, where SFace scores 99.40 %).
* We measure the impostor score distribution on every real photo the pinned
  packages ship (52 impostor pairs, 9 people; `bench/biometrics/face.py`) and fit a
  normal to it; the threshold is the fitted quantile at 1 - FMR.  52 pairs cannot
  observe a 1-in-1000 event, so this extrapolates the tail: it is a floor informed
  by data, not a measurement.
* The threshold used is the larger of the two.  Operators should re-derive it with
  `egate bench biometrics --faces DIR` on a licensed data set of their population.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Mapping, Sequence

import numpy as np

PUBLISHED_THRESHOLD = 0.363
# Impostor cosine scores on the pinned photos (bench/biometrics/face.py; tests recompute them).
IMPOSTOR_MEAN = 0.159
IMPOSTOR_SD = 0.087
IMPOSTOR_PAIRS = 52
DEFAULT_FMR = 0.001


def threshold_for_fmr(fmr: float = DEFAULT_FMR, mean: float = IMPOSTOR_MEAN,
                      sd: float = IMPOSTOR_SD) -> float:
    if not 0.0 < fmr < 1.0:
        raise ValueError(f"target FMR must be in (0, 1), got {fmr}")
    fitted = mean + NormalDist().inv_cdf(1.0 - fmr) * sd
    return round(max(PUBLISHED_THRESHOLD, fitted), 3)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(np.dot(a, b) / (na * nb)) if na > 0 and nb > 0 else 0.0


@dataclass(frozen=True)
class MatchResult:
    score: float
    threshold: float
    matched: bool
    frame: int            # index of the live frame that gave the best score
    reference: str        # name of the reference it matched best
    frames: int

    def as_dict(self) -> dict:
        return {"score": round(self.score, 4), "threshold": self.threshold, "matched": self.matched,
                "frame": self.frame, "reference": self.reference, "frames": self.frames}


class FaceMatcher:
    def __init__(self, fmr: float = DEFAULT_FMR, threshold: float | None = None):
        self.threshold = threshold if threshold is not None else threshold_for_fmr(fmr)

    def verify(self, live: Sequence[np.ndarray], references: Mapping[str, np.ndarray]) -> MatchResult:
        """Best-of-N decision; no live frame or no reference is a non-match, never an error."""
        best = (-1.0, -1, "")
        for i, probe in enumerate(live):
            for name, ref in references.items():
                score = cosine(probe, ref)
                if score > best[0]:
                    best = (score, i, name)
        score, frame, reference = best
        return MatchResult(max(score, -1.0), self.threshold, score >= self.threshold,
                           frame, reference, len(live))
