"""Two independent MRZ line recognisers over the strips `locate` cuts out.

`PaddleRecogniser`: the PP-OCRv6 small recognition model (ONNX, onnxruntime), its 18,708-symbol
CTC output constrained to the 37 MRZ symbols and blank; a line is decoded to exactly the length its
format prescribes (a best-path search over "characters emitted so far", so a run of '<' is never
miscounted), and each character keeps its posterior over the 37 symbols (for ranked repairs).

`TesseractRecogniser`: Tesseract 5 (in-process through `tesserocr`) with an LSTM model trained on
MRZ text, limited to the same 37 symbols; one line per call. Tesseract's OpenMP threads are capped
at one (`OMP_THREAD_LIMIT=1`): on two cores they made each call 2.5x slower.

Both load their model through `drivers.page_scanner.models.CATALOGUE.verified_path` (digest
checked at load, nothing fetched).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from drivers.page_scanner.models import CATALOGUE, PPOCR_REC, TESS_MRZ
from icao9303.mrz_ocr import ALPHABET, LineRead

os.environ.setdefault("OMP_THREAD_LIMIT", "1")   # before the Tesseract library is loaded

LENGTHS = (30, 36, 44)


@dataclass(frozen=True)
class _Decoded:
    text: str
    probs: np.ndarray      # (len(text), 37): each character's posterior over ALPHABET


def nearest_length(n: int, choices=LENGTHS) -> int:
    return min(choices, key=lambda c: abs(c - n))


class PaddleRecogniser:
    """PP-OCRv6 rec, constrained to ALPHABET; `read(strip, length)` -> LineRead."""

    name = "ppocr"

    def __init__(self, threads: int = 2):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        path = CATALOGUE.verified_path(PPOCR_REC)
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        symbols = self.session.get_modelmeta().custom_metadata_map["character"].split("\n")
        index = {c: i + 1 for i, c in enumerate(symbols)}   # column 0 is the CTC blank
        self.columns = np.array([0] + [index[c] for c in ALPHABET])
        self.input = self.session.get_inputs()[0].name
        self._lock = threading.Lock()

    def _logits(self, strip: np.ndarray) -> np.ndarray:
        """Per-frame log-probabilities over blank + ALPHABET (T, 38)."""
        rgb = cv2.cvtColor(strip, cv2.COLOR_GRAY2RGB) if strip.ndim == 2 else strip
        h, w = rgb.shape[:2]
        if h != 48:
            rgb = cv2.resize(rgb, (max(8, round(w * 48 / h)), 48))
        x = (rgb.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        with self._lock:
            out = self.session.run(None, {self.input: x})[0][0]
        p = out[:, self.columns].astype(np.float64)
        p /= np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
        return np.log(np.maximum(p, 1e-12))

    @staticmethod
    def greedy(lp: np.ndarray) -> str:
        best = lp.argmax(axis=1)
        out, prev = [], 0
        for b in best:
            if b != prev and b != 0:
                out.append(ALPHABET[b - 1])
            prev = b
        return "".join(out)

    @staticmethod
    def decode_exact(lp: np.ndarray, n: int) -> _Decoded:
        """The most probable CTC path emitting exactly `n` characters, and each one's posterior."""
        t_len, k = lp.shape           # k = 38: blank + 37
        neg = -1e18
        score = np.full((n + 1, k), neg)
        score[0, 0] = lp[0, 0]
        score[1, 1:] = lp[0, 1:]
        back = np.zeros((t_len, n + 1, k), np.int16)   # previous label (state at t-1 is (k or k-1, label))
        for t in range(1, t_len):
            prev = score
            new = np.full_like(prev, neg)
            # blank: stay at the same count, from any label
            arg = prev.argmax(axis=1)
            new[:, 0] = prev[np.arange(n + 1), arg] + lp[t, 0]
            back[t, :, 0] = arg
            # a character c: continue c (same count) or start it (count + 1) from blank or another char
            order = np.argsort(prev, axis=1)
            top1, top2 = order[:, -1], order[:, -2]
            best_other = np.where(top1[:, None] == np.arange(k)[None, :],
                                  prev[np.arange(n + 1), top2][:, None], prev[np.arange(n + 1), top1][:, None])
            src_other = np.where(top1[:, None] == np.arange(k)[None, :], top2[:, None], top1[:, None])
            start = np.full_like(prev, neg)
            start[1:] = best_other[:-1]
            stay = prev
            take_start = start > stay
            new[:, 1:] = np.where(take_start[:, 1:], start[:, 1:], stay[:, 1:]) + lp[t, 1:]
            back[t, :, 1:] = np.where(take_start[:, 1:], -1 - src_other[:, 1:], np.arange(1, k)[None, :])
            score = new
        # Back-track from the best final state with exactly n characters.
        label = int(score[n].argmax())
        count = n
        frames: list[list[int]] = [[] for _ in range(n)]
        chars: list[int] = [0] * n
        for t in range(t_len - 1, -1, -1):
            if label != 0:
                chars[count - 1] = label
                frames[count - 1].append(t)
            if t == 0:
                break
            b = int(back[t, count, label])
            if label != 0 and b < 0:          # this frame started the character: move to count - 1
                label, count = -1 - b, count - 1
            else:
                label = b if label == 0 else label
        text = "".join(ALPHABET[c - 1] if c else "<" for c in chars)
        probs = np.zeros((n, len(ALPHABET)))
        for i, fr in enumerate(frames):
            if fr:
                rows = np.exp(lp[fr, 1:])
                best = rows[np.argmax(rows[:, chars[i] - 1])]
                probs[i] = best / max(best.sum(), 1e-12)
            else:
                probs[i] = 1.0 / len(ALPHABET)
        return _Decoded(text, probs)

    def read(self, strip: np.ndarray, length: int | None = None) -> LineRead:
        lp = self._logits(strip)
        raw = self.greedy(lp)
        n = length or nearest_length(len(raw))
        if lp.shape[0] < n:
            return LineRead(raw, raw, None)
        d = self.decode_exact(lp, n)
        return LineRead(d.text, raw, d.probs)

    def raw_length(self, strip: np.ndarray) -> int:
        return len(self.greedy(self._logits(strip)))


