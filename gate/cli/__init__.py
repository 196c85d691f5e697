"""`egate` command line.

Each subcommand lives in its own module `gate/cli/cmd_<name>.py` exposing
`register(subparsers)`; this module only discovers them, so adding a command
never touches a shared file.  Other installed distributions add commands through
the `egate.commands` entry-point group, each entry naming a `register` function
(egate-simulators adds `demo` and `sim`; a gate does not install it).  Exit codes:
0 ok, 1 a negative verdict (invalid MRZ, broken audit trail, failed check), 2 bad
usage or bad configuration.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from importlib.metadata import entry_points

import gate
from core.errors import ConfigError, EGateError

ENTRY_POINT_GROUP = "egate.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egate", description="e-Gate controller")
    parser.add_argument("--version", action="version", version=f"egate {gate.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{mod.name}").register(sub)
    names = set(sub.choices)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in names:  # a built-in command, or the same distribution seen twice
            continue
        try:
            register = ep.load()
        except ImportError as exc:  # metadata left behind by a removed or broken install
            print(f"egate: command {ep.name!r} unavailable ({ep.value}): {exc}", file=sys.stderr)
            continue
        register(sub)
        names.add(ep.name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except EGateError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
