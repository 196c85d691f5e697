"""Verification accuracy on the user's own labelled data: FMR, FNMR, EER, DET, histograms.

Layouts:
* LFW-style (faces): one folder per person, any number of images in each.
* FVC-style (fingers): flat folder of `<finger>_<impression>.<png|tif|tiff|bmp>`,
  e.g. `101_1.tif` ... `110_8.tif` as in the FVC databases.

Protocol: every pair of samples of one subject is a genuine comparison; every pair
of samples of two different subjects is an impostor comparison (a deterministic
random subset when `max_impostors` is set).  Samples the pipeline cannot process
are counted as failures to acquire and leave the score lists.  Scores are
"higher = more similar"; a comparison matches when score >= threshold.

FMR(t) = share of impostor scores >= t, FNMR(t) = share of genuine scores < t.
The threshold for a target FMR is the lowest t whose FMR is <= the target; with
n impostor comparisons an FMR below 3/n is not supported by the data (rule of
three, 95 %), and the report says so.  Plots are drawn with OpenCV, no plotting
library needed.
"""
from __future__ import annotations

import itertools
import math
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import cv2
import numpy as np

from core.errors import EGateError

FVC_NAME = re.compile(r"^(?P<finger>[^_/]+)_(?P<impression>\d+)\.(png|tif|tiff|bmp)$", re.I)
FACE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_TARGETS = (1e-2, 1e-3, 1e-4)


class DatasetError(EGateError):
    """A data folder is missing, empty, or has no genuine or no impostor pairs."""


@dataclass(frozen=True)
class Dataset:
    layout: str
    root: Path
    subjects: dict[str, tuple[Path, ...]]
    ignored: tuple[str, ...] = ()

    @property
    def samples(self) -> list[tuple[str, Path]]:
        return [(s, p) for s, paths in self.subjects.items() for p in paths]


def load_fvc(root) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory")
    subjects: dict[str, list[Path]] = {}
    ignored = []
    for p in sorted(root.iterdir()):
        m = FVC_NAME.match(p.name) if p.is_file() else None
        if m:
            subjects.setdefault(m["finger"], []).append(p)
        else:
            ignored.append(p.name)
    return _checked(Dataset("fvc", root, {k: tuple(v) for k, v in subjects.items()}, tuple(ignored)))


def load_lfw(root) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory")
    subjects = {}
    ignored = []
    for d in sorted(root.iterdir()):
        if not d.is_dir():
            ignored.append(d.name)
            continue
        images = tuple(p for p in sorted(d.iterdir()) if p.suffix.lower() in FACE_SUFFIXES)
        if images:
            subjects[d.name] = images
    return _checked(Dataset("lfw", root, subjects, tuple(ignored)))


def _checked(ds: Dataset) -> Dataset:
    if len(ds.subjects) < 2:
        raise DatasetError(f"{ds.root}: {ds.layout.upper()}-style layout needs at least 2 subjects, "
                           f"found {len(ds.subjects)}")
    if not any(len(v) >= 2 for v in ds.subjects.values()):
        raise DatasetError(f"{ds.root}: no subject has 2 samples, so there is no genuine pair")
    return ds


def pairs(labels: Sequence[str], max_impostors: int | None = None, seed: int = 0):
    """Genuine and impostor index pairs over samples labelled by subject."""
    genuine, impostor = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        (genuine if labels[i] == labels[j] else impostor).append((i, j))
    if max_impostors is not None and len(impostor) > max_impostors:
        keep = np.random.default_rng(seed).choice(len(impostor), max_impostors, replace=False)
        impostor = [impostor[k] for k in sorted(keep)]
    return genuine, impostor


# ------------------------------------------------------------------ metrics

@dataclass(frozen=True)
class OperatingPoint:
    target_fmr: float
    threshold: float
    fmr: float
    fnmr: float
    supported: bool          # n_impostor >= 3 / target_fmr


@dataclass(frozen=True)
class Metrics:
    modality: str
    genuine: int
    impostor: int
    failures: int            # samples that could not be processed
    samples: int
    eer: float
    eer_threshold: float
    points: tuple[OperatingPoint, ...]
    det_fmr: np.ndarray = field(repr=False)
    det_fnmr: np.ndarray = field(repr=False)

    def as_dict(self) -> dict:
        return {"modality": self.modality, "samples": self.samples, "failures": self.failures,
                "genuine_comparisons": self.genuine, "impostor_comparisons": self.impostor,
                "eer": self.eer, "eer_threshold": self.eer_threshold,
                "operating_points": [p.__dict__ for p in self.points]}


