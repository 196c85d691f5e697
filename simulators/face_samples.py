"""The real labelled face photos the pinned registry packages ship (see biometrics.assets).

Eleven images of nine people: three independent photos of person A
(face_recognition's obama*.jpg), one of person B (biden.jpg), one aligned face of
person C (insightface's Tom_Hanks_54745.png) and six different people in one group
photo (insightface's t1.jpg).  That gives 3 genuine pairs and 52 impostor pairs:
enough to check the pipeline, far too few to measure an FMR of 0.1 %.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biometrics import assets
from biometrics.face.detector import FaceDetector, read_image

SINGLE = (("A", "faces/obama.jpg"), ("A", "faces/obama2.jpg"), ("A", "faces/obama3.jpg"),
          ("B", "faces/biden.jpg"), ("C", "faces/aligned_112.png"))
GROUP = "faces/group_t1.jpg"


@dataclass(frozen=True)
class Sample:
    identity: str
    source: str
    image: np.ndarray        # the whole photo (BGR)
    face_index: int          # which detected face, largest first


def labelled(detector: FaceDetector | None = None) -> list[Sample]:
    detector = detector or FaceDetector()
    out = [Sample(identity, name, read_image(assets.path(name)), 0) for identity, name in SINGLE]
    group = read_image(assets.path(GROUP))
    for i, _ in enumerate(detector.detect(group)):
        out.append(Sample(f"G{i}", GROUP, group, i))
    return out


def pairs(samples: list[Sample]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Genuine and impostor index pairs (every unordered pair of distinct images)."""
    genuine, impostor = [], []
    for i in range(len(samples)):
        for j in range(i + 1, len(samples)):
            (genuine if samples[i].identity == samples[j].identity else impostor).append((i, j))
    return genuine, impostor
