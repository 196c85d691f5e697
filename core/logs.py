"""Structured logging: JSON lines in production, readable on a terminal.

A redaction processor runs before rendering, so no caller can leak a biometric
sample, a template or a secret by passing it as a field: raw bytes, arrays and
any key that names a secret are replaced by a marker saying what was dropped.
"""
from __future__ import annotations

import collections
import logging
import re
import sys

import structlog

from core.settings import Secret

_SECRET_KEY = re.compile(r"(passw(or)?d|passphrase|secret|private|_key$|^key$|token|pin$|image|template|sample|embedding|minutiae)", re.I)


def _redact_value(key: str, value):
    if isinstance(value, Secret) or (_SECRET_KEY.search(key) and value is not None):
        return "[redacted]"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"[{len(value)} bytes dropped]"
    if type(value).__module__ == "numpy" and hasattr(value, "nbytes"):
        return f"[array {getattr(value, 'shape', '')} dropped]"
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(key, v) for v in value]
    return value


def redact(_logger, _method, event_dict):
    for key in list(event_dict):
        if key != "event":
            event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


# The latest lines, as logged (redacted), for the technician console's `show log`.
RECENT: collections.deque[dict] = collections.deque(maxlen=500)


def keep_recent(_logger, _method, event_dict):
    RECENT.append(dict(event_dict))
    return event_dict


def configure(level: str = "info", fmt: str = "auto", stream=None, **bound) -> None:
    """Configure structlog once per process; `bound` (e.g. gate_id) goes on every line."""
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    renderer = structlog.dev.ConsoleRenderer(colors=False) if fmt == "console" else structlog.processors.JSONRenderer(sort_keys=True)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    fixed = dict(bound)

    def add_bound(_logger, _method, event_dict):
        # Not contextvars: worker and driver threads do not inherit them, and every line needs the gate id.
        for key, value in fixed.items():
            event_dict.setdefault(key, value)
        return event_dict

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_bound,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            keep_recent,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )


def get(name: str | None = None):
    return structlog.get_logger(name) if name else structlog.get_logger()
