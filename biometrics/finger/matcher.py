"""bozorth3 matching of ISO/IEC 19794-2 templates, decision at a target false-match rate.

Scores are NIST bozorth3 scores (integers, higher = more similar).  Both sides of a
comparison are our `iso19794_2.Template`s; they reach bozorth3 through nbis-py's
template loader, transcoded by `nbis_variant.record` into a buffer that is wiped
right after loading.

Threshold.  `CALIBRATION` maps false-match rates to bozorth3 scores: the impostor
tail measured by bench/biometrics/finger.py (the same scoring code as `egate bench
biometrics --fingers`) on synthetic prints from simulators.fingerprint_synth; see
docs/biometrics.md "Fingerprint" for the command, the sample size and the table.
Between knots the tail is interpolated linearly in log(FMR); below the smallest
calibrated FMR it is extrapolated from the last two knots and flagged as such.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import nbis

from biometrics.finger import iso19794_2 as iso, nbis_variant
from biometrics.finger.extract import Extraction, Extractor
from biometrics.finger.quality import QualityReport, assess
from biometrics.privacy import BiometricSample
from core.errors import EGateError


class MatchError(EGateError):
    """A template cannot be compared (no finger view, or the matcher refused it)."""


@dataclass(frozen=True)
class Calibration:
    """Impostor-score tail: score at which the empirical FMR is `fmr` (descending fmr)."""
    knots: tuple[tuple[float, float], ...]   # (fmr, score)
    impostor_comparisons: int
    genuine_comparisons: int
    source: str

    def threshold(self, fmr: float) -> tuple[float, bool]:
        """Score threshold for a target FMR, and whether it was extrapolated past the data."""
        if not 0 < fmr < 1:
            raise ValueError(f"target FMR must be in (0, 1), got {fmr}")
        k = self.knots
        if fmr >= k[0][0]:
            return k[0][1], False
        for (f_hi, s_lo), (f_lo, s_hi) in zip(k, k[1:]):
            if f_lo <= fmr <= f_hi:
                t = (math.log(fmr) - math.log(f_hi)) / (math.log(f_lo) - math.log(f_hi))
                return s_lo + t * (s_hi - s_lo), False
        (f_hi, s_lo), (f_lo, s_hi) = k[-2], k[-1]
        slope = (s_hi - s_lo) / (math.log(f_lo) - math.log(f_hi))
        return s_hi + slope * (math.log(fmr) - math.log(f_lo)), True

    def fmr(self, score: float) -> float:
        """Estimated impostor tail probability P(impostor score >= score)."""
        k = self.knots
        if score <= k[0][1]:
            return k[0][0]
        for (f_hi, s_lo), (f_lo, s_hi) in zip(k, k[1:]):
            if s_lo <= score <= s_hi:
                t = (score - s_lo) / (s_hi - s_lo) if s_hi > s_lo else 1.0
                return math.exp(math.log(f_hi) + t * (math.log(f_lo) - math.log(f_hi)))
        (f_hi, s_lo), (f_lo, s_hi) = k[-2], k[-1]
        per_point = (math.log(f_lo) - math.log(f_hi)) / (s_hi - s_lo)
        return math.exp(math.log(f_lo) + per_point * (score - s_hi))


# Impostor tail of bozorth3 on synthetic prints, measured 2026-11-26 with
#   .venv/bin/python -m bench.biometrics.finger --only accuracy --fingers 200 --impressions 3
# (simulators.fingerprint_synth seed 2026: 600 impressions, every cross-finger pair = 179,100
# impostor comparisons, max impostor score 52).  Each knot is the lowest threshold whose
# empirical FMR is <= the target; 1e-4 is supported by the sample (rule of three: n >= 30,000).
# bozorth3 scores are never negative, so P(score >= 0) = 1 anchors the low end (fusion reads
# the whole tail: a score near the impostor median must give p near 0.5, not 0.1).
CALIBRATION = Calibration(
    knots=((1.0, 0.0), (0.5, 10.0), (0.1, 18.0), (0.01, 28.0), (0.001, 36.0), (0.0001, 44.0)),
    impostor_comparisons=179_100, genuine_comparisons=600,
    source="bench.biometrics.finger --fingers 200 --impressions 3 --seed 2026 (synthetic)")


@dataclass(frozen=True)
class MatchResult:
    score: int
    threshold: float
    target_fmr: float
    match: bool
    estimated_fmr: float          # impostor tail probability of this score
    extrapolated: bool            # threshold lies beyond the calibrated data


@dataclass(frozen=True, eq=False)
class Prepared:
    """A template loaded into bozorth3; the library's copy lives as long as this object."""
    handle: object


