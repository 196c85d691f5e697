"""Presentation-attack detection (ISO/IEC 30107): an active challenge and passive cues.

Active challenge.  The gate asks for one randomly chosen action (turn the head left,
turn it right, or blink) and checks it on the frames captured in the following
window.  A head turn is checked from the five landmarks alone: a real head turning
moves the nose tip sideways against the eye/mouth midline (parallax), while a
printed photo or a screen, however it is tilted, stays a plane, so the yaw measured
from its landmarks barely changes.  The turn must also be gradual (a swap to a
second photo of a turned head makes a jump) and in the asked direction within the
deadline.  A blink is a short dip of an eye signal (two cues of quality.py combined)
below its own baseline and back.  A video replay of the right action at the right time is
not stopped by the challenge: the random choice only makes it a guess.

Passive cues, per frame, on the face region at camera resolution:
* `moire`: how far the strongest high-frequency component of the face's detail stands
  above the typical one (log ratio; JPEG's 8-pixel grid excluded): sub-pixel grids and
  halftone screens alias into regular patterns, skin texture does not.
* `chroma`: skin colourfulness (prints lose saturation).
* `blue_ratio`: blue against red over the face (backlit screens are cooler than skin).

`verify_challenge` and `passive_check` are pure functions over observations: the
gate loop collects frames and calls them; nothing here does I/O or keeps state.
"""
from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from biometrics.face.detector import Face
from biometrics.face.quality import appearance, pose, quality_crop


class Challenge(enum.Enum):
    TURN_LEFT = "face.turn_left"     # the value is the guidance message the screen shows
    TURN_RIGHT = "face.turn_right"
    BLINK = "face.blink"


def choose_challenge(options: Sequence[Challenge] = tuple(Challenge)) -> Challenge:
    """Unpredictable choice (the OS CSPRNG): an attacker cannot prepare the right replay."""
    return secrets.choice(list(options))


@dataclass(frozen=True)
class Observation:
    t: float                      # seconds since the prompt was shown
    landmarks: np.ndarray | None  # (5, 2) of the main face, None when no face was found
    eye_signal: float | None = None

    @classmethod
    def from_frame(cls, t: float, frame: np.ndarray, faces: list[Face]) -> "Observation":
        if not faces:
            return cls(t, None, None)
        lm = faces[0].landmarks
        a = appearance(quality_crop(frame, lm))
        # Geometric mean of two cues that fail differently: the iris band's height (misled by
        # a heavy lash line) and the iris's vertical edges (misled by noise and halftone).
        return cls(t, lm, float(np.sqrt(max(a.eye_openness, 1e-3) * a.eye_edges)))


@dataclass(frozen=True)
class ChallengeRules:
    deadline_s: float = 4.0
    baseline_frames: int = 3
    max_start_yaw: float = 20.0   # must start roughly facing the camera
    min_turn: float = 12.0        # yaw change, degrees as measured from the landmarks
    max_step: float = 10.0        # largest yaw jump between consecutive frames (photo swap)
    blink_drop: float = 0.75      # eye signal below this share of its baseline is a closed eye
    blink_recover: float = 0.88
    max_blink_s: float = 0.6
    max_missing: float = 0.3      # share of frames without a face


@dataclass(frozen=True)
class ChallengeResult:
    challenge: Challenge
    passed: bool
    reason: str                   # "ok" or why it failed
    measure: float                # yaw change (turns) or deepest dip ratio (blink)

    def as_dict(self) -> dict:
        return {"challenge": self.challenge.name.lower(), "passed": self.passed,
                "reason": self.reason, "measure": round(self.measure, 3)}


def verify_challenge(challenge: Challenge, observations: Sequence[Observation],
                     rules: ChallengeRules = ChallengeRules()) -> ChallengeResult:
    window = [o for o in observations if 0.0 <= o.t <= rules.deadline_s]
    seen = [o for o in window if o.landmarks is not None]
    if len(seen) < rules.baseline_frames + 2:
        return ChallengeResult(challenge, False, "too_few_frames", 0.0)
    if 1 - len(seen) / len(window) > rules.max_missing:
        return ChallengeResult(challenge, False, "face_lost", 0.0)
    if challenge is Challenge.BLINK:
        return _verify_blink(seen, rules)
    return _verify_turn(challenge, seen, rules)


def _verify_turn(challenge: Challenge, seen: list[Observation], rules: ChallengeRules) -> ChallengeResult:
    # Subject's left = image right = positive yaw (quality.pose's convention).
    sign = 1.0 if challenge is Challenge.TURN_LEFT else -1.0
    raw = np.array([pose(o.landmarks).yaw for o in seen])
    # A 3-frame median removes single-frame landmark jitter but keeps a step (a photo swap).
    yaws = np.array([np.median(raw[max(0, i - 1):i + 2]) for i in range(len(raw))])
    baseline = float(np.median(yaws[:rules.baseline_frames]))
    if abs(baseline) > rules.max_start_yaw:
        return ChallengeResult(challenge, False, "not_facing_camera", 0.0)
    change = sign * (yaws - baseline)
    turned = float(change.max())
    if float(np.abs(np.diff(yaws)).max()) > rules.max_step:
        return ChallengeResult(challenge, False, "discontinuous", turned)
    if turned < rules.min_turn:
        wrong_way = float((-change).max()) >= rules.min_turn
        return ChallengeResult(challenge, False, "wrong_direction" if wrong_way else "no_turn", turned)
    return ChallengeResult(challenge, True, "ok", turned)


