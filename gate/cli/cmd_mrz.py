"""egate mrz parse LINE [LINE [LINE]] [--json]: parse and check a machine-readable zone.
egate mrz read IMAGE [--json] [--engines both|ppocr|tesseract]: read the MRZ of a page image.

`parse` prints every field, each check digit's verdict and any OCR repair; exit 0 when the MRZ is
valid, 1 when it is invalid (the reasons are printed) or is not an MRZ at all.

`read` runs the page scanner's pipeline (drivers.page_scanner.pipeline, the code the gate runs) on
one image at any angle: the decision (agree, single, conflict, none), the ranked BAC keys, each
engine's reading and the timings; exit 0 when a read is accepted (agree or single), 1 otherwise.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

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
    r = s.add_parser("read", help="read the MRZ of a page image (any angle); exit 1 unless agree or single")
    r.add_argument("image", type=Path, metavar="IMAGE")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.add_argument("--engines", choices=("both", "ppocr", "tesseract"), default="both",
                   help="both engines (the gate), or one alone (for comparison)")
    r.set_defaults(func=read_cmd)


def read_cmd(args) -> int:
    import cv2

    from drivers.page_scanner.pipeline import MrzPageReader

    image = cv2.imread(str(args.image))
    if image is None:
        raise mrzmod.MrzError(f"{args.image}: not an image OpenCV can read")
    reader = MrzPageReader(args.engines)
    try:
        result = reader.read(image)
    finally:
        reader.close()
    d = result.decision
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        print(f"{d.agreement}{' (partial)' if d.partial else ''}: {d.reason}")
        for m, key in zip(d.candidates, d.keys):
            print(f"candidate {m.document_number:12} born {m.birth_date_raw} expires {m.expiry_date_raw}  key {key}")
        if d.mrz is not None:
            print("\n".join(d.mrz.lines))
        angle = "-" if result.angle is None else f"{result.angle:.1f}"
        print(f"angle {angle}, {result.lines_found} line(s), {result.timings_s['total']:.3f} s")
    return 0 if d.accepted else 1


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
