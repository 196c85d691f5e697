"""egate config check FILE: validate a gate config without starting anything."""
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
    cfg = config.load_gate(args.file)
    if args.json:
        print(json.dumps({"file": args.file, "kind": "gate", "name": cfg.gate.id, "valid": True}))
    else:
        print(f"{args.file}: valid gate config ({cfg.gate.id})")
    return 0
