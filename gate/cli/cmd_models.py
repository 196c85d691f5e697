"""egate models fetch|list: the pinned models and real test images (biometrics, MRZ recognisers)."""
import json

from biometrics import assets as biometric_assets
from core import assets
from drivers.page_scanner import models as mrz_models

CATALOGUES = (biometric_assets.CATALOGUE, mrz_models.CATALOGUE)


def register(sub):
    p = sub.add_parser("models", help="pinned models and test images")
    s = p.add_subparsers(dest="models_command", required=True)
    f = s.add_parser("fetch", help="download, verify and extract every pinned artefact (idempotent)")
    f.set_defaults(func=fetch)
    ls = s.add_parser("list", help="show each artefact, its source and whether it is intact")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=list_)


def fetch(args) -> int:
    done = [name for c in CATALOGUES for name in c.fetch()]
    total = sum(len(c.names()) for c in CATALOGUES)
    print(f"models: {len(done)} fetched, {total - len(done)} already present in {assets.root()}")
    return 0


def list_(args) -> int:
    rows = [row for c in CATALOGUES for row in c.status()]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            state = "ok" if r["intact"] else ("CORRUPT" if r["present"] else "missing")
            print(f"{state:8} {r['name']:38} {r['source']}")
    return 0 if all(r["intact"] for r in rows) else 1
