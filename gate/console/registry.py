"""The command tree: one registry for the serial console, `egate diag` and `egate officer`.

A command is a path of words (`show passage last`) plus free arguments (`show log 50`), the least
role that may run it, whether it actuates a device (only in maintenance mode) and whether it streams
(`watch`). Every word may be abbreviated to a unique prefix (`sh st`); a path one word short that
only one command completes is that command (`sh pa` = `show passage last`). Roles: viewer <
technician < admin for the gate's staff; officer beside them (the viewer's commands and its own).

This module imports nothing of the gate: the console process completes words from the paths the
gate sends at login.
"""
from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

RANK = {"viewer": 1, "technician": 2, "admin": 3}


def permits(role: str, needed: str) -> bool:
    """May `role` run a command that needs `needed`?"""
    if needed == "officer" or role == "officer":
        return role == needed or (role == "officer" and needed == "viewer")
    return RANK.get(role, 0) >= RANK[needed]


class CommandError(Exception):
    """A line that names no command the caller may run (unknown, ambiguous, incomplete, usage)."""


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    role: str
    help: str
    run: Callable[[Any], Awaitable[dict]] | None = None   # async (Call) -> data
    render: Callable[[dict], str] | None = None           # data -> lean text
    args: str = ""                  # usage of the free arguments, e.g. "[N]"
    nargs: tuple[int, int] = (0, 0)
    maintenance: bool = False       # actuates a device: refused outside maintenance mode
    stream: bool = False            # answers until cancelled (watch)

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def usage(self) -> str:
        return f"{self.name} {self.args}".rstrip()


def _step(paths: Sequence[tuple[str, ...]], depth: int, word: str) -> list[tuple[str, ...]]:
    """The paths whose word at `depth` is `word`, or, when none is, those it is a prefix of."""
    longer = [p for p in paths if len(p) > depth]
    exact = [p for p in longer if p[depth] == word]
    return exact or [p for p in longer if p[depth].startswith(word)]


def _words_at(paths: Iterable[tuple[str, ...]], depth: int) -> list[str]:
    return sorted({p[depth] for p in paths if len(p) > depth})


def resolve_path(paths: Sequence[tuple[str, ...]], words: Sequence[str]) -> tuple[tuple[str, ...], list[str]]:
    """The one path `words` name and the words left over as arguments; CommandError otherwise."""
    if not words:
        raise CommandError("empty command")
    candidates = list(paths)
    for depth, word in enumerate(words):
        matched = _step(candidates, depth, word.lower())
        if not matched:
            complete = [p for p in candidates if len(p) == depth]
            if complete:      # the rest are arguments of a command this long
                return complete[0], list(words[depth:])
            said = " ".join(words[:depth + 1])
            raise CommandError(f'unknown command "{said}" (type help)')
        if len(_words_at(matched, depth)) > 1:
            raise CommandError(f'ambiguous command "{" ".join(words[:depth + 1])}": '
                               + " ".join(_words_at(matched, depth)))
        candidates = matched
    done = [p for p in candidates if len(p) == len(words)]
    if done:
        return done[0], []
    if len(candidates) == 1:
        return candidates[0], []
    prefix = " ".join(candidates[0][:len(words)])
    raise CommandError(f'incomplete command "{" ".join(words)}": {prefix} '
                       + "|".join(_words_at(candidates, len(words))))


def complete(paths: Sequence[tuple[str, ...]], line: str) -> tuple[str, list[str]]:
    """Tab completion: the line extended as far as it is unambiguous (earlier words written out in
    full), and the candidates for the word being typed (empty when there is nothing to offer)."""
    words = line.split()
    partial = "" if not words or line[-1:].isspace() else words.pop()
    candidates, fixed = list(paths), []
    for depth, word in enumerate(words):
        candidates = _step(candidates, depth, word.lower())
        at = _words_at(candidates, depth)
        if len(at) != 1:
            return line, []
        fixed.append(at[0])
    options = [w for w in _words_at(candidates, len(words)) if w.startswith(partial.lower())]
    if not options:
        return line, []
    if len(options) == 1:
        return " ".join(fixed + options) + " ", options
    common = os.path.commonprefix(options)
    return " ".join(fixed + [common]) if common else " ".join(fixed) + " " if fixed else "", options


class Registry:
    def __init__(self, commands: Iterable[Command]):
        self.commands = {c.path: c for c in commands}

    def allowed(self, role: str) -> list[Command]:
        return [c for c in self.commands.values() if permits(role, c.role)]

    def paths(self, role: str) -> list[tuple[str, ...]]:
        return [c.path for c in self.allowed(role)]

    def resolve(self, words: Sequence[str]) -> tuple[Command, list[str]]:
        """The command `words` name (any role: a denied one is refused by name, and audited) and its
        arguments, checked against its usage."""
        path, args = resolve_path(list(self.commands), words)
        command = self.commands[path]
        lo, hi = command.nargs
        if not lo <= len(args) <= hi:
            raise CommandError(f"usage: {command.usage}")
        return command, args

    def help(self, role: str, words: Sequence[str] = ()) -> list[tuple[str, str]]:
        """(usage, help) of the commands `role` may run, those under `words` when given."""
        shown = [c for c in self.allowed(role) if c.path[0] != "?"]
        if words:
            paths = [c.path for c in shown]
            for depth, word in enumerate(words):
                paths = _step(paths, depth, word.lower())
            shown = [c for c in shown if c.path in paths]
        return [(c.usage, c.help) for c in sorted(shown, key=lambda c: c.path)]
