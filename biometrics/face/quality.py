"""Face image quality for capture guidance, in the spirit of ISO/IEC 29794-5.

Each check measures one thing the traveller can fix, compares it with a limit and,
when it fails, names the guidance message (ids of `core.messages`) the screen shows.
Geometry comes from the five landmarks; appearance measures are taken on a
224x224 crop aligned like the SFace input (twice its resolution), so every
measure sees the same face regions whatever the distance to the camera.

The limits were set on the real photos of `biometrics.assets` and on defects made
from them (blur, exposure, crop, rotation, a second face, painted glasses, fringe and
closed lids, real mask photos worn; see tests/test_face_quality.py).  Eyes-open,
glasses, fringe and mask are heuristics on image regions, not trained classifiers:
they catch the plain cases, and their error rates on real traveller data are unknown.

The overall `score` (0..1) is the worst per-check score; every check scores 0.5
exactly at its limit, so `score >= 0.5` means every check passed (the config's
`thresholds.face_quality_min` defaults to 0.5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from biometrics.face.align import TEMPLATE, align, similarity
from biometrics.face.detector import LEFT_EYE, LEFT_MOUTH, NOSE, RIGHT_EYE, RIGHT_MOUTH, Face, as_bgr

CROP = 224
_K = CROP / 112
TEMPLATE_IED = float(np.linalg.norm(TEMPLATE[1] - TEMPLATE[0]))

# Nose-tip depth in front of the eye/mouth plane, in inter-eye distances (adult
# anthropometry, ~32 mm for ~63 mm), used to turn landmark offsets into angles.
NOSE_DEPTH = 0.5
# Where the nose tip sits between the eye line (0) and the mouth line (1) when frontal:
# the SFace template's own value.
# YuNet's landmarks lean towards an upright face: on photos rotated by 10-40 degrees the eye
# line turns only 0.51-0.62 times as far (measured on obama.jpg), so the measured roll is scaled up.
YUNET_ROLL_GAIN = 1.8
FRONTAL_NOSE_HEIGHT = float((TEMPLATE[2, 1] - TEMPLATE[:2, 1].mean())
                            / (TEMPLATE[3:, 1].mean() - TEMPLATE[:2, 1].mean()))


@dataclass(frozen=True)
class Limits:
    min_inter_eye_px: float = 40.0      # SFace's crop has 35 px: less means upsampling
    max_inter_eye_frac: float = 0.30    # of the frame width: closer and the head leaves the frame
    max_yaw_deg: float = 20.0
    max_pitch_deg: float = 20.0
    max_roll_deg: float = 15.0
    min_sharpness: float = 0.45         # finest-scale share of the face's detail energy
    min_brightness: float = 70.0        # mean grey of the central face, 0..255
    max_brightness: float = 210.0
    min_contrast: float = 18.0          # grey standard deviation of the central face
    max_side_light_ratio: float = 1.8   # brighter half / darker half of the face
    min_eye_openness: float = 0.68      # height of the dark iris band / a fifth of the eye distance
    max_glasses: float = 4.0            # straight edge across the nose bridge / cheek edge energy
    max_lower_face_occlusion: float = 30.0  # Lab distance of cheeks and chin from the nose bridge
    max_fringe: float = 0.5             # hair share of the forehead band above the eyebrows
    max_second_face_ratio: float = 0.35  # inter-eye distance of another face / the main one


@dataclass(frozen=True)
class Check:
    name: str
    value: float
    limit: float
    passed: bool
    message: str     # guidance id shown when the check fails
    score: float


@dataclass(frozen=True)
class QualityReport:
    checks: tuple[Check, ...]
    faces: int

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def ok(self) -> bool:
        return self.faces == 1 and not self.failures

    @property
    def score(self) -> float:
        return min((c.score for c in self.checks), default=0.0)

    @property
    def guidance(self) -> str | None:
        """The one message to show now: the first failure in order of importance."""
        if self.faces == 0:
            return "face.look_at_camera"
        failures = self.failures
        return failures[0].message if failures else None

    def as_dict(self) -> dict:
        return {"ok": self.ok, "score": round(self.score, 3), "faces": self.faces,
                "guidance": self.guidance,
                "checks": [{"name": c.name, "value": round(c.value, 3), "limit": c.limit,
                            "passed": c.passed, "message": c.message} for c in self.checks]}


def _at_least(name, value, limit, message, scale) -> Check:
    return Check(name, float(value), limit, bool(value >= limit), message,
                 float(np.clip(0.5 + 0.5 * (value - limit) / scale, 0.0, 1.0)))


def _at_most(name, value, limit, message, scale) -> Check:
    return Check(name, float(value), limit, bool(value <= limit), message,
                 float(np.clip(0.5 + 0.5 * (limit - value) / scale, 0.0, 1.0)))


@dataclass(frozen=True)
class Pose:
    yaw: float     # degrees, positive when the subject turns to their left (nose to image right)
    pitch: float   # degrees, positive when the subject looks down
    roll: float    # degrees, eye line against the horizontal


def pose(landmarks: np.ndarray) -> Pose:
    """Head pose estimated from five landmarks (a rigid face with the nose in front)."""
    lm = np.asarray(landmarks, np.float64)
    eye_vec = lm[LEFT_EYE] - lm[RIGHT_EYE]
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    # Undo the roll so that the eye line is horizontal, then measure in eye-distance units.
    c, s = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))
    rot = np.array([[c, -s], [s, c]])
    p = (lm - lm[:2].mean(0)) @ rot.T
    ied = max(float(np.linalg.norm(eye_vec)), 1e-6)
    mouth = p[[RIGHT_MOUTH, LEFT_MOUTH]].mean(0)
    # The eye and mouth midpoints lie on the face's vertical midline; the nose tip's
    # sideways offset from that line grows with yaw, its height between them with pitch.
    t = p[NOSE, 1] / mouth[1] if abs(mouth[1]) > 1e-6 else FRONTAL_NOSE_HEIGHT
    midline_x = t * mouth[0]
    yaw = math.degrees(math.atan2((p[NOSE, 0] - midline_x) / ied, NOSE_DEPTH))
    eye_mouth = max(abs(mouth[1]), 1e-6)
    pitch_offset = (p[NOSE, 1] - FRONTAL_NOSE_HEIGHT * mouth[1]) / eye_mouth
    pitch = math.degrees(math.atan2(pitch_offset * eye_mouth / ied, NOSE_DEPTH))
    return Pose(yaw, pitch, roll)


def quality_crop(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """224x224 grey crop aligned like SFace's input, for the appearance measures."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return cv2.warpAffine(grey, similarity(landmarks, TEMPLATE * _K), (CROP, CROP),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _region(crop, x0, y0, x1, y1):
    """A region given in SFace 112-px template coordinates."""
    return crop[int(y0 * _K):int(y1 * _K), int(x0 * _K):int(x1 * _K)].astype(np.float32)


