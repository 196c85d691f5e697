"""Sections of the docs generated from code: a marked block in a markdown file, rewritten by a
`python -m <module> --write DOC` entry point and checked by a test that fails when it is stale."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return (f"<!-- generated: {name}; regenerate with: python -m {name} --write DOC -->",
            f"<!-- end of generated: {name} -->")


def splice(doc: str, name: str, body: str) -> str:
    """`doc` with the block between `name`'s markers replaced by `body`."""
    begin, end = markers(name)
    head, sep, rest = doc.partition(begin + "\n")
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise ValueError(f"the document has no markers for {name}")
    return head + begin + "\n" + body + end + tail


def section(doc: str, name: str) -> str:
    """The block currently between `name`'s markers."""
    begin, end = markers(name)
    return doc.partition(begin + "\n")[2].partition(end)[0]


def main(name: str, render: Callable[[], str], argv: list[str]) -> int:
    """Print the generated text, or with `--write DOC` splice it into DOC."""
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(splice(path.read_text(), name, render()))
        return 0
    if argv:
        print(f"usage: python -m {name} [--write DOC]", file=sys.stderr)
        return 2
    sys.stdout.write(render())
    return 0
