"""Typed errors shared by every layer.

Each parser raises a subclass of `ParseError` naming what it was parsing and
what was wrong, so a caller can refuse bad input without losing anything else.
"""


class EGateError(Exception):
    """Base of every error this project raises on purpose."""


class ParseError(EGateError, ValueError):
    """Input bytes or text did not follow the expected format."""


class ConfigError(EGateError):
    """A configuration file is unreadable or invalid.

    The message always names the file, the key path, what was found and what
    was expected, so a technician can fix it without reading the code.
    """

    def __init__(self, path, key: str, found: str, expected: str):
        self.path = str(path)
        self.key = key
        self.found = found
        self.expected = expected
        super().__init__(f"{self.path}: {key}: expected {expected}, found {found}")


class DeviceError(EGateError):
    """A device did not answer, answered nonsense or went away."""
