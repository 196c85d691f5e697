"""The systemd units under config/systemd run egate commands that exist, with arguments egate takes."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from gate.cli import build_parser

UNITS = Path(__file__).resolve().parents[1] / "config" / "systemd"


def exec_lines(path: Path) -> list[str]:
    lines = [line for line in path.read_text().splitlines() if line.startswith(("ExecStart=", "ExecStartPre="))]
    return [line.split("=", 1)[1].lstrip("-") for line in lines if line.split("=", 1)[1]]


@pytest.mark.parametrize("unit", sorted(p.name for p in UNITS.rglob("*") if p.is_file()))
def test_every_egate_command_in_a_unit_parses(unit):
    (path,) = [p for p in UNITS.rglob(unit)]
    commands = exec_lines(path)
    assert commands, f"{unit} runs nothing"
    for command in commands:
        argv = shlex.split(command.replace("%I", "ttyS0").replace("%i", "central").replace("$TERM", "vt100"))
        if "--login-options" in argv:         # agetty runs runuser, which runs egate
            argv = shlex.split(argv[argv.index("--login-options") + 1])
        tail = argv[next(i for i, a in enumerate(argv) if a.endswith("/egate")) + 1:]
        args = build_parser().parse_args(tail)
        assert callable(args.func), command
