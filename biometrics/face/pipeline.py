"""One frame through the face pipeline: detect -> quality -> align -> embed.

Matching is separate (`matcher.FaceMatcher`) because it runs once per passage over
the best frames.  Frames that fail quality are not embedded unless asked: the
gate shows the guidance and waits for a better frame instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biometrics.face import quality
from biometrics.face.align import align
from biometrics.face.detector import Face, FaceDetector, as_bgr
from biometrics.face.embedder import FaceEmbedder


@dataclass
class FrameResult:
    faces: list[Face]
    quality: quality.QualityReport
    embedding: np.ndarray | None

    @property
    def face(self) -> Face | None:
        return self.faces[0] if self.faces else None


class FacePipeline:
    def __init__(self, detector: FaceDetector | None = None, embedder: FaceEmbedder | None = None,
                 limits: quality.Limits = quality.Limits(), threads: int = 2):
        self.detector = detector or FaceDetector()
        self.embedder = embedder or FaceEmbedder(threads=threads)
        self.limits = limits

    def process(self, frame: np.ndarray, embed_always: bool = False) -> FrameResult:
        frame = as_bgr(frame)
        faces = self.detector.detect(frame)
        report = quality.assess(frame, faces, self.limits)
        embedding = None
        if faces and (report.ok or embed_always):
            embedding = self.embedder.embed(align(frame, faces[0].landmarks))
        return FrameResult(faces, report, embedding)