def _verify_blink(seen: list[Observation], rules: ChallengeRules) -> ChallengeResult:
    values = [(o.t, o.eye_signal) for o in seen if o.eye_signal is not None]
    if len(values) < rules.baseline_frames + 2:
        return ChallengeResult(Challenge.BLINK, False, "too_few_frames", 0.0)
    t = np.array([v[0] for v in values])
    openness = np.array([v[1] for v in values])
    # Open eyes are the usual state and a blink is brief, so the open level is the window's upper
    # quartile: the first frames are no baseline when the prompt catches the eyes mid-blink.
    baseline = float(np.percentile(openness, 75))
    if baseline <= 0:
        return ChallengeResult(Challenge.BLINK, False, "eyes_not_visible", 0.0)
    ratio = openness / baseline
    deepest = float(ratio.min())
    closed = ratio < rules.blink_drop
    for start in np.flatnonzero(closed & ~np.r_[False, closed[:-1]]):
        after = np.flatnonzero(~closed[start:])
        if after.size == 0:
            break
        end = start + after[0]
        reopened = np.flatnonzero(ratio[end:] >= rules.blink_recover)
        if t[end - 1] - t[start] <= rules.max_blink_s and reopened.size:
            return ChallengeResult(Challenge.BLINK, True, "ok", deepest)
    return ChallengeResult(Challenge.BLINK, False, "no_blink", deepest)


# ---------------------------------------------------------------- passive cues

@dataclass(frozen=True)
class PassiveCues:
    moire: float
    chroma: float
    blue_ratio: float


@dataclass(frozen=True)
class PassiveLimits:
    """Set on bona fide captures of the training photos only (obama.jpg, obama2.jpg and two
    faces of the group photo: max moire 5.65, min chroma 34.3, max blue ratio 0.60) with
    margins; chroma and blue ratio depend on the camera's white balance and on skin tone,
    so an installation must re-derive them from its own bona fide captures."""
    max_moire: float = 6.2
    min_chroma: float = 27.0
    max_blue_ratio: float = 0.66


def _face_patch(frame: np.ndarray, face: Face) -> np.ndarray:
    ied = face.inter_eye_distance
    cx, cy = face.landmarks[:3].mean(0)
    half = int(max(8, 0.8 * ied))
    x0, y0 = int(cx) - half, int(cy) - half
    h, w = frame.shape[:2]
    x0, y0 = max(0, min(x0, w - 2 * half)), max(0, min(y0, h - 2 * half))
    return frame[y0:y0 + 2 * half, x0:x0 + 2 * half]


def passive_cues(frame: np.ndarray, face: Face) -> PassiveCues:
    patch = _face_patch(frame, face)
    grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY).astype(np.float32)
    detail = grey - cv2.GaussianBlur(grey, (0, 0), 2.0)
    n = detail.shape[0]
    window = np.outer(np.hanning(n), np.hanning(detail.shape[1]))
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(detail * window))) ** 2
    fy, fx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(detail.shape[0])),
                         np.fft.fftshift(np.fft.fftfreq(detail.shape[1])), indexing="ij")
    radius = np.hypot(fx, fy)
    jpeg_grid = (np.abs(fx * 8 - np.round(fx * 8)) < 0.06) | (np.abs(fy * 8 - np.round(fy * 8)) < 0.06)
    band = spectrum[(radius > 0.2) & (radius < 0.5) & ~jpeg_grid]
    moire = float(np.log(band.max() / max(float(np.median(band)), 1e-9)))
    ycrcb = cv2.cvtColor(patch, cv2.COLOR_BGR2YCrCb).astype(np.float32)
    chroma = float(np.hypot(ycrcb[..., 1] - 128, ycrcb[..., 2] - 128).mean())
    b, r = float(patch[..., 0].mean()), float(patch[..., 2].mean())
    return PassiveCues(moire, chroma, b / max(r, 1.0))


@dataclass(frozen=True)
class PassiveResult:
    cues: PassiveCues
    attack: bool
    reasons: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"attack": self.attack, "reasons": list(self.reasons),
                "moire": round(self.cues.moire, 3), "chroma": round(self.cues.chroma, 2),
                "blue_ratio": round(self.cues.blue_ratio, 3)}


def passive_check(frame: np.ndarray, face: Face, limits: PassiveLimits = PassiveLimits()) -> PassiveResult:
    cues = passive_cues(frame, face)
    reasons = []
    if cues.moire > limits.max_moire:
        reasons.append("moire")
    if cues.chroma < limits.min_chroma:
        reasons.append("low_chroma")
    if cues.blue_ratio > limits.max_blue_ratio:
        reasons.append("blue_cast")
    return PassiveResult(cues, bool(reasons), tuple(reasons))