def rates(genuine: np.ndarray, impostor: np.ndarray, thresholds: np.ndarray):
    """FMR and FNMR at each threshold (match when score >= threshold)."""
    g, i = np.sort(genuine), np.sort(impostor)
    fnmr = np.searchsorted(g, thresholds, side="left") / len(g)
    fmr = (len(i) - np.searchsorted(i, thresholds, side="left")) / len(i)
    return fmr, fnmr


def threshold_at_fmr(impostor: np.ndarray, target: float) -> float:
    """Lowest threshold whose empirical FMR is <= target."""
    s = np.sort(np.asarray(impostor, float))[::-1]
    allowed = math.floor(target * len(s) + 1e-9)   # false matches the target tolerates
    if allowed >= len(s):
        return float(s[-1])
    above = s[allowed]                              # this score (and its ties) must not match
    integral = bool(np.all(np.mod(s, 1) == 0))
    return float(above + 1) if integral else float(np.nextafter(above, np.inf))


def metrics(modality: str, genuine, impostor, *, failures: int = 0, samples: int = 0,
            targets: Sequence[float] = DEFAULT_TARGETS) -> Metrics:
    g = np.asarray(genuine, float)
    i = np.asarray(impostor, float)
    if not len(g) or not len(i):
        raise DatasetError(f"{modality}: need genuine and impostor scores, got {len(g)} and {len(i)}")
    candidates = np.unique(np.concatenate([g, i, [max(g.max(), i.max()) + 1]]))
    fmr, fnmr = rates(g, i, candidates)
    # FMR falls and FNMR rises with the threshold: the EER lies where they cross.
    k = int(np.argmax(fnmr >= fmr))
    if k == 0:
        eer, eer_t = float((fmr[0] + fnmr[0]) / 2), float(candidates[0])
    else:
        d0, d1 = fmr[k - 1] - fnmr[k - 1], fmr[k] - fnmr[k]
        w = d0 / (d0 - d1) if d0 != d1 else 0.5
        eer = float(fmr[k - 1] + w * (fmr[k] - fmr[k - 1]))
        eer_t = float(candidates[k - 1] + w * (candidates[k] - candidates[k - 1]))
    points = []
    for t in targets:
        thr = threshold_at_fmr(i, t)
        p_fmr, p_fnmr = rates(g, i, np.array([thr]))
        points.append(OperatingPoint(t, thr, float(p_fmr[0]), float(p_fnmr[0]), len(i) >= 3 / t))
    return Metrics(modality, len(g), len(i), failures, samples, eer, eer_t, tuple(points), fmr, fnmr)


# ------------------------------------------------------------------ scoring

@dataclass(frozen=True)
class Scores:
    genuine: np.ndarray
    impostor: np.ndarray
    failures: int
    samples: int


def score_dataset(ds: Dataset, features: Callable[[Path], object | None],
                  compare: Callable[[object, object], float], *, workers: int = 2,
                  max_impostors: int | None = None) -> Scores:
    """Features per sample (None = failure to acquire), then every genuine and impostor pair.

    `features` and `compare` are called from `workers` threads; they must keep per-thread
    state themselves (see `per_thread`).
    """
    samples = ds.samples
    with ThreadPoolExecutor(workers) as pool:
        feats = list(pool.map(features, [p for _, p in samples]))
        ok = [k for k, f in enumerate(feats) if f is not None]
        labels = [samples[k][0] for k in ok]
        genuine, impostor = pairs(labels, max_impostors)

        def run(index_pairs):
            return np.array(list(pool.map(lambda ab: compare(feats[ok[ab[0]]], feats[ok[ab[1]]]),
                                          index_pairs, chunksize=64)), float)

        return Scores(run(genuine), run(impostor), len(samples) - len(ok), len(samples))


def per_thread(factory: Callable[[], object]) -> Callable[[], object]:
    """A getter returning one `factory()` instance per thread (NBIS and ONNX sessions are not shared)."""
    local = threading.local()

    def get():
        if not hasattr(local, "obj"):
            local.obj = factory()
        return local.obj
    return get


