"""Append-only, hash-chained audit trail (IEC 62443 CR 2.8 auditable events).

Each JSON line carries its sequence number, the SHA-256 of the previous line's
entry and its own hash over the canonical encoding of everything else. Editing,
deleting, inserting or reordering any entry breaks the chain at that point;
`verify` names the first broken link. Every append is fsync'd before it returns
so an acknowledged action is never lost to a power cut.

Truncating the tail cannot be seen from the file alone: every entry also leaves
for central as a signed record (`subscribe`; the gate wires it to the outbox), so
central holds the chain too.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from core import logs
from core.errors import EGateError

log = logs.get("audit")

GENESIS = "0" * 64

# What the trail records; anything else is a programming error, refused at append.
ACTIONS = frozenset({
    "config.loaded", "config.changed", "maintenance.enter", "maintenance.exit",
    "door.override", "device.test", "tamper", "technician.login", "technician.logout",
    "officer.action", "emergency", "gate.start", "gate.stop", "watchlist.updated",
    "service.out", "service.in", "recovery", "passage.interrupted", "officer.alert", "door.fault",
    # the console and the officer commands (gate/console): every login, command and failure
    "login.failed", "officer.login", "officer.logout", "console.command", "accounts.changed",
})


class AuditError(EGateError):
    pass


def _digest(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Broken:
    line: int          # 1-based line number in the file
    reason: str


class AuditLog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._seq, self._prev = self._tail()
        self._subscribers: list[Callable[[dict], None]] = []

    def subscribe(self, fn: Callable[[dict], None]) -> None:
        """Call `fn(entry)` after each append, in order, under the trail's lock (so a copy elsewhere
        keeps the trail's order). An error in `fn` is the caller's to log: the entry is on disk."""
        self._subscribers.append(fn)

    def unsubscribe(self, fn: Callable[[dict], None]) -> None:
        self._subscribers.remove(fn)

    def entries(self, after_seq: int = 0) -> Iterator[dict]:
        """The entries after `after_seq`, oldest first (read from the file)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for raw in fh:
                entry = json.loads(raw)
                if entry["seq"] > after_seq:
                    yield entry

    def _tail(self) -> tuple[int, str]:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return 0, GENESIS
        broken = verify(self.path)
        if broken:
            raise AuditError(f"{self.path}: refusing to append to a broken trail: line {broken.line}: {broken.reason}")
        last = self.path.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        entry = json.loads(last)
        return entry["seq"], entry["hash"]

    def append(self, actor: str, action: str, /, **details) -> dict:
        if action not in ACTIONS:
            raise AuditError(f"unknown audit action {action!r}")
        with self._lock:
            entry = {
                "seq": self._seq + 1,
                "ts": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                "actor": actor,
                "action": action,
                "details": details,
                "prev": self._prev,
            }
            entry["hash"] = _digest(entry)
            line = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._seq, self._prev = entry["seq"], entry["hash"]
            for fn in self._subscribers:
                try:
                    fn(entry)
                except Exception as exc:  # noqa: BLE001 - the entry is on disk; the copy is caught up later
                    log.error("audit_subscriber_failed", action=action, error=f"{type(exc).__name__}: {exc}")
            return entry


def verify(path: str | Path) -> Broken | None:
    """Return the first broken link, or None if the whole trail is intact."""
    prev, seq = GENESIS, 0
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                entry = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return Broken(lineno, "not a JSON entry")
            if not isinstance(entry, dict) or not {"seq", "prev", "hash"} <= entry.keys():
                return Broken(lineno, "entry lacks seq/prev/hash")
            if entry["hash"] != _digest(entry):
                return Broken(lineno, "content does not match its hash (edited entry)")
            if entry["prev"] != prev:
                return Broken(lineno, "previous-hash link broken (entry deleted, inserted or reordered before this line)")
            if entry["seq"] != seq + 1:
                return Broken(lineno, f"sequence jumps from {seq} to {entry['seq']}")
            prev, seq = entry["hash"], entry["seq"]
    return None
