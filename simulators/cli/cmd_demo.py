"""egate demo: a simulated lane with the real gate process and travellers walking through."""
from pathlib import Path


def register(sub):
    p = sub.add_parser("demo", help="run a simulated lane end to end and print a summary")
    p.add_argument("--workdir", type=Path, default=Path("var/demo"), help="where the lane and gate keep their files")
    p.add_argument("--profile", choices=("realistic", "zero-latency"), default="realistic")
    p.add_argument("--travellers", help="comma-separated kinds, optionally kind:person "
                                        "(default: every kind, genuine nationals and foreigners)")
    p.add_argument("--stop-central", metavar="A:B", default=None,
                   help="stop the central receiver before traveller A and start it again before traveller B "
                        "(watch the gate fail over to the site's backup and back); default: 4:8")
    p.add_argument("--no-outage", action="store_true", help="keep central up the whole run")
    p.add_argument("--direction", choices=("departure", "arrival"), default="departure",
                   help="the gate's direction; on arrival foreigners are refused (default travellers differ)")
    p.set_defaults(func=run)


def run(args) -> int:
    from simulators import demo  # heavy imports only for this command

    outage = None if args.no_outage else demo.parse_outage(args.stop_central or "4:8")
    default = demo.ARRIVAL_TRAVELLERS if args.direction == "arrival" else demo.DEFAULT_TRAVELLERS
    rows = demo.run(args.workdir.resolve(), args.profile, args.travellers or default, outage=outage,
                    direction=args.direction)
    return 0 if rows and all(r.correct for r in rows) else 1
