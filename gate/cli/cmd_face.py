"""egate face compare A B: verify one photo against another (A is the reference, e.g. DG2)."""
import json

from biometrics.face.detector import read_image
from biometrics.face.matcher import DEFAULT_FMR, FaceMatcher
from biometrics.face.pipeline import FacePipeline


def register(sub):
    p = sub.add_parser("face", help="face verification tools")
    s = p.add_subparsers(dest="face_command", required=True)
    c = s.add_parser("compare", help="score photo B against reference photo A; exit 1 unless they match")
    c.add_argument("a", help="reference photo (chip DG2 image or enrolment photo)")
    c.add_argument("b", help="probe photo (live capture)")
    c.add_argument("--fmr", type=float, default=DEFAULT_FMR,
                   help="target false-match rate the threshold is derived from (default 0.001)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=compare)


def compare(args) -> int:
    pipeline = FacePipeline()
    matcher = FaceMatcher(fmr=args.fmr)
    results = {name: pipeline.process(read_image(path), embed_always=True)
               for name, path in (("a", args.a), ("b", args.b))}
    a, b = results["a"], results["b"]
    if a.embedding is None or b.embedding is None:
        decision, score = "no_face", None
    else:
        match = matcher.verify([b.embedding], {"a": a.embedding})
        decision, score = ("match" if match.matched else "no_match"), round(match.score, 4)
    report = {"a": args.a, "b": args.b, "score": score, "threshold": matcher.threshold,
              "fmr": args.fmr, "decision": decision,
              "quality": {name: r.quality.as_dict() for name, r in results.items()}}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{decision}: score {score} (threshold {matcher.threshold} for FMR {args.fmr})")
        for name, r in results.items():
            failures = ", ".join(f"{c.name}={c.value:.2f} -> {c.message}" for c in r.quality.failures)
            print(f"  {name}: faces={r.quality.faces} quality={r.quality.score:.2f} {failures or 'ok'}")
    return 0 if decision == "match" else 1
