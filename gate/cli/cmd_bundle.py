"""egate bundle publish|show|pull|keygen: downstream bundles (docs/sync.md, "Downstream").

    egate bundle publish --config CENTRAL.toml --kind crl --file A.crl [--file B.crl | --dir DIR]
    egate bundle show    --config CENTRAL.toml|BACKUP.toml|GATE.toml [--kind K] [--json]
    egate bundle pull    --config GATE.toml          once, down the endpoint list (commissioning)
    egate bundle keygen  --pki DIR                    a test publishing key in a test PKI
    egate bundle controllist --entries LIST.jsonl --serial N [--base S --removed ID ...] --out F.ecl
                                                      central: a control-list snapshot or delta to publish
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import json
import sys
import tomllib
from pathlib import Path


def register(sub):
    p = sub.add_parser("bundle", help="downstream bundles: publish at central, show, pull at a gate")
    s = p.add_subparsers(dest="bundle_command", required=True)
    pub = s.add_parser("publish", help="sign files as the next version of a kind and store them at central")
    pub.add_argument("--config", required=True, help="central's receiver config (with publish.signing_key)")
    pub.add_argument("--kind", required=True, help="crl, masterlist, controllist, ...")
    pub.add_argument("--file", action="append", default=[], metavar="F", help="a file of the bundle (repeat)")
    pub.add_argument("--dir", help="every file directly in this directory")
    pub.add_argument("--json", action="store_true")
    pub.set_defaults(func=run_publish)
    show = s.add_parser("show", help="a receiver's published bundles, or a gate's installed ones")
    show.add_argument("--config", required=True, help="a receiver config or a gate config")
    show.add_argument("--kind")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_show)
    pull = s.add_parser("pull", help="fetch and install newer bundles once (central, then the backups)")
    pull.add_argument("--config", required=True, help="gate config (TOML) with [sync.bundles]")
    pull.set_defaults(func=run_pull)
    cl = s.add_parser("controllist", help="build a control-list snapshot (or, with --base, a delta) file to publish")
    cl.add_argument("--entries", required=True, help="JSON lines, one entry each: id, surname, given_names, "
                                                     "birth_date (YYYYMMDD, 00 unknown), issuer, number, nationality, "
                                                     "category, action, note, valid_until")
    cl.add_argument("--serial", type=int, required=True, help="the snapshot's serial; a delta's own sequence")
    cl.add_argument("--base", type=int, default=0, help="a delta: the snapshot serial it applies to")
    cl.add_argument("--removed", action="append", default=[], metavar="ID", help="a delta: an entry id it removes")
    cl.add_argument("--out", required=True, help="the .ecl file (publish it as kind controllist or controllist-delta)")
    cl.set_defaults(func=run_controllist)
    key = s.add_parser("keygen", help="add central's publishing key to a test PKI (publisher/*.pem)")
    key.add_argument("--pki", required=True, metavar="DIR")
    key.set_defaults(func=run_keygen)


def _files(args) -> dict[str, bytes]:
    paths = [Path(f) for f in args.file]
    if args.dir:
        paths += sorted(p for p in Path(args.dir).iterdir() if p.is_file() and not p.name.startswith("."))
    if not paths:
        raise SystemExit("egate bundle publish: give --file (repeatable) or --dir")
    files: dict[str, bytes] = {}
    for path in paths:
        if path.name in files:
            raise SystemExit(f"egate bundle publish: two files named {path.name}")
        files[path.name] = path.read_bytes()
    return files


def _store(cfg, create: bool):
    from sync.receiver.config import database_target
    from sync.receiver.store import Store

    target = database_target(cfg.database, cfg.source.parent if cfg.source else None, cfg.source)
    return Store(target, create=create), target


def run_publish(args) -> int:
    from core.errors import ConfigError
    from sync import downstream as D
    from sync.receiver import bundles
    from sync.receiver.config import load_receiver
    import gate.screening.controllist  # noqa: F401 - what a control-list bundle must hold (its payload checks)

    cfg = load_receiver(args.config)
    if cfg.role != "central":
        raise ConfigError(cfg.source, "role", repr(cfg.role), "central: only central publishes bundles")
    if cfg.publish.signing_key is None:
        raise ConfigError(cfg.source, "publish.signing_key", "nothing", "central's Ed25519 publishing key")
    try:
        key = D.load_signing_key(cfg.publish.signing_key)
    except D.BundleError as exc:
        raise ConfigError(cfg.source, "publish.signing_key", exc.detail, "an Ed25519 private key (PEM)") from None
    files = _files(args)
    size = sum(map(len, files.values()))
    if size > cfg.publish.max_bytes:
        print(f"egate bundle publish: {size} bytes, more than publish.max_bytes ({cfg.publish.max_bytes})",
              file=sys.stderr)
        return 1
    store, target = _store(cfg, create=True)
    try:
        store.migrate()
        try:
            done = bundles.publish(store, key, args.kind, files)
        except D.BundleError as exc:
            print(f"egate bundle publish: refused ({exc.reason}): {exc.detail}", file=sys.stderr)
            return 1
    finally:
        store.close()
    if args.json:
        print(json.dumps(done.__dict__, sort_keys=True))
    else:
        print(f"published {done.kind} v{done.version} ({done.files} files, {done.size} bytes, sha256 "
              f"{done.sha256[:16]}..., key {D.key_id(key)}) at {target.display()}")
    return 0


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def run_show(args) -> int:
    try:
        top = tomllib.loads(Path(args.config).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        top = {}
    return _show_receiver(args) if "role" in top else _show_gate(args)


def _show_receiver(args) -> int:
    from sync.receiver import bundles
    from sync.receiver.config import load_receiver

    cfg = load_receiver(args.config)
    store, target = _store(cfg, create=False)
    try:
        rows = bundles.history(store, args.kind)
    finally:
        store.close()
    if args.json:
        print(json.dumps({"receiver": cfg.name, "bundles": rows}, default=str, sort_keys=True, indent=2))
        return 0
    print(f"{cfg.name}, database {target.display()}: {len(rows)} bundle versions")
    now = _dt.datetime.now(_dt.timezone.utc)
    for r in rows:
        age = (now - _dt.datetime.fromisoformat(r["created"])).total_seconds()
        print(f"  {r['kind']:<12} v{r['version']:<6} created {r['created']} ({_age(age)} ago)  {r['size']:>10} bytes"
              f"  sha256 {r['sha256'][:16]}  {r['source']}")
    return 0


def _show_gate(args) -> int:
    from gate import config
    from sync.downstream import Downstream

    cfg = config.load_gate(args.config)
    if not cfg.sync.bundles.kinds:
        print(f"{args.config}: no [sync.bundles] kinds: this gate pulls no bundles")
        return 0
    status = Downstream.from_config(cfg.sync.bundles, cfg.storage.data_dir).status()
    kinds = {k: v for k, v in status["kinds"].items() if args.kind in (None, k)}
    if args.json:
        print(json.dumps(kinds, sort_keys=True, indent=2))
        return 0
    print(f"gate {cfg.gate.id}: installed bundles")
    for kind, e in kinds.items():
        if e["version"] is None:
            print(f"  {kind:<12} none installed")
            continue
        print(f"  {kind:<12} v{e['version']:<6} created {e['created']} ({_age(e['age_s'])} ago)"
              f"{'  STALE' if e['stale'] else ''}  previous v{e['previous_version'] or '-'}  {e['path']}")
    return 0


def run_pull(args) -> int:
    import aiohttp

    from gate import config
    from sync.downstream import Downstream, Unreachable
    from sync.receiver.protocol import client_ssl_context

    cfg = config.load_gate(args.config)
    s = cfg.sync
    if not s.bundles.kinds or not s.endpoints:
        print(f"{args.config}: needs sync.central_url and [sync.bundles] kinds", file=sys.stderr)
        return 2
    down = Downstream.from_config(s.bundles, cfg.storage.data_dir)

    async def pull() -> int:
        ctx = client_ssl_context(s.ca_cert, s.client_cert, s.client_key)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
            for role, url in s.endpoints:
                try:
                    outcome = await down.pull(session, url, role)
                except Unreachable as exc:
                    print(f"  {role}: unreachable ({exc})")
                    continue
                for kind, what in outcome.items():
                    print(f"  {role}: {kind} {what}")
                return 0 if all(not w.startswith(("refused", "error")) for w in outcome.values()) else 1
        return 1

    return asyncio.run(pull())


def run_controllist(args) -> int:
    from gate.screening import controllist as CL

    entries = []
    for n, line in enumerate(Path(args.entries).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(CL.Entry(**json.loads(line)))
        except (ValueError, TypeError) as exc:
            print(f"{args.entries}:{n}: not an entry ({exc})", file=sys.stderr)
            return 2
    kind = "delta" if args.base else "snapshot"
    data = CL.build(entries, serial=args.serial, kind=kind, base=args.base, removed=args.removed)
    CL.decode(data)   # what a gate will check
    Path(args.out).write_bytes(data)
    print(f"{kind} {args.serial}{f' on snapshot {args.base}' if args.base else ''}: {len(entries)} entries, "
          f"{len(args.removed)} removed, {len(data)} bytes in {args.out}; publish it with egate bundle publish "
          f"--kind {'controllist-delta' if args.base else 'controllist'} --file {args.out}")
    return 0


def run_keygen(args) -> int:
    from sync import pki

    layout = pki.Layout(Path(args.pki), [], [])
    layout.dir.mkdir(parents=True, exist_ok=True)
    pki.create_publisher(layout)
    for path in layout.created:
        print(f"created {path}")
    print(f"publishing key {layout.publisher_key} (publish.signing_key at central); public half "
          f"{layout.publisher_public} (gates' sync.bundles.publisher_key, backups' publish.verify_key)")
    return 0
