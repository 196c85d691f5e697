"""egate sim lane | egate sim traveller: the simulated lane and its scripted travellers (docs/lane.md).

    egate sim lane [--workdir DIR] [--profile realistic|zero-latency] [--write-config FILE [--force]] [--json]
        starts every simulator of one lane, prints where each device is and writes the gate config
        for it (DIR/gate.toml, or FILE: an existing FILE only with --force), serves the control
        socket DIR/control.sock, runs until SIGTERM or Ctrl-C.
    egate sim traveller KIND [--count N] [--workdir DIR] [--person P] [--variant V] [--json]
        sends scripted travellers into that running lane and prints their timelines as they finish.

Exit codes: 0 ok; 1 travellers still in the lane at --timeout; 2 no lane running in --workdir,
--write-config FILE exists (without --force), or the lane cannot start.
"""
from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "egate-lane"
CONTROL_SOCKET = "control.sock"


def register(sub):
    from simulators.lane import PEOPLE, PROFILES
    from simulators.testpki import VARIANTS
    from simulators.traveller import FINGER_MODES, KINDS

    p = sub.add_parser("sim", help="simulated lane and scripted travellers")
    s = p.add_subparsers(dest="sim_command", required=True)
    lane = s.add_parser("lane", help="run every simulator of one lane until SIGTERM/Ctrl-C")
    lane.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"default {DEFAULT_WORKDIR}")
    lane.add_argument("--profile", choices=PROFILES, default="realistic")
    lane.add_argument("--write-config", type=Path, metavar="FILE",
                      help="write the generated gate config to FILE instead of WORKDIR/gate.toml; "
                           "refuses an existing FILE unless --force")
    lane.add_argument("--force", action="store_true", help="let --write-config replace an existing FILE")
    lane.add_argument("--seed", type=int, default=0)
    lane.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    lane.add_argument("--lists", action="store_true",
                      help="install central's lists (control list, resident register; simulators/lists.py) for the "
                           "watchlisted and resident travellers, with the one-document-used-twice window")
    lane.add_argument("--direction", choices=("departure", "arrival"),
                      help="the gate config's direction (with --lists; default departure)")
    lane.set_defaults(func=lane_cmd)

    people = [person.key for person in PEOPLE]
    t = s.add_parser("traveller", help="send scripted travellers into a running lane")
    t.add_argument("kind", choices=KINDS)
    t.add_argument("--count", type=int, default=1, help="travellers, one after another (1..100)")
    t.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="the running lane's workdir")
    t.add_argument("--person", choices=people, help="who walks (default depends on KIND)")
    t.add_argument("--holder", choices=people, help="whose passport (default: their own, or KIND's)")
    t.add_argument("--variant", choices=VARIANTS, help="passport variant (forged: default tampered_dg1)")
    t.add_argument("--finger", choices=FINGER_MODES, default="asked")
    t.add_argument("--patience", type=float, help="seconds waiting for the entry leaf before giving up")
    t.add_argument("--timeout", type=float, default=600.0, help="stop waiting for timelines after this long")
    t.add_argument("--json", action="store_true", help="one JSON object per traveller")
    t.set_defaults(func=traveller_cmd)


def lane_cmd(args) -> int:
    from core.assets import AssetError
    from simulators.faults import ControlServer
    from simulators.lane import Lane
    from simulators.services import ServiceError
    from simulators.traveller import Dispatcher

    if args.write_config is not None and args.write_config.exists() and not args.force:
        print(f"error: {args.write_config} exists; --write-config does not replace a file "
              f"unless --force is given", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # explicit: a background job inherits SIGINT ignored
        signal.signal(sig, lambda *_: stop.set())
    print(f"starting lane in {args.workdir} (waits for the host-wide vpcd slot lock)", file=sys.stderr, flush=True)
    lane = Lane(args.workdir, args.profile, args.seed, config_path=args.write_config)
    try:
        lane.start()
    except (ServiceError, AssetError, TimeoutError) as exc:
        print(f"error: cannot start the lane: {exc}", file=sys.stderr)
        return 2
    if args.lists:
        from simulators import lists

        lists.screen_lane(lane, direction=args.direction)
    try:
        dispatcher = Dispatcher(lane)
        control = str(lane.workdir / CONTROL_SOCKET)
        server = ControlServer(control, dispatcher.control)
        try:
            rows = lane.devices() + [{"device": "control", "link": "unix", "where": control,
                                      "notes": "JSON lines; egate sim traveller KIND"}]
            if args.json:
                print(json.dumps({"profile": lane.profile, "config": str(lane.config_path), "control": control,
                                  "devices": rows}), flush=True)
            else:
                width = max(len(r["device"]) for r in rows)
                for r in rows:
                    print(f"{r['device']:<{width}}  {r['link']:<5}  {r['where']}  {r['notes']}".rstrip())
                print(f"gate config: {lane.config_path}", flush=True)
            stop.wait()
        finally:
            server.close()
            dispatcher.close()
    finally:
        lane.stop()
    return 0


def traveller_cmd(args) -> int:
    from simulators.faults import send_control

    control = args.workdir / CONTROL_SOCKET
    if not control.exists():
        print(f"no lane running in {args.workdir} (no {control}): start `egate sim lane --workdir {args.workdir}`",
              file=sys.stderr)
        return 2
    request = {"do": "traveller", "kind": args.kind, "count": args.count, "finger": args.finger}
    for key, value in (("person", args.person), ("holder", args.holder), ("variant", args.variant),
                       ("patience_s", args.patience)):
        if value is not None:
            request[key] = value
    reply = send_control(str(control), request)
    if not reply.get("ok"):
        print(f"error: {reply.get('error')}", file=sys.stderr)
        return 2
    pending = list(reply["ids"])
    deadline = time.monotonic() + args.timeout
    while pending and time.monotonic() < deadline:
        report = send_control(str(control), {"do": "report", "ids": pending})
        for summary in report["travellers"]:
            if summary["done"]:
                pending.remove(summary["id"])
                print(json.dumps(summary) if args.json else format_timeline(summary), flush=True)
        if pending:
            threading.Event().wait(0.2)
    if pending:
        print(f"still in the lane after {args.timeout}s: travellers {pending}", file=sys.stderr)
        return 1
    return 0


def format_timeline(summary: dict) -> str:
    head = (f"traveller {summary['id']} {summary['kind']}: {summary['person']} with {summary['holder']}'s "
            f"{summary['variant']} passport -> {summary['outcome']}")
    lines = [head]
    for e in summary["timeline"]:
        detail = " ".join(f"{k}={v}" for k, v in e.items() if k not in ("t", "event"))
        lines.append(f"  {e['t']:8.3f}  {e['event']}  {detail}".rstrip())
    if summary.get("error"):
        lines.append(f"  error: {summary['error']}")
    return "\n".join(lines)
