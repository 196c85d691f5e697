"""egate finger compare A B: NFIQ 2 gate on both prints, then bozorth3 at a target FMR."""
import json

from biometrics.finger.extract import load_image
from biometrics.finger.matcher import FingerVerifier
from gate.config import Thresholds

_DEFAULTS = Thresholds()


def register(sub):
    p = sub.add_parser("finger", help="fingerprint verification tools")
    s = p.add_subparsers(dest="finger_command", required=True)
    c = s.add_parser("compare", help="score print B against reference print A; exit 1 unless they match")
    c.add_argument("a", help="reference print (enrolment)")
    c.add_argument("b", help="probe print (live capture)")
    c.add_argument("--fmr", type=float, default=_DEFAULTS.finger_fmr,
                   help=f"target false-match rate the threshold is derived from (default {_DEFAULTS.finger_fmr})")
    c.add_argument("--nfiq2-min", type=int, default=_DEFAULTS.nfiq2_min,
                   help=f"NFIQ 2 score a print needs to be matched (default {_DEFAULTS.nfiq2_min})")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=compare)


def compare(args) -> int:
    verifier = FingerVerifier(args.fmr, args.nfiq2_min)
    with load_image(args.a) as a:
        reference, reference_quality = verifier.capture(a)
    with load_image(args.b) as b:
        if reference_quality.passed:
            decision = verifier.verify(b, reference.template)
            probe_quality, match = decision.quality, decision.match
        else:
            probe_quality, match = verifier.capture(b)[1], None
    outcome = "retry" if match is None else ("match" if match.match else "no_match")
    failed = next((q for q in (reference_quality, probe_quality) if not q.passed), None)
    report = {"a": args.a, "b": args.b,
              "score": match and match.score, "threshold": verifier.matcher.threshold, "fmr": args.fmr,
              "estimated_fmr": match and match.estimated_fmr,
              "threshold_extrapolated": verifier.matcher.extrapolated,
              "decision": outcome, "guidance": failed and failed.guidance,
              "quality": {"a": reference_quality.as_dict(), "b": probe_quality.as_dict()}}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{outcome}: score {report['score']} (threshold {verifier.matcher.threshold:.1f} for FMR {args.fmr})")
        for name, q in (("a", reference_quality), ("b", probe_quality)):
            findings = ", ".join(f"{f.cue}={f.value} -> {f.message_id}" for f in q.findings)
            print(f"  {name}: NFIQ2={q.nfiq2} minutiae={q.minutiae} {'pass' if q.passed else 'FAIL'} {findings}")
    return 0 if outcome == "match" else 1