# ------------------------------------------------------------------ plots

WIDTH, HEIGHT = 720, 540
MARGIN = (80, 40, 40, 70)   # left, top, right, bottom
GENUINE_BGR = (60, 150, 40)
IMPOSTOR_BGR = (40, 40, 200)
CURVE_BGR = ((200, 90, 20), (40, 40, 200), (60, 150, 40), (140, 60, 160))


class _Canvas:
    def __init__(self, title: str, x_label: str, y_label: str):
        self.img = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)
        self.left, self.top, self.right, self.bottom = MARGIN
        self.w = WIDTH - self.left - self.right
        self.h = HEIGHT - self.top - self.bottom
        self.text(title, WIDTH // 2, 24, centre=True, scale=0.6)
        self.text(x_label, self.left + self.w // 2, HEIGHT - 18, centre=True)
        label = np.full((24, self.h, 3), 255, np.uint8)
        cv2.putText(label, y_label, (max(0, self.h // 2 - 4 * len(y_label)), 17),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        self.img[self.top:self.top + self.h, 6:30] = cv2.rotate(label, cv2.ROTATE_90_COUNTERCLOCKWISE)
        cv2.rectangle(self.img, (self.left, self.top), (self.left + self.w, self.top + self.h), (0, 0, 0), 1)

    def text(self, s, x, y, *, centre=False, scale=0.45, colour=(0, 0, 0)):
        if centre:
            (tw, _), _ = cv2.getTextSize(s, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            x -= tw // 2
        cv2.putText(self.img, s, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)

    def px(self, u: float, v: float) -> tuple[int, int]:
        """Unit coordinates (0..1 left-right, 0..1 bottom-top) to pixels."""
        return int(round(self.left + u * self.w)), int(round(self.top + (1 - v) * self.h))

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), self.img):
            raise EGateError(f"could not write {path}")
        return path


DET_TICKS = (1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5)
_PROBIT = NormalDist()


def _probit_unit(p: np.ndarray) -> np.ndarray:
    lo, hi = _PROBIT.inv_cdf(DET_TICKS[0]), _PROBIT.inv_cdf(DET_TICKS[-1])
    p = np.clip(p, DET_TICKS[0], DET_TICKS[-1])
    return (np.array([_PROBIT.inv_cdf(float(x)) for x in p]) - lo) / (hi - lo)


def plot_det(curves: dict[str, Metrics], path: Path, title: str) -> Path:
    """DET: FNMR against FMR on normal-deviate axes; rates of 0 are drawn at the axis floor."""
    c = _Canvas(title, "false match rate (FMR)", "false non-match rate (FNMR)")
    ticks = _probit_unit(np.array(DET_TICKS))
    for p, u in zip(DET_TICKS, ticks):
        label = f"{p * 100:g}%"
        x, y0 = c.px(u, 0)
        cv2.line(c.img, (x, c.top), (x, c.top + c.h), (225, 225, 225), 1)
        c.text(label, x, y0 + 18, centre=True)
        x0, y = c.px(0, u)
        cv2.line(c.img, (c.left, y), (c.left + c.w, y), (225, 225, 225), 1)
        c.text(label, x0 - 8 - 8 * len(label), y + 4)
    for n, (name, m) in enumerate(curves.items()):
        colour = CURVE_BGR[n % len(CURVE_BGR)]
        pts = np.array([c.px(u, v) for u, v in zip(_probit_unit(m.det_fmr), _probit_unit(m.det_fnmr))], np.int32)
        cv2.polylines(c.img, [pts], False, colour, 2, cv2.LINE_AA)
        eer_u = _probit_unit(np.array([m.eer]))[0]
        cv2.circle(c.img, c.px(eer_u, eer_u), 4, colour, -1, cv2.LINE_AA)
        c.text(f"{name}: EER {m.eer * 100:.2f}%  ({m.genuine} gen / {m.impostor} imp)",
               c.left + c.w - 330, c.top + 20 + 18 * n, colour=colour)
    return c.save(path)


def plot_histogram(m: Metrics, genuine: np.ndarray, impostor: np.ndarray, path: Path,
                   title: str, bins: int = 40) -> Path:
    """Genuine and impostor score densities with the thresholds of the operating points."""
    c = _Canvas(title, "score", "share of comparisons per bin")
    lo = float(min(genuine.min(), impostor.min()))
    hi = float(max(genuine.max(), impostor.max()))
    hi = hi if hi > lo else lo + 1
    edges = np.linspace(lo, hi, bins + 1)
    hg = np.histogram(genuine, edges)[0] / len(genuine)
    hi_ = np.histogram(impostor, edges)[0] / len(impostor)
    top = max(hg.max(), hi_.max()) * 1.1
    for hist, colour, shift in ((hi_, IMPOSTOR_BGR, 0.0), (hg, GENUINE_BGR, 0.5)):
        for k, h in enumerate(hist):
            if h > 0:
                x0, y0 = c.px((k + shift * 0.5) / bins, 0)
                x1, y1 = c.px((k + 0.5 + shift * 0.5) / bins, h / top)
                cv2.rectangle(c.img, (x0, y1), (x1, y0), colour, -1)
    for k in range(6):
        x, y = c.px(k / 5, 0)
        c.text(f"{lo + (hi - lo) * k / 5:.3g}", x, y + 18, centre=True)
        x0, y = c.px(0, k / 5)
        c.text(f"{top * k / 5:.2f}", x0 - 44, y + 4)
    for n, p in enumerate(m.points):
        u = (p.threshold - lo) / (hi - lo)
        if 0 <= u <= 1:
            x, _ = c.px(u, 0)
            cv2.line(c.img, (x, c.top), (x, c.top + c.h), (90, 90, 90), 1)
            c.text(f"t={p.threshold:.4g} @ FMR {p.target_fmr:g}", x + 3, c.top + 14 + 14 * n,
                   scale=0.38, colour=(90, 90, 90))
    c.text(f"genuine (n={len(genuine)})", c.left + c.w - 200, c.top + 34, colour=GENUINE_BGR)
    c.text(f"impostor (n={len(impostor)})", c.left + c.w - 200, c.top + 52, colour=IMPOSTOR_BGR)
    return c.save(path)


# ------------------------------------------------------------------ modalities

class PipelineUnavailable(EGateError):
    """A modality's pipeline cannot run here (module or model missing)."""


def score_fingers(ds: Dataset, *, workers: int = 2, max_impostors: int | None = None) -> Scores:
    """bozorth3 scores through the gate's own extraction and matcher (no quality gate)."""
    from biometrics.finger.extract import ExtractionError, Extractor, load_image
    from biometrics.finger.matcher import Matcher

    extractor, matcher = per_thread(lambda: Extractor(nfiq2=False)), per_thread(Matcher)

    def features(path):
        try:
            with load_image(path) as sample:
                # Loaded into bozorth3 once, not once per comparison.
                return matcher().prepare(extractor().extract(sample).template)
        except ExtractionError:
            return None

    return score_dataset(ds, features, lambda a, b: matcher().score(a, b),
                         workers=workers, max_impostors=max_impostors)


def score_faces(ds: Dataset, *, workers: int = 1, max_impostors: int | None = None) -> Scores:
    """SFace cosine scores through the face pipeline (biometrics.face)."""
    try:
        from biometrics.face.detector import read_image
        from biometrics.face.matcher import cosine
        from biometrics.face.pipeline import FacePipeline
        pipeline = per_thread(lambda: FacePipeline(threads=1))
        pipeline()
    except Exception as exc:  # any import or model-loading failure means the same thing here
        raise PipelineUnavailable(f"face pipeline not available: {type(exc).__name__}: {exc}") from exc

    def features(path):
        try:
            return pipeline().process(read_image(path), embed_always=True).embedding
        except EGateError:
            return None

    return score_dataset(ds, features, cosine, workers=workers, max_impostors=max_impostors)


def evaluate(modality: str, ds: Dataset, scores: Scores, out: Path | None,
             targets: Sequence[float] = DEFAULT_TARGETS) -> Metrics:
    """Metrics for one modality, and its DET curve and histogram as PNG files in `out`."""
    m = metrics(modality, scores.genuine, scores.impostor, failures=scores.failures,
                samples=scores.samples, targets=targets)
    if out is not None:
        plot_det({modality: m}, out / f"{modality}_det.png", f"{modality} DET ({ds.root.name})")
        plot_histogram(m, scores.genuine, scores.impostor, out / f"{modality}_scores.png",
                       f"{modality} score distributions ({ds.root.name})")
    return m
