"""egate pki init DIR --gate ID ... --site NAME ...: the sync test PKI (docs/sync.md, "Test PKI")."""
from __future__ import annotations

import json
import sys


def register(sub):
    p = sub.add_parser("pki", help="the test PKI of store-and-forward sync (mutual TLS and record keys)")
    s = p.add_subparsers(dest="pki_command", required=True)
    init = s.add_parser("init", help="create a CA, gate, receiver and forwarder certificates and record keys; "
                                     "run again to add gates or sites (nothing existing is overwritten)")
    init.add_argument("dir")
    init.add_argument("--gate", action="append", required=True, metavar="ID", help="a gate id (repeat for more)")
    init.add_argument("--site", action="append", default=[], metavar="NAME",
                      help="a site with a backup receiver (repeat for more)")
    init.add_argument("--no-offsite", action="store_true", help="no off-site backup certificates")
    init.add_argument("--json", action="store_true", help="print the manifest (pki.json)")
    init.set_defaults(func=run_init)


def run_init(args) -> int:
    from sync import pki  # cryptography's x509 only for this command

    try:
        layout = pki.create(args.dir, gates=args.gate, sites=args.site, offsite=not args.no_offsite)
    except pki.PkiError as exc:
        print(f"egate pki: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(layout.manifest(), indent=2))
        return 0
    print(f"{layout.dir}: {len(layout.created)} files created"
          f" ({len(layout.gates)} gates, receivers {', '.join(layout.servers())})")
    for path in layout.created:
        print(f"  {path.relative_to(layout.dir)}")
    return 0
