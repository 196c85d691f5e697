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


class FaceTracker:
    """Faces in a camera stream, per frame, cheaper than `FaceDetector.detect` on the whole frame.

    Every `full_every`-th frame (and whenever the face is lost) the whole frame is searched at a
    reduced resolution (`frame_side` on its long side, a quarter of a 640x480 frame's pixels), which
    finds every face and its rough place; the main face's box and landmarks are then measured again
    on a full-resolution crop around it (`crop_side` pixels square), so alignment and the liveness
    cues get full-frame precision (a crop of up to `crop_side` is searched at its own resolution:
    downscaling it too loses the eyelid detail the blink check measures). On the frames between,
    only that crop around the last position
    is searched (the face moves a few pixels between frames at 30 fps), and the other faces of the
    last whole-frame search are carried along, so a second person keeps counting for the quality
    checks. One tracker per stream and per capture (`reset`); not thread-safe.
    """

    def __init__(self, model: Path | None = None, *, frame_side: int = 320, crop_side: int = 400,
                 full_every: int = 5, score_threshold: float = 0.6, margin: float = 1.3):
        self.frame = FaceDetector(model, score_threshold=score_threshold, max_side=frame_side)
        self.crop = FaceDetector(model, score_threshold=score_threshold, max_side=crop_side)
        self.crop_side = crop_side
        self.full_every = full_every
        self.margin = margin
        self.reset()

    def reset(self) -> None:
        self._main: Face | None = None
        self._others: list[Face] = []
        self._since_full = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in this frame, the main (largest) one first, in the frame's coordinates."""
        image = as_bgr(image)
        if self._main is not None and self._since_full < self.full_every - 1:
            found = self.refine(image, self._main)
            if found is not None:
                self._main, self._since_full = found, self._since_full + 1
                return [found, *self._others]
        faces = self.frame.detect(image)
        if not faces:
            self.reset()
            return []
        main = self.refine(image, faces[0]) or faces[0]
        self._main, self._others, self._since_full = main, faces[1:], 0
        return [main, *self._others]

    def refine(self, image: np.ndarray, face: Face) -> Face | None:
        """The face near `face`, measured on a full-resolution square crop around it (`margin` box
        sides), searched at `crop_side`; None when no face overlaps the old box enough."""
        x, y, w, h = face.box
        side = self.margin * max(w, h)
        cx, cy = x + w / 2, y + h / 2
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(image.shape[1], cx + side / 2)), int(min(image.shape[0], cy + side / 2))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        found = self.crop.detect(image[y0:y1, x0:x1])
        if not found:
            return None
        best = found[0]
        shifted = Face(box=(best.box[0] + x0, best.box[1] + y0, best.box[2], best.box[3]),
                       landmarks=best.landmarks + np.array([x0, y0], np.float32), score=best.score)
        return shifted if _iou(shifted.box, face.box) >= 0.3 else None


def _iou(a, b) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _plausible(row: np.ndarray, size: tuple[int, int]) -> bool:
    """YuNet can emit non-finite or far-off coordinates on degenerate input (noise, tiny frames)."""
    if not np.all(np.isfinite(row)) or row[2] <= 0 or row[3] <= 0:
        return False
    points = row[4:14].reshape(5, 2)
    w, h = size
    return bool(np.all((points > -np.array([w, h])) & (points < 2 * np.array([w, h]))))
