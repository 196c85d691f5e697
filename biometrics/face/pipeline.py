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
from biometrics.face.detector import Face, FaceDetector, FaceTracker, as_bgr
from biometrics.face.embedder import FaceEmbedder
from biometrics.privacy import BiometricSample


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

    def process(self, frame: np.ndarray, embed_always: bool = False, tracker: FaceTracker | None = None) -> FrameResult:
        return self._run(as_bgr(frame), embed_always, keep=lambda buf: buf, tracker=tracker)

    def process_sample(self, sample: BiometricSample, embed_always: bool = False,
                       tracker: FaceTracker | None = None) -> FrameResult:
        """Like `process`, for a frame held in a wiped-on-exit sample: the aligned crop and the
        embedding are registered with the sample, so leaving its `with` block zeroes them too.
        (Temporaries inside OpenCV and onnxruntime are freed, not zeroed.) With a `tracker` (a
        camera stream, frame after frame), faces are found by it instead of a whole-frame search."""
        return self._run(as_bgr(sample.array), embed_always, keep=sample.scratch, tracker=tracker)

    def tracker(self) -> FaceTracker:
        """A face tracker for one camera stream (`process_sample(..., tracker=)`)."""
        return FaceTracker()

    def _run(self, frame: np.ndarray, embed_always: bool, keep, tracker: FaceTracker | None = None) -> FrameResult:
        faces = (tracker or self.detector).detect(frame)
        report = quality.assess(frame, faces, self.limits)
        embedding = None
        if faces and (report.ok or embed_always):
            crop = keep(align(frame, faces[0].landmarks))
            embedding = keep(self.embedder.embed(crop))
        return FrameResult(faces, report, embedding)


def best_embeddings(results: list[FrameResult], n: int) -> list[np.ndarray]:
    """The embeddings of the n frames with the best quality score, among frames that passed."""
    usable = [r for r in results if r.embedding is not None and r.quality.ok]
    usable.sort(key=lambda r: r.quality.score, reverse=True)
    return [r.embedding for r in usable[:n]]