class TesseractRecogniser:
    """Tesseract 5 LSTM with the MRZ-trained model, one line per call; `read(strip, length)` -> LineRead."""

    name = "tesseract"
    HEIGHT = 30   # strip height Tesseract reads best and fastest at (the model's lines are about this tall)

    def __init__(self):
        import tesserocr

        path = CATALOGUE.verified_path(TESS_MRZ)
        # SINGLE_LINE: RAW_LINE is faster but reads specks at the ends of the strip as characters
        self.api = tesserocr.PyTessBaseAPI(path=str(path.parent), lang=path.stem, psm=tesserocr.PSM.SINGLE_LINE,
                                           oem=tesserocr.OEM.LSTM_ONLY)
        self.api.SetVariable("tessedit_char_whitelist", ALPHABET)
        self._lock = threading.Lock()

    def read(self, strip: np.ndarray, length: int | None = None) -> LineRead:
        grey = strip if strip.ndim == 2 else cv2.cvtColor(strip, cv2.COLOR_BGR2GRAY)
        h, w = grey.shape
        grey = cv2.resize(grey, (max(8, round(w * self.HEIGHT / h)), self.HEIGHT), interpolation=cv2.INTER_AREA)
        grey = np.ascontiguousarray(cv2.copyMakeBorder(grey, 6, 6, 12, 12, cv2.BORDER_CONSTANT, value=int(np.median(grey))))
        h, w = grey.shape
        with self._lock:
            self.api.SetImageBytes(grey.tobytes(), w, h, 1, w)
            text = self.api.GetUTF8Text()
        raw = "".join(c for c in text.upper() if c in ALPHABET)
        return LineRead(raw, raw, None)

    def close(self) -> None:
        self.api.End()
