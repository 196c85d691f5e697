"""The MRZ of one page image: locate and deskew, two recognisers, one decision.

    reader = MrzPageReader()                 # loads both models (digests checked), ~0.3 s
    result = reader.read(image)              # PageResult: decision (agree/single/conflict/none), timings
    result.decision.candidates[0]            # the icao9303.mrz.Mrz to use; .keys are the ranked BAC keys

Order: `locate` finds the lines and guesses 0 or 180 degrees; PP-OCRv6 reads them (constrained,
exact length) while Tesseract-MRZ reads the same strips in a second thread (each engine on one
core); if PP-OCR's read fails the check digits the band is read the other way up, and Tesseract
follows it there; the two readings are fitted and decided by `icao9303.mrz_ocr`. `egate mrz read IMAGE` and the page scanner
driver both call this class.
"""
from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from drivers.page_scanner.locate import Band, locate
from drivers.page_scanner.recognise import PaddleRecogniser, TesseractRecogniser, nearest_length
from icao9303.mrz_ocr import LENGTH, Decision, Fitted, LineRead, decide, fit

ENGINES = ("both", "ppocr", "tesseract")


@dataclass(frozen=True)
class PageResult:
    decision: Decision
    angle: float | None                # degrees the page lay turned (counter-clockwise), None if no MRZ found
    lines_found: int
    timings_s: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.decision.to_dict(), "angle": None if self.angle is None else round(self.angle, 1),
                "lines_found": self.lines_found, "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()}}


class MrzPageReader:
    """Both recognisers, loaded once; `read` is thread-safe (each recogniser serialises its calls)."""

    def __init__(self, engines: str = "both"):
        if engines not in ENGINES:
            raise ValueError(f"engines must be one of {ENGINES}, not {engines!r}")
        self.engines = engines
        both = engines == "both"
        self.paddle = PaddleRecogniser(threads=1 if both else 2) if engines in ("both", "ppocr") else None
        self.tesseract = TesseractRecogniser() if engines in ("both", "tesseract") else None
        self._second = ThreadPoolExecutor(1, thread_name_prefix="mrz-tesseract") if both else None

    def close(self) -> None:
        if self._second is not None:
            self._second.shutdown(wait=True)
        if self.tesseract is not None:
            self.tesseract.close()

    def read(self, image: np.ndarray, *, today: dt.date | None = None) -> PageResult:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        band = locate(image)
        timings["locate"] = time.perf_counter() - t0
        if band is None:
            return PageResult(Decision("none", (), reason="no MRZ lines found"), None, 0, self._total(timings, t0))
        primary = self.paddle or self.tesseract
        early = None
        if self._second is not None:   # Tesseract on the likelier orientation, meanwhile
            early = (band, self._second.submit(self._timed, self.tesseract, band, None))
        t = time.perf_counter()
        first, band = self._read_oriented(primary, band, today)
        timings[primary.name] = time.perf_counter() - t
        second = None
        if early is not None:
            seen, future = early
            reads, spent = future.result()
            if band is not seen:       # PP-OCR read it the other way up: Tesseract follows
                reads, more = self._timed(self.tesseract, band, first.format)
                spent += more
            second = fit(reads, self.tesseract.name, today=today)
            if not second.valid and not first.valid:
                reads, more = self._timed(self.tesseract, band.flipped(), first.format)
                spent += more
                flipped = fit(reads, self.tesseract.name, today=today)
                if flipped.valid:
                    second, band = flipped, band.flipped()
            timings[self.tesseract.name] = spent
        decision = decide(first, second, today)
        return PageResult(decision, (-band.angle) % 360.0, len(band.lines), self._total(timings, t0))

    def _read_oriented(self, engine, band: Band, today) -> tuple[Fitted, Band]:
        """The engine's fit in the likelier orientation, or in the other one if only that verifies."""
        fitted = fit(self._lines(engine, band), engine.name, today=today)
        if fitted.valid:
            return fitted, band
        other = band.flipped()
        flipped = fit(self._lines(engine, other), engine.name, today=today)
        return (flipped, other) if flipped.valid else (fitted, band)

    def _timed(self, engine, band: Band, fmt: str | None) -> tuple[list[LineRead], float]:
        t = time.perf_counter()
        return self._lines(engine, band, fmt), time.perf_counter() - t

    @staticmethod
    def _lines(engine, band: Band, fmt: str | None = None) -> list[LineRead]:
        """Each strip read at its format's length (the format from the line count and the longest read)."""
        if fmt is not None:
            n = LENGTH[fmt]
        elif len(band.lines) >= 3:
            n = LENGTH["TD1"]
        elif hasattr(engine, "raw_length"):
            n = nearest_length(max(engine.raw_length(s) for s in band.lines))
        else:
            n = None
        return [engine.read(strip, n) for strip in band.lines]

    @staticmethod
    def _total(timings: dict, t0: float) -> dict:
        timings["total"] = time.perf_counter() - t0
        return timings
