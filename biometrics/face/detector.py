"""Face detection with five landmarks: OpenCV's YuNet (`cv2.FaceDetectorYN`).

Large images are shrunk so that the longest side is at most `max_side` before
detection (YuNet cost grows with pixels; a 640x480 camera frame goes straight
through) and the results are mapped back to the caller's coordinates.

Not thread-safe (the OpenCV object keeps its input size): one detector per worker.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from biometrics import assets
from core.errors import ParseError

# Landmark order as YuNet emits it; "right"/"left" are the subject's, so the subject's
# right eye appears on the image's left.
RIGHT_EYE, LEFT_EYE, NOSE, RIGHT_MOUTH, LEFT_MOUTH = range(5)


class ImageError(ParseError):
    """The image is empty, unreadable or has an unsupported layout."""


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]   # x, y, w, h in image pixels
    landmarks: np.ndarray                     # (5, 2) float32, order above
    score: float

    @property
    def inter_eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks[LEFT_EYE] - self.landmarks[RIGHT_EYE]))

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Accept grey, BGR or BGRA uint8 arrays; anything else is an ImageError."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
        raise ImageError("expected a non-empty uint8 image array")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise ImageError(f"unsupported image shape {image.shape}")


def decode_image(data, what: str = "image") -> np.ndarray:
    """Decode JPEG, JPEG 2000 (as in DG2), PNG... bytes to BGR; anything else is an ImageError."""
    buf = np.frombuffer(memoryview(data).cast("B"), np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if image is None:
        raise ImageError(f"{what}: not a decodable image ({buf.size} bytes)")
    return image


def read_image(path: str | Path) -> np.ndarray:
    """Read a photo file as BGR; a missing or undecodable file is an ImageError."""
    if not Path(path).is_file():
        raise ImageError(f"{path}: no such file")
    return decode_image(np.fromfile(str(path), np.uint8), str(path))


class FaceDetector:
    def __init__(self, model: Path | None = None, score_threshold: float = 0.6,
                 nms_threshold: float = 0.3, max_side: int = 640):
        self.max_side = max_side
        self._net = cv2.FaceDetectorYN.create(str(model or assets.path("yunet")), "", (320, 320),
                                              score_threshold, nms_threshold, 50)
        self._size: tuple[int, int] | None = None

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces found, largest first."""
        image = as_bgr(image)
        scale = min(1.0, self.max_side / max(image.shape[:2]))
        if scale < 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        size = (image.shape[1], image.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, rows = self._net.detect(image)
        if rows is None:
            return []
        faces = [Face(box=tuple(float(v) / scale for v in r[:4]),
                      landmarks=(r[4:14].reshape(5, 2) / scale).astype(np.float32),
                      score=float(r[14])) for r in rows if _plausible(r, size)]
        return sorted(faces, key=lambda f: f.area, reverse=True)


def _plausible(row: np.ndarray, size: tuple[int, int]) -> bool:
    """YuNet can emit non-finite or far-off coordinates on degenerate input (noise, tiny frames)."""
    if not np.all(np.isfinite(row)) or row[2] <= 0 or row[3] <= 0:
        return False
    points = row[4:14].reshape(5, 2)
    w, h = size
    return bool(np.all((points > -np.array([w, h])) & (points < 2 * np.array([w, h]))))
