"""egate audit verify FILE: check the hash chain of an audit trail."""
import json

from core import audit


def register(sub):
    p = sub.add_parser("audit", help="audit trail tools")
    s = p.add_subparsers(dest="audit_command", required=True)
    v = s.add_parser("verify", help="report the first broken link; exit 1 if any")
    v.add_argument("file")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=verify)


def verify(args) -> int:
    broken = audit.verify(args.file)
    if args.json:
        print(json.dumps({"file": args.file, "intact": broken is None,
                          "line": broken and broken.line, "reason": broken and broken.reason}))
    elif broken:
        print(f"{args.file}: BROKEN at line {broken.line}: {broken.reason}")
    else:
        print(f"{args.file}: intact")
    return 1 if broken else 0
