"""The console socket's protocol: one JSON object per line, both ways (docs/console.md, "Protocol").

    -> {"op": "login", "user": str, "password": str, "channel": str}
    <- {"ok": true, "user", "role", "gate", "idle_timeout_s", "commands": [[word, ...], ...]}
    -> {"op": "run", "argv": [str, ...]}
    <- {"progress": str} ... then {"ok": true, "command", "data": {...}, "text": str}
                          or {"ok": false, "error": str}; `watch` sends {"alert": {...}} until cancelled
    -> {"op": "cancel"}                   ends the command in progress (its answer: cancelled)
    -> {"op": "logout", "why": "user" | "idle"}   <- {"ok": true, "bye": true}, then the gate closes the socket

A failed login says `retry_after_s` when the name is locked. One command at a time per connection.
"""
from __future__ import annotations

import json

from core.errors import ParseError

MAX_LINE = 64 * 1024
MAX_ARGV = 16
MAX_WORD = 200
OPS = ("login", "run", "cancel", "logout")


class ProtocolError(ParseError):
    """A line that is not one of the protocol's messages."""


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=True, default=str).encode() + b"\n"


def decode(line: bytes) -> dict:
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not a JSON line ({exc})") from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    return message


def _text(message: dict, key: str, limit: int) -> str:
    value = message.get(key)
    if not isinstance(value, str) or len(value) > limit:
        raise ProtocolError(f"{key} must be a string of at most {limit} characters")
    return value


def request(line: bytes) -> dict:
    """A client's request, checked: its op and the fields that op takes."""
    message = decode(line)
    op = message.get("op")
    if op not in OPS:
        raise ProtocolError(f"op must be one of {', '.join(OPS)}")
    if op == "login":
        for key, limit in (("user", 64), ("password", 1024), ("channel", 128)):
            _text(message, key, limit)
    elif op == "run":
        argv = message.get("argv")
        if (not isinstance(argv, list) or not 1 <= len(argv) <= MAX_ARGV
                or not all(isinstance(w, str) and 0 < len(w) <= MAX_WORD for w in argv)):
            raise ProtocolError(f"argv must be 1 to {MAX_ARGV} non-empty words of at most {MAX_WORD} characters")
    return message


def alert_line(alert: dict) -> str:
    """One officer alert (`{"alert": ...}` of `watch`, `show alerts`) as a line for a terminal."""
    return (f"{str(alert['at'])[11:19]} {alert['kind']} {alert['reason']} {alert.get('passage_id') or '-'} "
            f"{alert['detail']}")[:158]
