"""Presentation-attack detection: challenge logic on synthetic landmark sequences, and the
whole chain on frames synthesised from real photos (prints, screens, rendered head turns)."""
import math

import numpy as np
import pytest

from biometrics import assets
from biometrics.face import pad, quality
from simulators import face_attacks as attacks, pad_trials
from biometrics.face.detector import FaceDetector, read_image
from core import messages

Challenge = pad.Challenge
IED = 70.0
# A rigid five-point head: eyes and mouth corners in one plane, the nose tip in front of it.
HEAD = np.array([[-0.5, 0, 0], [0.5, 0, 0], [0, 0.55, -quality.NOSE_DEPTH], [-0.4, 1.0, 0], [0.4, 1.0, 0]]) * IED
# The same five points printed on a sheet: everything in one plane.
SHEET = HEAD * [1, 1, 0]


def project(points, yaw_deg, noise=0.0, rng=None, centre=(320, 220)):
    """Positive yaw turns the subject to their left, which moves the nose to the image's right."""
    t = math.radians(-yaw_deg)
    rot = np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])
    xy = (points @ rot.T)[:, :2] + centre
    if noise:
        xy = xy + rng.normal(0, noise * IED, xy.shape)
    return xy.astype(np.float32)


def sequence(points, yaws, noise=0.015, seed=0, fps=10.0, openness=None):
    rng = np.random.default_rng(seed)
    return [pad.Observation(i / fps, project(points, y, noise, rng), None if openness is None else openness[i])
            for i, y in enumerate(yaws)]


TURN = [0, 0, 0, 5, 10, 15, 20, 25, 25, 20, 15, 10]


def test_the_challenge_is_random_and_each_has_a_screen_message():
    drawn = {pad.choose_challenge() for _ in range(200)}
    assert drawn == set(Challenge)
    assert pad.choose_challenge([Challenge.BLINK]) is Challenge.BLINK
    for challenge in Challenge:
        assert challenge.value in messages.CATALOGUE


def test_pose_sign_convention_matches_the_challenge():
    assert quality.pose(project(HEAD, 20)).yaw > 15
    assert quality.pose(project(HEAD, -20)).yaw < -15


@pytest.mark.parametrize("seed", range(5))
def test_a_real_head_turning_left_passes(seed):
    result = pad.verify_challenge(Challenge.TURN_LEFT, sequence(HEAD, TURN, seed=seed))
    assert result.passed and result.reason == "ok" and result.measure > 18


def test_a_real_head_turning_right_passes():
    assert pad.verify_challenge(Challenge.TURN_RIGHT, sequence(HEAD, [-y for y in TURN])).passed


def test_turning_the_wrong_way_fails():
    result = pad.verify_challenge(Challenge.TURN_RIGHT, sequence(HEAD, TURN))
    assert not result.passed and result.reason == "wrong_direction"


@pytest.mark.parametrize("seed", range(5))
def test_a_flat_sheet_turned_as_far_does_not_pass(seed):
    result = pad.verify_challenge(Challenge.TURN_LEFT, sequence(SHEET, [1.4 * y for y in TURN], seed=seed))
    assert not result.passed and result.reason == "no_turn" and result.measure < 6


def test_swapping_in_a_photo_of_a_turned_head_is_a_jump():
    observations = sequence(HEAD, [0, 0, 0, 0, 0, 0, 25, 25, 25, 25, 25, 25])
    result = pad.verify_challenge(Challenge.TURN_LEFT, observations)
    assert not result.passed and result.reason == "discontinuous"


def test_starting_turned_away_fails():
    result = pad.verify_challenge(Challenge.TURN_LEFT, sequence(HEAD, [30] * 12))
    assert result.reason == "not_facing_camera"


def test_a_late_turn_after_the_deadline_does_not_count():
    observations = sequence(HEAD, [0] * 45 + [5, 10, 15, 20, 25])          # the turn comes after 4.5 s
    result = pad.verify_challenge(Challenge.TURN_LEFT, observations)
    assert not result.passed and result.reason == "no_turn"


def test_too_few_frames_and_a_lost_face():
    assert pad.verify_challenge(Challenge.TURN_LEFT, sequence(HEAD, [0, 10, 20])).reason == "too_few_frames"
    observations = sequence(HEAD, TURN)
    lost = [pad.Observation(o.t, None if i % 2 else o.landmarks) for i, o in enumerate(observations)]
    assert pad.verify_challenge(Challenge.TURN_LEFT, lost).reason == "face_lost"


def blink(openness):
    return sequence(HEAD, [0] * len(openness), openness=openness)


