"""The gate's durable outbox: every passage record, signed, until the central system has it.

SQLite in WAL mode with `synchronous=FULL`: a record is on disk when `finish` returns, and it is
appended in the same transaction that closes the passage's journal entry, so a crash leaves
either the open passage (recorded as interrupted at the next start) or its record, never both
and never neither. Each record gets the next per-gate sequence number (AUTOINCREMENT: never
reused, even after rows are deleted); its id is `<gate>:<seq>`.

A record leaves only when central acknowledges it. One acknowledged by a backup receiver is
marked so (it is not sent to backups again) and stays until central has it too. The outbox never
drops a record: at `max_records` it reports itself unhealthy, which takes the lane out of service
before another passage can start; at 70 % it raises an alarm. A write that fails (the disk itself
is full) makes it unhealthy too, until central has taken records (or a write succeeds).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core import logs
from core.component import ComponentStatus, Component
from core.errors import EGateError
from sync import record as rec

log = logs.get("outbox")

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    envelope BLOB NOT NULL,
    created_at REAL NOT NULL,
    backup_ack_at REAL,
    backup_ack_by TEXT
);
CREATE TABLE IF NOT EXISTS journal (
    k INTEGER PRIMARY KEY CHECK (k = 1),
    passage TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clearances (
    doc TEXT NOT NULL,
    ended_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS clearances_doc ON clearances (doc, ended_at);
"""
CLEARANCES_KEPT_S = 366 * 86400.0   # the longest `screening.reuse.window_s`
ALARM_FRACTION = 0.7


class OutboxError(EGateError):
    """The outbox cannot be used (another gate's database, a damaged file)."""


@dataclass(frozen=True)
class Pending:
    seq: int
    id: str
    envelope: bytes


