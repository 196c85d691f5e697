"""Machine-readable zone (ICAO 9303 Parts 3-7). First cut: check digit only."""
from __future__ import annotations

from gate.errors import ParseError


class MrzError(ParseError):
    """The MRZ text is not a valid TD1/TD2/TD3/MRV-A/MRV-B zone."""


_WEIGHTS = (7, 3, 1)


def char_value(c: str) -> int:
    """ICAO 9303 Part 3 value of one MRZ character: 0-9 digits, A=10..Z=35, '<'=0."""
    if "0" <= c <= "9":
        return ord(c) - 48
    if "A" <= c <= "Z":
        return ord(c) - 55
    if c == "<":
        return 0
    raise MrzError(f"character {c!r} is not allowed in an MRZ")


def check_digit(s: str) -> int:
    """ICAO 9303 check digit of `s` (weights 7-3-1 repeating, modulo 10)."""
    return sum(char_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(s)) % 10
