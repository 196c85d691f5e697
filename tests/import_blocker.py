"""Run Python as a gate would: with `simulators`, `bench` and `tests` impossible to import.

The checkout puts those folders on `sys.path` (and a test or demo machine installs
egate-simulators), so "not installed" is simulated by a `sys.meta_path` finder, installed
first, that refuses them. `blocked_python(code)` is an argv for `subprocess`.
"""
from __future__ import annotations

import sys

NOT_ON_A_GATE = ("simulators", "bench", "tests")

PRELUDE = f"""\
import sys

class _NotOnAGate:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {NOT_ON_A_GATE!r}:
            raise ImportError(f"{{name}} is not installed on a gate", name=name)
        return None

sys.meta_path.insert(0, _NotOnAGate())
"""


def blocked_python(code: str) -> list[str]:
    """`python -c` running `code` after the blocker is in place."""
    return [sys.executable, "-c", PRELUDE + code]
