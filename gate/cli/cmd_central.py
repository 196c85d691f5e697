"""egate central serve|status|check --config FILE: a central or backup receiver (docs/sync.md)."""
from __future__ import annotations

import asyncio
import datetime as _dt
import json
import sys

from core import logs
from sync.receiver import config as receiver_config


def register(sub):
    p = sub.add_parser("central", help="central and backup receivers of passage records")
    s = p.add_subparsers(dest="central_command", required=True)
    serve = s.add_parser("serve", help="run a receiver (role central or backup) until SIGTERM")
    serve.add_argument("--config", required=True, help="receiver config (TOML)")
    serve.set_defaults(func=run_serve)
    status = s.add_parser("status", help="what the receiver's database holds: gates, heartbeats, refusals, backlog")
    status.add_argument("--config", required=True)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=run_status)
    check = s.add_parser("check", help="validate a receiver config; exit 2 naming the offending key")
    check.add_argument("--config", required=True)
    check.set_defaults(func=run_check)
    ref = s.add_parser("reference", help="print the receiver configuration reference (markdown)")
    ref.set_defaults(func=lambda args: print(receiver_config.reference_markdown(), end=""))


def run_check(args) -> int:
    cfg = receiver_config.load_receiver(args.config)
    print(f"{args.config}: valid receiver config ({cfg.role}, site {cfg.site})")
    return 0


def run_serve(args) -> int:
    from sync.receiver.server import serve

    cfg = receiver_config.load_receiver(args.config)
    logs.configure(cfg.logging.level, cfg.logging.format, receiver=cfg.name)

    def ready(receiver):
        print(f"{cfg.name} listening on https://{cfg.listen.host}:{receiver.port} "
              f"(database {receiver.target.display()})", flush=True)

    try:
        asyncio.run(serve(cfg, ready=ready))
    except OSError as exc:  # the port is taken, a certificate does not match its key, ...
        print(f"error: {cfg.name} cannot listen on {cfg.listen.host}:{cfg.listen.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def _when(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, _dt.datetime):
        age = (_dt.datetime.now(_dt.timezone.utc) - value).total_seconds()
        return f"{value.astimezone(_dt.timezone.utc):%Y-%m-%d %H:%M:%S}Z ({_age(age)} ago)"
    return str(value)


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def run_status(args) -> int:
    from sync.receiver.store import Store

    cfg = receiver_config.load_receiver(args.config)
    base = cfg.source.parent if cfg.source else None
    target = receiver_config.database_target(cfg.database, base, cfg.source)
    store = Store(target, create=False)
    try:
        status = store.status()
    finally:
        store.close()
    forwarders = set(cfg.trusted_forwarders)
    status.update(role=cfg.role, site=cfg.site, database=target.display())
    if args.json:
        print(json.dumps(status, default=lambda v: v.isoformat() if isinstance(v, _dt.datetime) else str(v),
                         indent=2, sort_keys=True))
        return 0
    out = sys.stdout.write
    out(f"{cfg.name} (role {cfg.role}, site {cfg.site}), database {target.display()}\n")
    if status["schema_version"] == 0:
        out("  the database is empty: no receiver has started on it yet\n")
        return 0
    out(f"  schema version {status['schema_version']}, {status['records']} records, "
        f"{len(status['gates'])} gates seen\n")
    if cfg.role == "backup":
        b = status["backlog"]
        out(f"  not yet forwarded to central: {b['records']} records"
            + (f", oldest received {_when(b['oldest_received_at'])}" if b["records"] else "")
            + (f", {b['refused_by_central']} refused by central (retried)" if b["refused_by_central"] else "") + "\n")
    out("\n  gate                 records  seq        last record              last heartbeat\n")
    for gate, g in status["gates"].items():
        hb = g["heartbeat"]
        beat = "-" if hb is None else (f"{_when(hb['received_at'])} {hb['state']}, outbox {hb['outbox_depth']}")
        seqs = "-" if g["first_seq"] is None else f"{g['first_seq']}..{g['last_seq']}"
        out(f"  {gate:<20} {g['records']:>7}  {seqs:<10} {_when(g['last_received_at']):<24} {beat}\n")
    from sync.record import RATINGS, satisfaction_rate   # travellers' one-tap ratings, from each gate's heartbeat
    for gate, g in status["gates"].items():
        counters = (g["heartbeat"] or {}).get("counters") or {}
        rated = {face: counters.get(f"rated_{face}", 0) for face in RATINGS}
        if (rate := satisfaction_rate(rated)) is not None:
            out(f"  {gate:<20} satisfaction {100 * rate:.1f} % good of {sum(rated.values())} ratings since the gate "
                f"started (target >= 95.1 %)\n")
    by_reason: dict[str, int] = {}
    for r in status["refusals"]:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + r["count"]
    out("\n  refusals by reason: " + (", ".join(f"{k} {v}" for k, v in sorted(by_reason.items())) or "none") + "\n")
    for r in status["refusals"]:
        out(f"    {r['client']:<20} {r['reason']:<20} {r['count']:>7}  last {_when(r['last_at'])}\n")
    if status.get("conflicts_kept"):
        out(f"  conflicting copies kept for inspection (table conflicts): {status['conflicts_kept']}\n")
    out("\n  clients: " + (", ".join(
        f"{c['cn']}{' (forwarder)' if c['cn'] in forwarders else ''} last {_when(c['last_seen'])}"
        for c in status["clients"]) or "none") + "\n")
    return 0
