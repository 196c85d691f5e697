"""Score fusion: Fisher's combination is calibrated, reduces to one modality, and vetoes impostor-like scores."""
import numpy as np
import pytest

from biometrics import fusion
from biometrics.face import matcher as face_matcher
from biometrics.finger import matcher as finger_matcher


def test_fisher_combination_is_calibrated_under_the_impostor_hypothesis():
    # Impostor p-values of independent modalities are uniform on (0, 1): the fused
    # FMR at any alpha must then be alpha itself.
    rng = np.random.default_rng(5)
    n = 40_000
    fused = np.array([fusion.fisher([a, b]) for a, b in rng.random((n, 2))])
    for alpha in (0.05, 0.01, 0.002):
        assert abs((fused <= alpha).mean() - alpha) < 4 * np.sqrt(alpha * (1 - alpha) / n)
    assert fusion.fisher([0.2, 0.3]) == pytest.approx(tail_of(0.2, 0.3))
    assert fusion.fisher([0.02]) == pytest.approx(0.02)


def tail_of(p1, p2):
    t = -np.log(p1 * p2)
    return float(np.exp(-t) * (1 + t))


def test_one_modality_reduces_to_its_own_threshold():
    fuse = fusion.ScoreFusion(target_fmr=0.001)
    fitted = face_matcher.IMPOSTOR_MEAN + 3.0902 * face_matcher.IMPOSTOR_SD  # z at 1 - 0.001
    assert fuse.decide(face=fitted + 0.01).match
    assert not fuse.decide(face=fitted - 0.01).match
    finger_threshold, _ = finger_matcher.CALIBRATION.threshold(0.001)
    assert fuse.decide(finger=finger_threshold + 0.5).match
    assert not fuse.decide(finger=finger_threshold - 0.5).match


def test_two_moderate_scores_fuse_into_a_match_neither_makes_alone():
    fuse = fusion.ScoreFusion(target_fmr=0.001)
    face = face_matcher.IMPOSTOR_MEAN + 2.5758 * face_matcher.IMPOSTOR_SD   # p = 0.005
    finger, _ = finger_matcher.CALIBRATION.threshold(0.005)
    assert not fuse.decide(face=face).match and not fuse.decide(finger=finger).match
    both = fuse.decide(face=face, finger=finger)
    assert both.match and both.fused_fmr == pytest.approx(tail_of(0.005, 0.005), rel=0.02)


def test_an_impostor_like_modality_vetoes_a_strong_other():
    fuse = fusion.ScoreFusion(target_fmr=0.001)
    result = fuse.decide(face=face_matcher.IMPOSTOR_MEAN - 0.05, finger=200)
    assert result.fused_fmr < 0.001 and result.vetoed_by == "face" and not result.match


def test_no_score_is_an_error():
    with pytest.raises(ValueError):
        fusion.ScoreFusion().decide()


def test_an_impostor_like_finger_score_vetoes_a_strong_face():
    result = fusion.ScoreFusion(target_fmr=0.001).decide(face=0.9, finger=5)
    assert result.finger_fmr > 0.5 and result.vetoed_by == "finger" and not result.match
