"""egate config check FILE: validate a gate or central config without starting anything."""
import json

from gate import config


def register(sub):
    p = sub.add_parser("config", help="configuration tools")
    s = p.add_subparsers(dest="config_command", required=True)
    c = s.add_parser("check", help="validate a config file; exit 2 with the offending key if invalid")
    c.add_argument("file")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=check)
    r = s.add_parser("reference", help="print the configuration reference (markdown)")
    r.set_defaults(func=lambda args: print(config.reference_markdown(), end=""))


def check(args) -> int:
    schema = config.detect_schema(args.file)
    cfg = config.load(args.file, schema)
    kind = "central" if schema is config.CentralConfig else "gate"
    name = cfg.role if kind == "central" else cfg.gate.id
    if args.json:
        print(json.dumps({"file": args.file, "kind": kind, "name": name, "valid": True}))
    else:
        print(f"{args.file}: valid {kind} config ({name})")
    return 0
