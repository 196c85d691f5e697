"""egate bench <what>: measurements on the user's own data.  `biometrics` is the first bench.

egate bench biometrics --faces LFW_DIR --fingers FVC_DIR --out DIR
  FMR, FNMR, EER, thresholds at target FMRs, DET curves and score histograms (PNG),
  report.json; see biometrics/evaluation.py for layouts and protocol.
"""
import json
from pathlib import Path

from biometrics import evaluation as ev


def register(sub):
    p = sub.add_parser("bench", help="accuracy and performance benches on your own data")
    s = p.add_subparsers(dest="bench_command", required=True)
    b = s.add_parser("biometrics", help="face and fingerprint verification accuracy (FMR, FNMR, EER, DET)")
    b.add_argument("--faces", type=Path, help="LFW-style folder: one sub-folder of photos per person")
    b.add_argument("--fingers", type=Path, help="FVC-style folder: <finger>_<impression>.png|tif")
    b.add_argument("--out", type=Path, default=Path("bench-biometrics"),
                   help="where the PNG plots and report.json go (default ./bench-biometrics)")
    b.add_argument("--fmr", type=float, action="append",
                   help="target FMR for an operating point; repeatable (default 0.01, 0.001, 0.0001)")
    b.add_argument("--max-impostors", type=int, help="sample at most this many impostor comparisons")
    b.add_argument("--workers", type=int, default=2, help="threads for extraction and matching")
    b.add_argument("--json", action="store_true", help="print report.json instead of a table")
    b.set_defaults(func=biometrics)


def biometrics(args) -> int:
    if not args.faces and not args.fingers:
        print("egate bench biometrics: give --faces DIR and/or --fingers DIR")
        return 2
    targets = tuple(args.fmr or ev.DEFAULT_TARGETS)
    report, ok = {}, True
    jobs = [("finger", args.fingers, ev.load_fvc, ev.score_fingers, args.workers),
            ("face", args.faces, ev.load_lfw, ev.score_faces, 1)]
    for modality, folder, load, score, workers in jobs:
        if folder is None:
            continue
        ds = load(folder)
        try:
            scores = score(ds, workers=workers, max_impostors=args.max_impostors)
        except ev.PipelineUnavailable as exc:
            report[modality] = {"error": str(exc)}
            ok = False
            continue
        m = ev.evaluate(modality, ds, scores, args.out, targets)
        report[modality] = {**m.as_dict(), "data": str(folder), "ignored_files": len(ds.ignored),
                            "plots": [str(args.out / f"{modality}_det.png"),
                                      str(args.out / f"{modality}_scores.png")]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        _print_table(report)
    return 0 if ok else 1


def _print_table(report: dict) -> None:
    for modality, r in report.items():
        if "error" in r:
            print(f"{modality}: {r['error']}")
            continue
        print(f"{modality}: {r['samples']} samples ({r['failures']} failed), "
              f"{r['genuine_comparisons']} genuine / {r['impostor_comparisons']} impostor comparisons, "
              f"EER {r['eer'] * 100:.2f}% at score {r['eer_threshold']:.4g}")
        print(f"  {'target FMR':>10} {'threshold':>10} {'FMR':>9} {'FNMR':>9}")
        for p in r["operating_points"]:
            note = "" if p["supported"] else "  (too few impostor comparisons to support this FMR)"
            print(f"  {p['target_fmr']:>10g} {p['threshold']:>10.4g} {p['fmr']:>9.4%} {p['fnmr']:>9.4%}{note}")
        print(f"  plots: {', '.join(r['plots'])}")