def lower_face_occlusion(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Colour distance between the cheeks and chin and the skin of the nose bridge.

    A mask (or a scarf) puts a different material over the cheeks and chin; the skin of one
    face varies far less.  Lab distance with lightness at half weight, as shading changes
    lightness more than hue.  On the real photos: 1-20; with the insightface mask photos
    worn: 39-70."""
    lab = cv2.cvtColor(align(as_bgr(image), landmarks), cv2.COLOR_BGR2LAB).astype(np.float32)
    bridge = np.median(lab[42:56, 50:62].reshape(-1, 3), axis=0)
    lower = np.median(np.concatenate([lab[66:80, 26:42].reshape(-1, 3), lab[66:80, 70:86].reshape(-1, 3),
                                      lab[96:106, 44:68].reshape(-1, 3)]), axis=0)
    d = lower - bridge
    return float(np.hypot(0.5 * d[0], np.hypot(d[1], d[2])))


@dataclass(frozen=True)
class Appearance:
    sharpness: float
    brightness: float
    contrast: float
    side_light_ratio: float
    eye_openness: float
    eye_edges: float
    glasses: float
    fringe: float


def appearance(crop: np.ndarray) -> Appearance:
    centre = _region(crop, 28, 40, 84, 100)
    brightness = float(centre.mean())
    contrast = float(centre.std())
    # Sharpness: share of the face's detail energy that sits at the finest scale.  A ratio,
    # so it does not depend on exposure or contrast, and does not grow with noise alone.
    fine = cv2.Laplacian(cv2.GaussianBlur(centre, (0, 0), 0.7), cv2.CV_32F)
    coarse = cv2.Laplacian(cv2.GaussianBlur(centre, (0, 0), 2.0), cv2.CV_32F)
    sharpness = float(fine.var() / (fine.var() + 4.0 * coarse.var() + 1e-6))
    halves = (_region(crop, 28, 56, 56, 100).mean(), _region(crop, 56, 56, 84, 100).mean())
    side_light = float(max(halves) / max(min(halves), 1.0))
    # Open eyes: the iris is a dark band about a fifth of the eye distance tall in the eye's
    # vertical profile; a closed lid leaves only a thin lash line.  Measured as the valley's
    # width in units of that iris height: relative to the eye's own contrast, so skin tone and
    # exposure matter little.
    openness = []
    for eye_x in TEMPLATE[:2, 0]:
        eye = _region(crop, eye_x - 6, 42, eye_x + 6, 62)
        profile = np.percentile(eye, 25, axis=1)
        depth = profile.max() - profile.min()
        if depth <= 8:                      # no visible eye structure at all
            openness.append(0.0)
            continue
        # Rows count by how far they reach into the lower half of the valley (a soft count).
        valley = np.clip((profile.min() + depth / 2 - profile) / (depth / 4), 0.0, 1.0)
        openness.append(float(valley.sum()) / (0.2 * TEMPLATE_IED * _K))
    eye_openness = min(openness)
    # Across the eye line, an open eye's iris makes vertical edges (horizontal gradient); a
    # closed lid leaves the horizontal lash line and crease.  Used with eye_openness by the
    # blink challenge, where only the change against the traveller's own baseline counts.
    g = crop.astype(np.float32)
    sy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    gy, gx = np.abs(sy), np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3))
    eye_edges = min(float(_region(gx, x - 7, y - 4, x + 7, y + 4).mean())
                    / (float(_region(gy, x - 7, y - 4, x + 7, y + 4).mean()) + 1.0) for x, y in TEMPLATE[:2])
    # Glasses: the bridge of a frame is one continuous horizontal edge across the nose at eye
    # level, where bare skin is smooth; texture and shading do not line up along a row.
    cheek_edges = max((_region(gy, 30, 66, 46, 80).mean() + _region(gy, 66, 66, 82, 80).mean()) / 2, 2.0)
    rows = np.abs(_region(sy, 52, 44, 60, 56).mean(axis=1))
    glasses = float(rows.max() / cheek_edges)
    # Fringe: the band just above the eyebrows is forehead skin unless hair covers it; hair is
    # darker than the skin of the nose bridge (the one patch that hair, masks and glasses rims
    # rarely cover) and its strands make vertical edges stronger than horizontal ones.
    skin = float(np.median(_region(crop, 50, 42, 62, 56)))
    band = slice(int(22 * _K), int(34 * _K)), slice(int(30 * _K), int(82 * _K))
    forehead = crop[band].astype(np.float32)
    dark = forehead < 0.65 * skin
    stranded = gx[band] > 1.5 * gy[band] + 20
    fringe = float(np.mean(dark | (stranded & (forehead < 0.85 * skin))))
    return Appearance(sharpness, brightness, contrast, side_light, eye_openness, eye_edges, glasses, fringe)


def _overlap(a: Face, b: Face) -> float:
    """Intersection area over the smaller box's area."""
    ax, ay, aw, ah = a.box
    bx, by, bw, bh = b.box
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / max(min(aw * ah, bw * bh), 1e-6)


def assess(image: np.ndarray, faces: list[Face], limits: Limits = Limits()) -> QualityReport:
    """Quality of the largest face in a frame, given every face the detector found."""
    if not faces:
        return QualityReport(checks=(), faces=0)
    face = faces[0]
    height, width = image.shape[:2]
    ied = face.inter_eye_distance
    checks = []

    # Another person: a face of comparable size that barely overlaps the main one (a "face"
    # found on a mask or collar overlapping the main face is a detector artefact).
    others = [f for f in faces[1:]
              if f.inter_eye_distance >= limits.max_second_face_ratio * ied and _overlap(face, f) < 0.2]
    checks.append(_at_most("other_faces", len(others), 0.5, "face.one_person_only", 1.0))

    # The head reaches about 0.6 eye distances beyond the outer landmarks: landmarks nearer
    # the edge than that mean part of the face is cut off (YuNet still finds half faces).
    lm = face.landmarks
    edge = min(lm[:, 0].min(), lm[:, 1].min(), width - lm[:, 0].max(), height - lm[:, 1].max())
    big = ied > 0.5 * limits.max_inter_eye_frac * width
    checks.append(_at_least("margin_to_frame", edge / max(ied, 1e-6), 0.6,
                            "face.move_back" if big else "face.look_at_camera", 0.6))
    checks.append(_at_least("inter_eye_px", ied, limits.min_inter_eye_px, "face.move_closer",
                            limits.min_inter_eye_px / 2))
    checks.append(_at_most("inter_eye_frac", ied / width, limits.max_inter_eye_frac,
                           "face.move_back", 0.1))

    p = pose(face.landmarks)
    checks.append(_at_most("yaw_deg", abs(p.yaw), limits.max_yaw_deg, "face.look_at_camera", 15))
    checks.append(_at_most("pitch_deg", abs(p.pitch), limits.max_pitch_deg, "face.look_at_camera", 15))
    checks.append(_at_most("roll_deg", abs(p.roll) * YUNET_ROLL_GAIN, limits.max_roll_deg,
                           "face.look_at_camera", 15))

    a = appearance(quality_crop(image, face.landmarks))
    checks.append(_at_most("lower_face_occlusion", lower_face_occlusion(image, face.landmarks),
                           limits.max_lower_face_occlusion, "face.remove_hat_or_mask", 20.0))
    checks.append(_at_least("brightness", a.brightness, limits.min_brightness, "face.better_light", 40))
    checks.append(_at_most("brightness_high", a.brightness, limits.max_brightness, "face.better_light", 30))
    checks.append(_at_least("contrast", a.contrast, limits.min_contrast, "face.better_light", 15))
    checks.append(_at_most("side_light", a.side_light_ratio, limits.max_side_light_ratio,
                           "face.better_light", 0.6))
    checks.append(_at_least("sharpness", a.sharpness, limits.min_sharpness, "face.better_light", 0.2))
    checks.append(_at_most("fringe", a.fringe, limits.max_fringe, "face.hair_over_eyebrows", 0.3))
    checks.append(_at_most("glasses", a.glasses, limits.max_glasses, "face.remove_glasses", 2.0))
    checks.append(_at_least("eye_openness", a.eye_openness, limits.min_eye_openness,
                            "face.look_at_camera", 0.4))
    return QualityReport(checks=tuple(checks), faces=len(faces))