def test_blink_dip_and_recovery_passes():
    result = pad.verify_challenge(Challenge.BLINK, blink([1.2, 1.1, 1.2, 1.2, 0.4, 0.3, 1.1, 1.2, 1.2, 1.2]))
    assert result.passed and result.measure < 0.3


@pytest.mark.parametrize("openness,reason", [
    ([1.2] * 10, "no_blink"),                                          # a photo never blinks
    ([1.2, 1.1, 1.2, 1.05, 1.0, 1.05, 1.1, 1.2, 1.2, 1.2], "no_blink"),  # squint, not a blink
    ([1.2, 1.2, 1.2] + [0.3] * 7, "no_blink"),                          # eyes stay shut
    ([1.2, 1.2, 1.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 1.2], "no_blink"),  # 0.8 s: too long
    ([0.0] * 10, "eyes_not_visible"),
])
def test_what_is_not_a_blink(openness, reason):
    result = pad.verify_challenge(Challenge.BLINK, blink(openness))
    assert not result.passed and result.reason == reason


# ------------------------------------------------- on frames synthesised from real photos

@pytest.fixture(scope="module")
def detector():
    assets.fetch()
    return FaceDetector()


@pytest.fixture(scope="module")
def frontal(detector):
    out = {}
    for name in ("faces/obama.jpg", "faces/biden.jpg"):
        image = read_image(assets.path(name))
        out[name] = (image, detector.detect(image)[0].landmarks)
    return out


def test_rendered_head_turn_moves_the_measured_yaw_and_a_turned_print_does_not(detector, frontal):
    image, lm = frontal["faces/obama.jpg"]
    framed, flm = attacks.frame_around(image, lm)
    yaw = lambda frame: quality.pose(detector.detect(frame)[0].landmarks).yaw  # noqa: E731
    base = yaw(framed)
    assert yaw(attacks.head_turn(framed, flm, 20)) - base > 12
    assert yaw(attacks.head_turn(framed, flm, -20)) - base < -12
    assert abs(yaw(attacks.flat_turn(framed, 30)) - base) < 10
    assert abs(yaw(attacks.flat_turn(framed, -30)) - base) < 10


def test_challenge_trials_on_synthesised_frames(detector, frontal):
    faces = [frontal["faces/obama.jpg"]]
    tallies = pad_trials.challenge_trials(detector, faces, challenges=(Challenge.TURN_LEFT,))
    assert tallies[("turn", "bona_fide")].accepted == 1
    for kind in ("print", "screen", "print_swap"):
        assert tallies[("turn", kind)].accepted == 0, (kind, tallies[("turn", kind)].reasons)


def test_blink_trial_on_synthesised_frames(detector, frontal):
    tallies = pad_trials.challenge_trials(detector, [frontal["faces/biden.jpg"]], kinds=("bona_fide", "print"),
                                          challenges=(Challenge.BLINK,))
    assert tallies[("blink", "bona_fide")].accepted == 1
    assert tallies[("blink", "print")].accepted == 0


def test_passive_cues_accept_bona_fide_captures_and_reject_prints_and_screens(detector, frontal):
    tallies = pad_trials.passive_trials(detector, list(frontal.values()), per_face=2)
    assert tallies["bona_fide"].total == tallies["print"].total == tallies["screen"].total == 4
    assert tallies["bona_fide"].accepted == 4, tallies["bona_fide"].reasons
    assert tallies["print"].accepted == 0 and tallies["screen"].accepted == 0


def test_passive_result_is_json_ready(detector, frontal):
    image, lm = frontal["faces/obama.jpg"]
    framed, _ = attacks.frame_around(image, lm)
    frame = attacks.capture(framed, np.random.default_rng(0))
    d = pad.passive_check(frame, detector.detect(frame)[0]).as_dict()
    assert d["attack"] is False and d["reasons"] == [] and set(d) >= {"moire", "chroma", "blue_ratio"}


def test_camera_simulator_scenes_cross_check(detector, frontal):
    """Scenes synthesised by simulators/camera.py, not by us: the live traveller blinks and
    passes, the print never blinks, the tablet replay blinks but its colours give it away."""
    image, _ = frontal["faces/obama.jpg"]
    tallies = pad_trials.camera_sim_trials(detector, [image], starts=(2.0,))
    assert tallies[("both", "bona_fide")].accepted == 1, tallies[("blink", "bona_fide")].reasons
    assert tallies[("blink", "print")].accepted == 0
    assert tallies[("passive", "screen")].accepted == 0
    assert tallies[("both", "print")].accepted == tallies[("both", "screen")].accepted == 0
