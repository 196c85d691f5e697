"""Face + fingerprint score fusion with the decision at a target false-match rate.

Each matcher's score is first turned into its impostor tail probability
p = P(impostor score >= s), the false-match rate one would accept by putting the
threshold at s:

* face: SFace cosine; impostor scores modelled as normal with the mean and SD
  measured by the face matcher (`biometrics.face.matcher.IMPOSTOR_MEAN/SD`);
* finger: bozorth3 score; impostor tail from the synthetic calibration table
  (`biometrics.finger.matcher.CALIBRATION`, log-linear between and past knots).

The p-values are combined with Fisher's method: T = -2 (ln p_face + ln p_finger)
follows a chi-square law with 4 degrees of freedom when both samples come from
an impostor and the two modalities are independent (different traits, different
sensors), so P(chi2_4 >= T) = p1 p2 (1 - ln(p1 p2)) is the fused FMR and the
traveller matches when it is <= the target FMR.  With one modality present this
reduces to that modality's own threshold.

Veto: a modality whose score is at or below its impostor median (p >= 0.5) vetoes
the fused match, so one strong modality cannot carry a sample that looks like a
typical impostor in the other (the sent-to-an-officer outcome is the safe one).

Limits, stated plainly: both tails are extrapolated beyond the data that set them
(52 real face impostor pairs; synthetic fingerprints), and best-of-N face frames
raise the face impostor chance somewhat; fused FMRs far below 1e-4 are model
output, not measurements.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from biometrics.face import matcher as face_matcher
from biometrics.finger import matcher as finger_matcher

P_FLOOR = 1e-15         # below this the tail models say nothing meaningful
VETO_P = 0.5


@dataclass(frozen=True)
class NormalTail:
    """Impostor scores ~ N(mean, sd): P(score >= s)."""
    mean: float
    sd: float

    def fmr(self, score: float) -> float:
        return 1.0 - NormalDist(self.mean, self.sd).cdf(score)


FACE_TAIL = NormalTail(face_matcher.IMPOSTOR_MEAN, face_matcher.IMPOSTOR_SD)
FINGER_TAIL = finger_matcher.CALIBRATION


def fisher(p_values: list[float]) -> float:
    """P(chi2 with 2k dof >= -2 sum ln p): combined tail probability of k independent p-values."""
    if not p_values:
        raise ValueError("no score to fuse")
    ps = [min(1.0, max(P_FLOOR, p)) for p in p_values]
    half_t = -sum(math.log(p) for p in ps)
    return min(1.0, math.exp(-half_t) * sum(half_t ** j / math.factorial(j) for j in range(len(ps))))


@dataclass(frozen=True)
class FusionResult:
    face_score: float | None
    finger_score: float | None
    face_fmr: float | None
    finger_fmr: float | None
    fused_fmr: float
    target_fmr: float
    vetoed_by: str | None
    match: bool

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class ScoreFusion:
    def __init__(self, target_fmr: float = 0.001, face_tail=FACE_TAIL, finger_tail=FINGER_TAIL):
        if not 0 < target_fmr < 1:
            raise ValueError(f"target FMR must be in (0, 1), got {target_fmr}")
        self.target_fmr = target_fmr
        self.face_tail = face_tail
        self.finger_tail = finger_tail

    def decide(self, face: float | None = None, finger: float | None = None) -> FusionResult:
        """Fuse whichever scores are present (None = modality absent)."""
        p_face = self.face_tail.fmr(face) if face is not None else None
        p_finger = self.finger_tail.fmr(finger) if finger is not None else None
        present = {k: p for k, p in (("face", p_face), ("finger", p_finger)) if p is not None}
        fused = fisher(list(present.values()))
        vetoed_by = next((k for k, p in present.items() if p >= VETO_P), None)
        return FusionResult(face_score=face, finger_score=finger, face_fmr=p_face, finger_fmr=p_finger,
                            fused_fmr=fused, target_fmr=self.target_fmr, vetoed_by=vetoed_by,
                            match=fused <= self.target_fmr and vetoed_by is None)
