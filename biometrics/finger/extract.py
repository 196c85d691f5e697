"""Minutiae extraction with NIST mindtct, NFIQ 2 quality, ISO/IEC 19794-2 output.

NBIS comes from PyPI `nbis-py` (REFERENCE.md §3).  The image travels to NBIS as a
PNG encoded into a scratch buffer of the caller's `BiometricSample`, so it is wiped
with the sample.  The result is our own ISO/IEC 19794-2:2005 `Template` (see
`iso19794_2`), which is also what the matcher consumes: enrolled and live
templates go through one path.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import nbis
import numpy as np

from biometrics.finger import iso19794_2 as iso, nbis_variant
from biometrics.privacy import BiometricSample
from core.errors import EGateError

PPI = 500
# NFIQ 2 native quality measures kept with the score: local clarity (read by the guidance
# rules) and orientation certainty (reported).
NFIQ2_FEATURES = ("LCS_Bin10_Mean", "OCL_Bin10_Mean")


class ExtractionError(EGateError):
    """NBIS could not read the image or find a fingerprint in it."""


@dataclass(frozen=True)
class Nfiq2:
    score: int                        # 0..100, higher is better
    actionable: dict[str, float]      # UniformImage, EmptyImageOrContrastTooLow, ...
    features: dict[str, float]        # the NFIQ2_FEATURES subset
    failed: str = ""                  # why NFIQ 2 could not score the print (then score = 0)


@dataclass(frozen=True)
class Extraction:
    template: iso.Template            # one finger view; its quality is the NFIQ 2 score
    nfiq2: Nfiq2 | None

    @property
    def minutiae(self) -> tuple[iso.Minutia, ...]:
        return self.template.views[0].minutiae


def as_grey(image: np.ndarray) -> np.ndarray:
    """8-bit single-channel view or converted copy of an image array."""
    if image.dtype != np.uint8:
        raise ExtractionError(f"fingerprint image must be 8-bit, got {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    raise ExtractionError(f"fingerprint image has unsupported shape {image.shape}")


class Extractor:
    """One NBIS extractor (not shared between threads)."""

    def __init__(self, *, nfiq2: bool = True, ppi: int = PPI, min_reliability: float = 0.0):
        self.ppi = ppi
        settings = dict(min_quality=min_reliability, get_center=False, check_fingerprint=False, ppi=float(ppi))
        self._mindtct = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(compute_nfiq2=False, **settings))
        # NFIQ 2 refuses some prints (e.g. very faint ones); minutiae then come from mindtct alone.
        self._nbis = (nbis.new_nbis_extractor(nbis.NbisExtractorSettings(compute_nfiq2=True, **settings))
                      if nfiq2 else self._mindtct)
        self._nfiq2 = nfiq2

    def extract(self, sample: BiometricSample, *, finger_position: int = 0) -> Extraction:
        """Minutiae (and NFIQ 2) of the grey image held by `sample`."""
        grey = as_grey(sample.array)
        if grey is not sample.array:
            sample.scratch(grey)
        h, w = grey.shape
        if not (64 <= h < 1 << 14 and 64 <= w < 1 << 14):
            raise ExtractionError(f"fingerprint image {w}x{h} is outside 64..16383 pixels")
        ok, png = cv2.imencode(".png", grey, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise ExtractionError("could not encode the image for NBIS")
        sample.scratch(png)
        nfiq2_failure = ""
        try:
            try:
                handle = self._nbis.extract_minutiae(memoryview(png))
            except nbis.NbisError.Nfiq2ComputeFailed as exc:
                nfiq2_failure = f"NFIQ 2 could not score this print (code {exc})"
                handle = self._mindtct.extract_minutiae(memoryview(png))
        except nbis.NbisError as exc:
            raise ExtractionError(f"NBIS: {type(exc).__name__}: {exc}") from None
        try:
            return self._result(handle, w, h, finger_position, nfiq2_failure)
        finally:
            del handle  # frees the Rust-side copy now, not at some later GC

    def _result(self, handle, width: int, height: int, finger_position: int,
                nfiq2_failure: str) -> Extraction:
        # One FFI call for the whole set (per-minutia accessors cost five calls each).
        minutiae = nbis_variant.minutiae(handle.to_iso_19794_2_2005(), width, height)
        nfiq2 = None
        if nfiq2_failure:
            nfiq2 = Nfiq2(score=0, actionable={}, features={}, failed=nfiq2_failure)
        elif self._nfiq2:
            q = handle.quality()
            features = {v.name: v.value for v in q.features}
            nfiq2 = Nfiq2(score=int(q.score), actionable={v.name: v.value for v in q.actionable},
                          features={k: features[k] for k in NFIQ2_FEATURES if k in features})
        resolution = round(self.ppi / 2.54)
        view = iso.FingerView(minutiae=minutiae, position=finger_position,
                              quality=nfiq2.score if nfiq2 else 0)
        template = iso.Template(width=width, height=height, views=(view,),
                                resolution_x=resolution, resolution_y=resolution)
        return Extraction(template=template, nfiq2=nfiq2)


def load_image(path) -> BiometricSample:
    """Read and decode an image file into a grey `BiometricSample` (8-bit; 16-bit is scaled)."""
    with BiometricSample.read_file(path) as encoded:
        image = cv2.imdecode(np.frombuffer(encoded.raw, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ExtractionError(f"{path}: not an image OpenCV can decode")
    decoded = [image]
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
        decoded.append(image)
    grey = as_grey(image)
    sample = BiometricSample.from_array(grey, kind="finger image")  # zeroes `grey`
    for array in decoded:
        array.fill(0)
    return sample