class Matcher:
    """bozorth3 with a threshold set from a target FMR (one instance per thread)."""

    def __init__(self, target_fmr: float = 0.001, calibration: Calibration = CALIBRATION):
        self.target_fmr = target_fmr
        self.calibration = calibration
        self.threshold, self.extrapolated = calibration.threshold(target_fmr)
        self._nbis = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(
            min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=None))

    def prepare(self, template: iso.Template) -> "Prepared":
        """Load a template into bozorth3 once, for many comparisons (e.g. the enrolled one)."""
        return Prepared(self._load(template))

    def _load(self, template: iso.Template):
        if not template.views:
            raise MatchError("template has no finger view")
        record = nbis_variant.record(template)
        try:
            return self._nbis.load_iso_19794_2_2005(memoryview(record))
        except nbis.NbisError as exc:
            raise MatchError(f"bozorth3 refused the template: {type(exc).__name__}: {exc}") from None
        finally:
            record[:] = bytes(len(record))

    def score(self, probe: "iso.Template | Prepared", reference: "iso.Template | Prepared") -> int:
        a, b = (x.handle if isinstance(x, Prepared) else self._load(x) for x in (probe, reference))
        try:
            return int(a.compare(b))
        finally:
            del a, b  # the library's copies of templates loaded for this call go now

    def compare(self, probe: "iso.Template | Prepared", reference: "iso.Template | Prepared") -> MatchResult:
        s = self.score(probe, reference)
        return MatchResult(score=s, threshold=self.threshold, target_fmr=self.target_fmr,
                           match=s >= self.threshold, estimated_fmr=self.calibration.fmr(s),
                           extrapolated=self.extrapolated)


@dataclass(frozen=True)
class FingerDecision:
    quality: QualityReport
    match: MatchResult | None      # None when the quality gate refused the print

    @property
    def outcome(self) -> str:
        """"match", "no_match", or "retry" (quality gate failed: show quality.guidance)."""
        if self.match is None:
            return "retry"
        return "match" if self.match.match else "no_match"

    def as_dict(self) -> dict:
        return {"outcome": self.outcome, "quality": self.quality.as_dict(),
                "match": None if self.match is None else self.match.__dict__}


class FingerVerifier:
    """Quality gate, then bozorth3 against a reference template (one instance per thread)."""

    def __init__(self, fmr: float = 0.001, nfiq2_min: int = 30):
        self.extractor = Extractor()
        self.matcher = Matcher(fmr)
        self.nfiq2_min = nfiq2_min

    def capture(self, sample: BiometricSample) -> tuple[Extraction, QualityReport]:
        extraction = self.extractor.extract(sample)
        return extraction, assess(sample.array, extraction, nfiq2_min=self.nfiq2_min)

    def verify(self, sample: BiometricSample, reference: "iso.Template | Prepared") -> FingerDecision:
        """Decide on a live print held in `sample`; the caller wipes the sample afterwards.

        Pass `self.matcher.prepare(enrolled)` when several attempts use the same reference.
        """
        extraction, report = self.capture(sample)
        if not report.passed:
            return FingerDecision(quality=report, match=None)
        return FingerDecision(quality=report, match=self.matcher.compare(extraction.template, reference))
