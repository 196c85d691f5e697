"""egate officer watch|release|close|open: an officer's alert stream and commands over the gate's
console socket, each authenticated per officer and written to the audit trail (docs/console.md).

    watch     officer alerts as they happen (referral, control-list hit, tailgating, against-flow
              entry, door forced, object left, device fault, out of service) until Ctrl-C
    release   open the exit for the traveller refused in the mantrap whom you cleared by hand
    close     close the lane once the passage in progress ends
    open      open the lane you closed

Exit codes: 0 done, 1 refused by the lane, 2 bad usage or config, 3 login failed.
"""
from __future__ import annotations

import argparse

from gate.cli.cmd_diag import add_connection_options, run_one

ARGV = {"watch": ["watch"], "release": ["release"], "close": ["lane", "close"], "open": ["lane", "open"]}


def register(sub):
    p = sub.add_parser("officer", help="officer alerts and commands: watch, release, close, open",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=sorted(ARGV))
    add_connection_options(p)
    p.add_argument("--json", action="store_true", help="JSON on stdout (watch: one alert per line)")
    p.set_defaults(func=main)


def main(args) -> int:
    return run_one(args, ARGV[args.action], json_out=args.json)
