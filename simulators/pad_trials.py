"""PAD trials on presentations synthesised from the real photos: APCER and BPCER.

ISO/IEC 30107-3: APCER = share of attack presentations accepted as bona fide (per
attack type), BPCER = share of bona fide presentations rejected.  Every
presentation here is synthesised by `attacks.py` from the few real photos the
registry packages ship, so the sample sizes are small and the attacks are our own
models; the figures show the mechanisms work as designed, not field performance.
Used by tests/test_face_pad.py and bench/biometrics/face.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from biometrics.face import pad
from simulators import face_attacks as attacks
from biometrics.face.detector import FaceDetector

FPS = 10.0


@dataclass
class Tally:
    accepted: int = 0
    total: int = 0
    reasons: dict = field(default_factory=dict)

    def add(self, accepted: bool, reason: str) -> None:
        self.total += 1
        self.accepted += int(accepted)
        self.reasons[reason] = self.reasons.get(reason, 0) + 1

    @property
    def rate_accepted(self) -> float:
        return self.accepted / self.total if self.total else float("nan")


def _observe(detector: FaceDetector, frames: list[np.ndarray]) -> list[pad.Observation]:
    return [pad.Observation.from_frame(i / FPS, f, detector.detect(f)) for i, f in enumerate(frames)]


def _yaw_path(peak: float) -> list[float]:
    """Still for three frames, turn to the peak in half a second, start back (1.2 s at 10 fps)."""
    return [peak * f for f in (0, 0, 0, 0.2, 0.4, 0.6, 0.8, 1, 1, 0.8, 0.6, 0.4)]


def turn_frames(framed, landmarks, challenge, kind, rng) -> list[np.ndarray]:
    """Frames of one response to a turn challenge by a bona fide face or an attack."""
    sign = 1.0 if challenge is pad.Challenge.TURN_LEFT else -1.0
    path = [sign * y for y in _yaw_path(25.0)]
    if kind == "bona_fide":
        return [attacks.capture(attacks.head_turn(framed, landmarks, y), rng) for y in path]
    medium = attacks.print_attack if kind == "print" else attacks.screen_replay
    if kind.endswith("swap"):
        # A second photo of the same head already turned, swapped in halfway.
        turned = attacks.head_turn(framed, landmarks, sign * 25.0)
        scenes = [framed] * 6 + [turned] * 6
        medium = attacks.print_attack
    else:
        # The attacker turns the print or the screen itself, as far as the traveller would turn.
        scenes = [attacks.flat_turn(framed, 1.4 * y) for y in path]
    return [medium(scene, rng) for scene in scenes]


def blink_frames(framed, landmarks, kind, rng) -> list[np.ndarray]:
    closed = attacks.close_eyes(framed, landmarks)
    scenes = [framed] * 4 + [closed] * 2 + [framed] * 4
    if kind == "bona_fide":
        return [attacks.capture(s, rng) for s in scenes]
    medium = attacks.print_attack if kind == "print" else attacks.screen_replay
    return [medium(framed, rng) for _ in scenes]


def challenge_trials(detector: FaceDetector, faces, kinds=("bona_fide", "print", "screen", "print_swap"),
                     challenges=(pad.Challenge.TURN_LEFT, pad.Challenge.TURN_RIGHT), seed: int = 5):
    """faces: (image, landmarks) pairs of frontal real photos.  Returns {(challenge kind, presentation kind): Tally}."""
    rng = np.random.default_rng(seed)
    tallies: dict[tuple[str, str], Tally] = {}
    for image, lm in faces:
        framed, flm = attacks.frame_around(image, lm)
        for challenge in challenges:
            for kind in kinds:
                if challenge is pad.Challenge.BLINK:
                    if kind.endswith("swap"):
                        continue
                    frames = blink_frames(framed, flm, kind, rng)
                else:
                    frames = turn_frames(framed, flm, challenge, kind, rng)
                result = pad.verify_challenge(challenge, _observe(detector, frames))
                group = "blink" if challenge is pad.Challenge.BLINK else "turn"
                tallies.setdefault((group, kind), Tally()).add(result.passed, result.reason)
    return tallies


def passive_trials(detector: FaceDetector, faces, per_face: int = 4, seed: int = 11,
                   limits: pad.PassiveLimits = pad.PassiveLimits()):
    """Single-frame passive check on bona fide captures, prints and screen replays."""
    rng = np.random.default_rng(seed)
    tallies = {k: Tally() for k in ("bona_fide", "print", "screen")}
    makers = {"bona_fide": attacks.capture, "print": attacks.print_attack, "screen": attacks.screen_replay}
    for image, lm in faces:
        framed, _ = attacks.frame_around(image, lm)
        for _ in range(per_face):
            for kind, make in makers.items():
                frame = make(framed, rng)
                found = detector.detect(frame)
                if not found:
                    tallies[kind].add(False, "no_face")
                    continue
                result = pad.passive_check(frame, found[0], limits)
                tallies[kind].add(not result.attack, ",".join(result.reasons) or "ok")
    return tallies


def camera_sim_trials(detector: FaceDetector, images, starts=(0.5, 2.0, 5.0), fps: float = 15.0):
    """Blink challenge and passive cues on the camera simulator's scenes (simulators/camera.py).

    Those scenes are synthesised by other code than ours (a live traveller who blinks every
    3.3 s, a print on paper, a tablet replaying the traveller): a cross-check on attacks we
    did not design the cues around.  A presentation is accepted when the blink challenge
    passes and at most half of its frames look like an attack to the passive cues.
    """
    from simulators.camera import SceneRenderer, load_face

    faces = [load_face(image) for image in images]
    kinds = {"traveller": "bona_fide", "printed_photo": "print", "screen_replay": "screen"}
    tallies = {(check, kind): Tally() for check in ("blink", "passive", "both") for kind in kinds.values()}
    for index in range(len(faces)):
        renderer = SceneRenderer(faces, seed=index)
        for scene, kind in kinds.items():
            for start in starts:
                observations, flagged, seen = [], 0, 0
                for k in range(int(pad.ChallengeRules.deadline_s * fps)):
                    frame = renderer.render(scene, start + k / fps, face=index)
                    found = detector.detect(frame)
                    observations.append(pad.Observation.from_frame(k / fps, frame, found))
                    if found and k % 5 == 0:
                        seen += 1
                        flagged += pad.passive_check(frame, found[0]).attack
                blink = pad.verify_challenge(pad.Challenge.BLINK, observations)
                passive_ok = seen > 0 and flagged * 2 <= seen
                tallies[("blink", kind)].add(blink.passed, blink.reason)
                tallies[("passive", kind)].add(passive_ok, f"{flagged}/{seen} frames flagged")
                tallies[("both", kind)].add(blink.passed and passive_ok, "ok" if blink.passed and passive_ok else "rejected")
    return tallies
