"""egate demo: a simulated lane with the real gate process and travellers walking through."""
from pathlib import Path


def register(sub):
    p = sub.add_parser("demo", help="run a simulated lane end to end and print a summary")
    p.add_argument("--workdir", type=Path, default=Path("var/demo"), help="where the lane and gate keep their files")
    p.add_argument("--profile", choices=("realistic", "zero-latency"), default="realistic")
    p.add_argument("--travellers", help="comma-separated kinds, optionally kind:person "
                                        "(default: every kind, genuine nationals and foreigners)")
    p.set_defaults(func=run)


def run(args) -> int:
    from simulators import demo  # heavy imports only for this command

    rows = demo.run(args.workdir.resolve(), args.profile, args.travellers or demo.DEFAULT_TRAVELLERS)
    return 0 if rows and all(r.correct for r in rows) else 1