class Outbox(Component):
    name = "outbox"

    def __init__(self, path: Path, gate_id: str, signing_key: Ed25519PrivateKey | None, *, max_records: int = 200_000,
                 document_policy: str = "full", document_hash_key: bytes | None = None):
        self.path = Path(path)
        self.gate_id = gate_id
        self.key = signing_key
        self.max_records = max_records
        self.document_policy = document_policy
        self.document_hash_key = document_hash_key
        self._lock = threading.Lock()  # one connection, shared by the loop and the agent's worker threads
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        owner = self._meta("gate_id")
        if owner is None:
            self._set_meta("gate_id", gate_id)
        elif owner != gate_id:
            raise OutboxError(f"{self.path} holds the records of gate {owner!r}, not {gate_id!r}")
        self._alarmed = False
        self._write_error: str | None = None  # the last append or journal write failed (disk full, I/O)
        # One writer (this gate process): the next sequence number, the depth and whether a
        # journal entry exists are kept here, so an append is one INSERT in its transaction.
        (self._last_seq,) = self._db.execute(
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0)").fetchone()
        (self._depth,) = self._db.execute("SELECT COUNT(*) FROM records").fetchone()
        self._journal_open = self._db.execute("SELECT COUNT(*) FROM journal").fetchone()[0] > 0
        self._audit_seq = int(self._meta("audit_seq") or 0)
        # Cleared documents, for "one document used twice": a keyed hash of issuer and number (the key
        # never leaves this file), kept CLEARANCES_KEPT_S; the records themselves leave for central.
        salt = self._meta("clearance_salt")
        if salt is None and signing_key is not None:
            salt = os.urandom(32).hex()
            self._set_meta("clearance_salt", salt)
        self._salt = bytes.fromhex(salt) if salt else b""

    @classmethod
    def inspect(cls, path: Path) -> Outbox:
        """An existing outbox opened to look at (`egate sync status`): it cannot sign records."""
        if not Path(path).is_file():
            raise OutboxError(f"{path}: no outbox here")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'gate_id'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise OutboxError(f"{path}: not an outbox ({exc})") from None
        finally:
            db.close()
        if row is None:
            raise OutboxError(f"{path}: an outbox that belongs to no gate")
        return cls(path, row[0], None)

    # -- the passage journal ------------------------------------------------------------
    def open(self, passage: dict) -> None:
        """Durably note the passage now in progress (replacing any other)."""
        with self._lock:
            try:
                self._db.execute("INSERT INTO journal (k, passage) VALUES (1, ?) "
                                 "ON CONFLICT (k) DO UPDATE SET passage = excluded.passage", (json.dumps(passage),))
            except sqlite3.Error as exc:
                self._write_failed(exc)
                raise
            self._journal_open = True

    def pending(self) -> dict | None:
        """The passage a previous process left open, if any."""
        with self._lock:
            row = self._db.execute("SELECT passage FROM journal WHERE k = 1").fetchone()
        if row is None:
            return None
        try:
            passage = json.loads(row[0])
        except ValueError:
            passage = None
        if not isinstance(passage, dict) or not isinstance(passage.get("passage_id"), str):
            raise OutboxError(f"{self.path}: the journal entry is not a passage")
        return passage

    def finish(self, passage: dict) -> str:
        """Append the signed record of a finished passage (PassageRecord.as_dict() plus `ended`)
        and close the journal, in one transaction. Returns the record id."""
        cleared = self._clearance_key(passage) if passage.get("outcome") == "cleared" else None
        passage = {**passage, "document": rec.document_fields(passage.get("document") or {}, self.document_policy,
                                                              self.document_hash_key)}

        def close_journal(now: float) -> None:
            if cleared is not None:
                self._db.execute("INSERT INTO clearances (doc, ended_at) VALUES (?, ?)", (cleared, now))
                self._db.execute("DELETE FROM clearances WHERE ended_at < ?", (now - CLEARANCES_KEPT_S,))
            if self._journal_open:
                self._db.execute("DELETE FROM journal")

        with self._lock:
            record_id = self._append(passage, "passages", close_journal)
            self._journal_open, self._write_error = False, None
        self._check_quota()
        return record_id

    def add_audit(self, entry: dict) -> str | None:
        """Append an audit-trail entry (core/audit.py) as its own signed record
        (`sync.record.audit_passage`), once: the trail's sequence number is noted in the same
        transaction, and an entry at or below it is skipped, so catching up after a crash
        (`audit_seq`) sends each entry exactly once. The journal is left alone. Returns the record id."""
        passage = rec.audit_passage(entry)

        def note_seq(now: float) -> None:
            self._db.execute("INSERT INTO meta (key, value) VALUES ('audit_seq', ?) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(entry["seq"]),))

        with self._lock:
            if entry["seq"] <= self._audit_seq:
                return None
            record_id = self._append(passage, "the audit trail", note_seq)
            self._audit_seq = entry["seq"]
        self._check_quota()
        return record_id

    def _append(self, passage: dict, what: str, also: Callable[[float], None] | None = None) -> str:
        """Sign `passage` as the next record and insert it, with `also(now)`'s statements in the same
        transaction. The caller holds the lock. Returns the record id."""
        if self.key is None:
            raise OutboxError(f"{self.path} was opened to inspect, not to record {what}")
        seq = self._last_seq + 1
        record_id = f"{self.gate_id}:{seq}"
        envelope = rec.sign(rec.encode_body(gate=self.gate_id, seq=seq, passage=passage), self.key)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            now = time.time()
            self._db.execute("INSERT INTO records (seq, id, envelope, created_at) VALUES (?, ?, ?, ?)",
                             (seq, record_id, envelope, now))
            if also is not None:
                also(now)
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:  # after SQLITE_FULL or an I/O error SQLite has rolled back itself
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                self._write_failed(exc)
            raise
        self._last_seq, self._depth = seq, self._depth + 1
        return record_id

    def audit_seq(self) -> int:
        """The last audit-trail entry appended as a record."""
        return self._audit_seq

    # -- one document used twice ----------------------------------------------------------
    def _doc_key(self, issuer: str, number: str) -> str:
        return hmac.new(self._salt, f"{issuer}:{number}".encode(), hashlib.sha256).hexdigest()[:32]

    def _clearance_key(self, passage: dict) -> str | None:
        doc = passage.get("document") or {}
        if not doc.get("issuer") or not doc.get("number"):
            return None
        return self._doc_key(str(doc["issuer"]), str(doc["number"]))

    def recent_clearance(self, issuer: str, number: str, window_s: float) -> float | None:
        """How long ago this gate last cleared the document, if less than `window_s` ago; else None.
        An indexed lookup (doc, ended_at): its cost does not grow with the outbox."""
        since = time.time() - window_s
        with self._lock:
            (last,) = self._db.execute("SELECT MAX(ended_at) FROM clearances WHERE doc = ? AND ended_at >= ?",
                                       (self._doc_key(issuer, number), since)).fetchone()
        return None if last is None else max(0.0, time.time() - last)

    def rate(self, passage_id: str, rating: str) -> str:
        """Append a traveller's one-tap rating of a passage as its own signed record, linked to the
        passage by id (`sync.record.rating_passage`). The journal is left alone: a rating may come
        while the next passage is open. Returns the record id."""
        passage = rec.rating_passage(passage_id, rating)
        with self._lock:
            record_id = self._append(passage, "ratings")
        self._check_quota()
        return record_id

    # -- the agent's side ---------------------------------------------------------------
    def unacknowledged(self, limit: int, *, skip_backup_acked: bool = False) -> list[Pending]:
        """Oldest first: what central has not acknowledged (and, for a backup, what no backup has)."""
        where = "WHERE backup_ack_at IS NULL" if skip_backup_acked else ""
        with self._lock:
            rows = self._db.execute(f"SELECT seq, id, envelope FROM records {where} ORDER BY seq LIMIT ?",
                                    (limit,)).fetchall()
        return [Pending(*row) for row in rows]

    def acknowledged(self, ids: Iterable[str], by: str) -> int:
        """Central's acknowledgement removes records; a backup's marks them."""
        ids = list(ids)
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        with self._lock:
            if by == "central":
                cur = self._db.execute(f"DELETE FROM records WHERE id IN ({marks})", ids)
            else:
                cur = self._db.execute(f"UPDATE records SET backup_ack_at = ?, backup_ack_by = ? "
                                       f"WHERE id IN ({marks}) AND backup_ack_at IS NULL", [time.time(), by, *ids])
            n = cur.rowcount
            if by == "central":
                self._depth -= n
                if n:
                    self._write_error = None  # space was freed: the next passage may try again
        self._check_quota()
        return n

    def depth(self) -> int:
        return self._depth

    def oldest_age_s(self) -> float | None:
        with self._lock:
            (oldest,) = self._db.execute("SELECT MIN(created_at) FROM records").fetchone()
        return None if oldest is None else max(0.0, time.time() - oldest)

    def backlog(self) -> dict:
        with self._lock:
            total, backup_only, oldest = self._db.execute(
                "SELECT COUNT(*), COUNT(backup_ack_at), MIN(created_at) FROM records").fetchone()
            (last_seq,) = self._db.execute(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0)").fetchone()
        return {"depth": total, "acked_by_backup_only": backup_only, "last_seq": last_seq,
                "oldest_age_s": None if oldest is None else round(max(0.0, time.time() - oldest), 3),
                "max_records": self.max_records}

    def set_status(self, status: dict) -> None:
        """The agent's view (active endpoint, last acknowledgement, errors), for `egate sync status`."""
        self._set_meta("agent_status", json.dumps(status, sort_keys=True))

    def agent_status(self) -> dict | None:
        raw = self._meta("agent_status")
        return None if raw is None else json.loads(raw)

    # -- component ------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        b = self.backlog()
        return {"depth": b["depth"], "acked_by_backup_only": b["acked_by_backup_only"], "last_seq": b["last_seq"]}

    def status(self) -> ComponentStatus:
        depth = self.depth()
        full = depth >= self.max_records
        detail = f"{depth}/{self.max_records} records" + (" - full: no new passage until central takes them"
                                                          if full else "")
        if self._write_error is not None:  # the disk itself is full (or failing) before the quota is
            detail += f" - cannot write ({self._write_error}): no new passage until central takes records"
        return ComponentStatus(self.name, not full and self._write_error is None, detail, self.stats())

    def stop(self) -> None:
        with self._lock:
            self._db.close()

    def _write_failed(self, exc: sqlite3.Error) -> None:
        self._write_error = f"{type(exc).__name__}: {exc}"
        log.error("outbox_write_failed", error=self._write_error, depth=self._depth, max_records=self.max_records)

    def _check_quota(self) -> None:
        depth = self.depth()
        alarm = depth >= ALARM_FRACTION * self.max_records
        if alarm and not self._alarmed:
            log.warning("outbox_alarm", depth=depth, max_records=self.max_records)
        self._alarmed = alarm

    def _meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
