"""egate mrz parse LINE [LINE [LINE]] [--json]: parse and check a machine-readable zone.

Prints every field, each check digit's verdict and any OCR repair.  Exit 0 when the MRZ is
valid, 1 when it is invalid (the reasons are printed) or is not an MRZ at all.
"""
from __future__ import annotations

import datetime as dt
import json

from icao9303 import mrz as mrzmod


def register(sub):
    p = sub.add_parser("mrz", help="machine-readable zone tools")
    s = p.add_subparsers(dest="mrz_command", required=True)
    c = s.add_parser("parse", help="parse an MRZ; exit 1 with the reason if it is invalid")
    c.add_argument("lines", nargs="+", metavar="LINE",
                   help="MRZ lines (TD1: 3, TD2/TD3/MRV: 2); quote each line because of '<'")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--no-repair", action="store_true",
                   help="do not repair OCR confusions in numeric fields")
    c.add_argument("--today", metavar="YYYY-MM-DD",
                   help="reference date for century inference (default: today)")
    c.set_defaults(func=parse_cmd)


def parse_cmd(args) -> int:
    if len(args.lines) > 3:
        raise mrzmod.MrzError(f"an MRZ has at most 3 lines, {len(args.lines)} given")
    today = None
    if args.today:
        try:
            today = dt.date.fromisoformat(args.today)
        except ValueError as exc:
            raise mrzmod.MrzError(f"--today {args.today!r} is not YYYY-MM-DD") from exc
    m = mrzmod.parse(args.lines, today=today, repair=not args.no_repair, strict=False)
    if args.json:
        out = m.to_dict()
        out["reasons"] = m.reasons
        print(json.dumps(out, ensure_ascii=False))
    else:
        d = m.to_dict()
        for key in ("format", "doc_type", "issuer", "document_number", "surname",
                    "given_names", "nationality", "sex", "birth_date_iso", "expiry_date_iso",
                    "optional_data", "optional_data_2"):
            if d[key] not in ("", None):
                print(f"{key:16} {d[key]}")
        for c in m.checks:
            verdict = "ok" if c.valid else f"FAILED (computed {c.computed})"
            print(f"check {c.name:16} {c.printed} {verdict}")
        for r in m.repairs:
            print(f"repair {r.field}: line {r.line} col {r.column} {r.found!r} -> {r.replaced_by!r}")
        for w in m.warnings:
            print(f"warning: {w}")
        print("valid" if m.valid else "INVALID: " + "; ".join(m.reasons))
    return 0 if m.valid else 1
