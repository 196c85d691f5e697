"""A receiver's database: SQLite (embedded) or PostgreSQL, one schema, versioned migrations.

A receiver keeps no state but this database, so several receivers can share one PostgreSQL. Every
write is one transaction; a batch's verdicts are answered only after it committed. Inserts are
idempotent on the record id (`INSERT ... ON CONFLICT (id) DO NOTHING`); an id that was already
there is a duplicate when its stored envelope is byte-identical and a conflict otherwise, and
that verdict is the same whichever receiver, and in whichever order, the copies arrived.

Tables (migration 1): schema_version, records, conflicts, refusals, clients, heartbeats_latest,
heartbeats; (migration 2) bundles. docs/sync.md, "Receiver", describes each column.

The methods here block; the server calls them from its worker threads (one for SQLite, whose
writes are serial anyway; `database.workers` for PostgreSQL, one connection each).
"""
from __future__ import annotations

import datetime as _dt
import functools
import json
import sqlite3
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import psycopg.errors

from core.errors import EGateError
from sync.receiver.config import DatabaseTarget

_TYPES = {
    "sqlite": {"bytes": "BLOB", "ts": "TEXT", "json": "TEXT"},
    "postgresql": {"bytes": "BYTEA", "ts": "TIMESTAMPTZ", "json": "JSONB"},
}

# Each migration is a list of statements; migration n brings the schema to version n.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE records (
            id TEXT PRIMARY KEY,
            gate TEXT NOT NULL,
            seq BIGINT NOT NULL,
            passage TEXT NOT NULL,
            outcome TEXT NOT NULL,
            started TEXT NOT NULL,
            ended TEXT NOT NULL,
            envelope {bytes} NOT NULL,
            received_at {ts} NOT NULL,
            via TEXT NOT NULL,
            forwarded_at {ts},
            forward_after {ts},
            forward_error TEXT)""",
        "CREATE INDEX records_gate_seq ON records (gate, seq)",
        "CREATE INDEX records_unforwarded ON records (received_at, gate, seq) WHERE forwarded_at IS NULL",
        """CREATE TABLE conflicts (
            id TEXT NOT NULL,
            gate TEXT NOT NULL,
            envelope {bytes} NOT NULL,
            received_at {ts} NOT NULL,
            client TEXT NOT NULL)""",
        "CREATE INDEX conflicts_id ON conflicts (id)",
        """CREATE TABLE refusals (
            client TEXT NOT NULL,
            reason TEXT NOT NULL,
            count BIGINT NOT NULL,
            last_at {ts} NOT NULL,
            PRIMARY KEY (client, reason))""",
        """CREATE TABLE clients (
            cn TEXT PRIMARY KEY,
            first_seen {ts} NOT NULL,
            last_seen {ts} NOT NULL,
            requests BIGINT NOT NULL)""",
        """CREATE TABLE heartbeats_latest (
            gate TEXT PRIMARY KEY,
            at TEXT NOT NULL,
            received_at {ts} NOT NULL,
            state TEXT NOT NULL,
            health {json} NOT NULL,
            outbox_depth BIGINT NOT NULL,
            oldest_age_s DOUBLE PRECISION,
            counters {json} NOT NULL,
            in_service_s DOUBLE PRECISION NOT NULL,
            via TEXT NOT NULL)""",
        """CREATE TABLE heartbeats (
            gate TEXT NOT NULL,
            at TEXT NOT NULL,
            received_at {ts} NOT NULL,
            state TEXT NOT NULL,
            health {json} NOT NULL,
            outbox_depth BIGINT NOT NULL,
            oldest_age_s DOUBLE PRECISION,
            counters {json} NOT NULL,
            in_service_s DOUBLE PRECISION NOT NULL,
            via TEXT NOT NULL)""",
        "CREATE INDEX heartbeats_gate_received ON heartbeats (gate, received_at)",
        "CREATE INDEX heartbeats_received ON heartbeats (received_at)",
    ],
    [   # 2: downstream bundles central publishes and every receiver serves (sync/receiver/bundles.py)
        """CREATE TABLE bundles (
            kind TEXT NOT NULL,
            version BIGINT NOT NULL,
            created TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size BIGINT NOT NULL,
            envelope {bytes} NOT NULL,
            stored_at {ts} NOT NULL,
            source TEXT NOT NULL,
            PRIMARY KEY (kind, version))""",
    ],
    [   # 3: cleared crossings per document, for "one document used twice" (POST /v1/crossings)
        """CREATE TABLE crossings (
            record_id TEXT PRIMARY KEY,
            doc TEXT NOT NULL,
            direction TEXT NOT NULL,
            gate TEXT NOT NULL,
            ended TEXT NOT NULL)""",
        "CREATE INDEX crossings_doc ON crossings (doc, ended)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
_MIGRATION_LOCK = 0x65676174  # pg_advisory_xact_lock key: one receiver migrates at a time
_CHUNK = 200                  # rows per multi-row statement (far under either database's parameter limit)

DIRECT = "direct"             # `via` of a record a gate sent itself


class StoreError(EGateError):
    """The database refused or cannot be reached; nothing of the failed transaction was kept."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (or is busy beyond the timeout): try again later."""


class _Retry(StoreUnavailable):
    """PostgreSQL rolled the transaction back (deadlock, serialization): run it again."""


class _Lost(StoreUnavailable):
    """A connection that was open failed (the server restarted, a proxy dropped it): one more
    try on a new connection may well succeed. Every write here is idempotent or a counter, so
    running a transaction again whose commit was lost in flight keeps nothing twice."""


@dataclass(frozen=True)
class Incoming:
    """A verified record, ready to insert."""
    id: str
    gate: str
    seq: int
    passage: str
    outcome: str
    started: str
    ended: str
    envelope: bytes
    crossing: tuple[str, str] | None = None   # (document key, direction) of a cleared passage


def _retried(method):
    """Run a Store method again after a deadlock or a lost connection (see `Store._again`)."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        return self._again(method, *args, **kwargs)
    return wrapper


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _chunks(items, n=_CHUNK):
    for i in range(0, len(items), n):
        yield items[i:i + n]


class Store:
    """One receiver's handle on its database; thread-safe (a connection per thread)."""

    def __init__(self, target: DatabaseTarget, *, central: bool = False, create: bool = True):
        self.target = target
        self.create = create    # False: a SQLite file that does not exist is an error, not a new database
        self.kind = target.kind
        self.central = central  # at central a record has arrived: forwarded_at = received_at
        self._local = threading.local()
        self._all: list = []
        self._lock = threading.Lock()   # guards _all, and the one SQLite connection
        self._closed = False

    # ------------------------------------------------------------------ connections

    def _connect(self):
        if self.kind == "sqlite":
            if self.create:
                self.target.path.parent.mkdir(parents=True, exist_ok=True)
            elif not self.target.path.is_file():
                raise sqlite3.OperationalError(f"no database file {self.target.path}")
            conn = sqlite3.connect(str(self.target.path), isolation_level=None, check_same_thread=False,
                                   timeout=self.target.connect_timeout_s * 2)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={self.target.connect_timeout_s * 2000}")
            return conn
        kwargs = {"connect_timeout": self.target.connect_timeout_s, "application_name": "egate-receiver"}
        if self.target.password is not None:
            kwargs["password"] = self.target.password.reveal().decode()
        return psycopg.connect(self.target.dsn, autocommit=False, **kwargs)

    def _conn(self):
        if self._closed:
            raise StoreError("the store is closed")
        if self.kind == "sqlite":  # one connection, used under self._lock
            conn = getattr(self, "_sqlite", None)
            if conn is None:
                conn = self._sqlite = self._connect()
            return conn
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._local.conn = self._connect()
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self):
        if self.kind == "sqlite":
            conn, self._sqlite = getattr(self, "_sqlite", None), None
        else:
            conn, self._local.conn = getattr(self._local, "conn", None), None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    def close(self) -> None:
        self._closed = True
        with self._lock:
            conns, self._all = self._all, []
            sqlite_conn, self._sqlite = getattr(self, "_sqlite", None), None
        for conn in conns + ([sqlite_conn] if sqlite_conn else []):
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    @contextmanager
    def _tx(self, write: bool = True):
        """One transaction; a cursor whose `run(sql, params)` takes `?` placeholders on both databases."""
        lock = self._lock if self.kind == "sqlite" else _NoLock
        with lock:
            try:
                conn = self._conn()
            except (sqlite3.Error, psycopg.Error) as exc:
                raise StoreUnavailable(f"{self.target.display()}: cannot connect ({exc})") from None
            try:
                if self.kind == "sqlite":
                    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                cur = _Cursor(conn.cursor(), self.kind)
                yield cur
                conn.commit()
            except BaseException as exc:
                try:
                    conn.rollback()
                except Exception:  # noqa: BLE001 - the connection is gone: drop it below
                    pass
                if isinstance(exc, psycopg.errors.TransactionRollback):
                    raise _Retry(f"{self.target.display()}: {type(exc).__name__}: {exc}") from None
                if isinstance(exc, (sqlite3.OperationalError, psycopg.OperationalError, psycopg.InterfaceError)):
                    self._drop()
                    if self.kind == "postgresql":
                        raise _Lost(f"{self.target.display()}: {type(exc).__name__}: {exc}") from None
                    raise StoreUnavailable(f"{self.target.display()}: {type(exc).__name__}: {exc}") from None
                if isinstance(exc, (sqlite3.Error, psycopg.Error)):
                    raise StoreError(f"{self.target.display()}: {type(exc).__name__}: {exc}") from exc
                raise

    def _ts(self, value: _dt.datetime | None):
        if value is None or self.kind == "postgresql":
            return value
        return value.astimezone(_dt.timezone.utc).isoformat(timespec="microseconds")

    def _read_ts(self, value) -> _dt.datetime | None:
        if value is None or isinstance(value, _dt.datetime):
            return value
        return _dt.datetime.fromisoformat(value)

    def _read_json(self, value):
        return json.loads(value) if isinstance(value, str) else value

    # ------------------------------------------------------------------ schema

    @_retried
    def schema_version(self) -> int:
        """The database's schema version; 0 for a database the receiver never initialised."""
        with self._tx(write=False) as cur:
            return self._version(cur)

    def _version(self, cur) -> int:
        if self.kind == "sqlite":
            exists = cur.run("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
        else:
            exists = cur.run("SELECT to_regclass('schema_version')").fetchone()[0]
        if not exists:
            return 0
        return cur.run("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]

    @_retried
    def migrate(self) -> tuple[int, int]:
        """Bring the schema to SCHEMA_VERSION; (from, to). Safe when receivers start together."""
        types = _TYPES[self.kind]
        with self._tx() as cur:
            if self.kind == "postgresql":
                cur.run(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            current = self._version(cur)
            if current > SCHEMA_VERSION:
                raise StoreError(f"{self.target.display()}: schema version {current} is newer than this "
                                 f"receiver's ({SCHEMA_VERSION}); upgrade the receiver")
            if current == 0:
                cur.run(f"CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at {types['ts']} NOT NULL)")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[version - 1]:
                    cur.run(stmt.format(**types))
                cur.run("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, self._ts(utcnow())))
        return current, SCHEMA_VERSION

    # ------------------------------------------------------------------ records

    def _again(self, fn, *args, **kwargs):
        """fn(), run again after a deadlock (up to 3 times) or once after a lost connection."""
        lost = rolled_back = 0
        while True:
            try:
                return fn(self, *args, **kwargs)
            except _Retry:
                rolled_back += 1
                if rolled_back >= 3:
                    raise
            except _Lost:
                lost += 1
                if lost >= 2:
                    raise

    @_retried
    def ingest(self, records: list[Incoming], *, via: str, client: str,
                refusals: Counter | None = None) -> list[str]:
        """Insert verified records in one transaction; a verdict per record, in order:
        "stored", "duplicate" or "conflict". `refusals` (reason -> count, from the checks before
        the database) are counted in the same transaction, with the conflicts found here. An empty
        batch still writes (the client's last_seen): a probe proves the whole path."""
        now = utcnow()
        first: dict[str, int] = {}
        for i, rec in enumerate(records):
            first.setdefault(rec.id, i)
        # Inserted in id order: two receivers inserting overlapping batches lock rows in one order
        # (no deadlock between them).
        uniques = sorted((records[i] for i in first.values()), key=lambda r: r.id)
        forwarded = self._ts(now) if self.central else None
        with self._tx() as cur:
            inserted: set[str] = set()
            for chunk in _chunks(uniques):
                values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
                params = [p for r in chunk for p in (r.id, r.gate, r.seq, r.passage, r.outcome, r.started, r.ended,
                                                     r.envelope, self._ts(now), via, forwarded)]
                rows = cur.run("INSERT INTO records (id, gate, seq, passage, outcome, started, ended, envelope, "
                               f"received_at, via, forwarded_at) VALUES {values} ON CONFLICT (id) DO NOTHING "
                               "RETURNING id", params).fetchall()
                inserted.update(row[0] for row in rows)
            crossed = [r for r in uniques if r.id in inserted and r.crossing is not None]
            for chunk in _chunks(crossed):
                values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
                cur.run(f"INSERT INTO crossings (record_id, doc, direction, gate, ended) VALUES {values} "
                        "ON CONFLICT (record_id) DO NOTHING",
                        [p for r in chunk for p in (r.id, r.crossing[0], r.crossing[1], r.gate, r.ended)])
            stored_bytes = {r.id: r.envelope for r in uniques if r.id in inserted}
            others = [r.id for r in uniques if r.id not in inserted]
            for chunk in _chunks(others):
                marks = ", ".join("?" * len(chunk))
                for rid, env in cur.run(f"SELECT id, envelope FROM records WHERE id IN ({marks})", chunk):
                    stored_bytes[rid] = bytes(env)
            verdicts, conflicts = [], []
            for i, rec in enumerate(records):
                if rec.id in inserted and first[rec.id] == i:
                    verdicts.append("stored")
                elif stored_bytes.get(rec.id) == rec.envelope:
                    verdicts.append("duplicate")
                else:
                    verdicts.append("conflict")
                    conflicts.append(rec)
            for chunk in _chunks(conflicts):
                values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
                cur.run(f"INSERT INTO conflicts (id, gate, envelope, received_at, client) VALUES {values}",
                        [p for r in chunk for p in (r.id, r.gate, r.envelope, self._ts(now), client)])
            counts = Counter(refusals or {})
            if conflicts:
                counts["conflict"] += len(conflicts)
            self._count(cur, client, counts, now)
            self._touch(cur, client, now)
        return verdicts

    def _count(self, cur, client: str, counts: Counter, now) -> None:
        for reason, n in sorted(counts.items()):
            if n:
                cur.run("INSERT INTO refusals (client, reason, count, last_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (client, reason) DO UPDATE SET count = refusals.count + excluded.count, "
                        "last_at = excluded.last_at", (client, reason, n, self._ts(now)))

    def _touch(self, cur, client: str, now) -> None:
        cur.run("INSERT INTO clients (cn, first_seen, last_seen, requests) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (cn) DO UPDATE SET last_seen = excluded.last_seen, requests = clients.requests + 1",
                (client, self._ts(now), self._ts(now)))

    @_retried
    def count_refusals(self, client: str, counts: Counter) -> None:
        """Count refusals of a whole request (bad body, too large, ...) for `client`."""
        now = utcnow()
        with self._tx() as cur:
            self._count(cur, client, counts, now)
            self._touch(cur, client, now)

    @_retried
    def record_count(self) -> int:
        with self._tx(write=False) as cur:
            return cur.run("SELECT COUNT(*) FROM records").fetchone()[0]

    @_retried
    def records(self, gate: str | None = None) -> list[dict]:
        """Every record row (tests, tools): id, gate, seq, envelope, via, received_at, forwarded_at."""
        sql = "SELECT id, gate, seq, envelope, via, received_at, forwarded_at, forward_error FROM records"
        params: tuple = ()
        if gate is not None:
            sql, params = sql + " WHERE gate = ?", (gate,)
        with self._tx(write=False) as cur:
            rows = cur.run(sql + " ORDER BY gate, seq", params).fetchall()
        return [{"id": r[0], "gate": r[1], "seq": r[2], "envelope": bytes(r[3]), "via": r[4],
                 "received_at": self._read_ts(r[5]), "forwarded_at": self._read_ts(r[6]), "forward_error": r[7]}
                for r in rows]

    @_retried
    def last_crossing(self, doc: str) -> dict | None:
        """The latest cleared crossing of a document (by the record's end): direction, gate, ended."""
        with self._tx(write=False) as cur:
            row = cur.run("SELECT direction, gate, ended FROM crossings WHERE doc = ? ORDER BY ended DESC LIMIT 1",
                          (doc,)).fetchone()
        return None if row is None else {"direction": row[0], "gate": row[1], "ended": row[2]}

    # ------------------------------------------------------------------ forwarding (role backup)

    @_retried
    def claim_unforwarded(self, limit: int, max_bytes: int, lease_s: float) -> list[tuple[str, bytes]]:
        """The oldest records central has not acknowledged, at most `limit` and `max_bytes` of
        envelopes, leased for `lease_s` so another receiver on this database skips them meanwhile."""
        now = utcnow()
        lock = " FOR UPDATE SKIP LOCKED" if self.kind == "postgresql" else ""
        with self._tx() as cur:
            rows = cur.run("SELECT id, envelope FROM records WHERE forwarded_at IS NULL AND "
                           "(forward_after IS NULL OR forward_after <= ?) ORDER BY received_at, gate, seq "
                           f"LIMIT ?{lock}", (self._ts(now), limit)).fetchall()
            batch, size = [], 0
            for rid, env in rows:
                env = bytes(env)
                if batch and size + len(env) + 8 > max_bytes:
                    break
                batch.append((rid, env))
                size += len(env) + 8
            until = self._ts(now + _dt.timedelta(seconds=lease_s))
            for chunk in _chunks([rid for rid, _ in batch]):
                marks = ", ".join("?" * len(chunk))
                cur.run(f"UPDATE records SET forward_after = ? WHERE id IN ({marks})", [until, *chunk])
        return batch

    @_retried
    def mark_forwarded(self, ids: list[str]) -> None:
        now = self._ts(utcnow())
        with self._tx() as cur:
            for chunk in _chunks(ids):
                marks = ", ".join("?" * len(chunk))
                cur.run("UPDATE records SET forwarded_at = ?, forward_after = NULL, forward_error = NULL "
                        f"WHERE forwarded_at IS NULL AND id IN ({marks})", [now, *chunk])

    @_retried
    def release(self, ids: list[str]) -> None:
        """Give leased records back at once (central was unreachable: nothing was decided)."""
        with self._tx() as cur:
            for chunk in _chunks(ids):
                marks = ", ".join("?" * len(chunk))
                cur.run(f"UPDATE records SET forward_after = NULL WHERE forwarded_at IS NULL AND id IN ({marks})",
                        chunk)

    @_retried
    def defer(self, refused: list[tuple[str, str]], retry_s: float) -> None:
        """Records central refused (id, reason): kept, tried again after `retry_s`, the reason shown."""
        until = self._ts(utcnow() + _dt.timedelta(seconds=retry_s))
        with self._tx() as cur:
            for rid, reason in refused:
                cur.run("UPDATE records SET forward_after = ?, forward_error = ? WHERE forwarded_at IS NULL AND id = ?",
                        (until, reason, rid))

    @_retried
    def backlog(self) -> dict:
        with self._tx(write=False) as cur:
            n, oldest, refused = cur.run(
                "SELECT COUNT(*), MIN(received_at), COUNT(forward_error) FROM records WHERE forwarded_at IS NULL"
            ).fetchone()
        return {"records": n, "oldest_received_at": self._read_ts(oldest), "refused_by_central": refused}

    # ------------------------------------------------------------------ heartbeats

    @_retried
    def store_heartbeat(self, beat: dict, *, client: str, via: str = DIRECT) -> None:
        now = utcnow()
        row = (beat["gate"], beat["at"], self._ts(now), beat["state"], json.dumps(beat["health"], sort_keys=True),
               beat["outbox_depth"], beat["oldest_age_s"], json.dumps(beat["counters"], sort_keys=True),
               float(beat["in_service_s"]), via)
        cols = "gate, at, received_at, state, health, outbox_depth, oldest_age_s, counters, in_service_s, via"
        marks = ", ".join("?" * 10)
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols.split(", ")[1:])
        with self._tx() as cur:
            cur.run(f"INSERT INTO heartbeats ({cols}) VALUES ({marks})", row)
            cur.run(f"INSERT INTO heartbeats_latest ({cols}) VALUES ({marks}) ON CONFLICT (gate) DO UPDATE SET "
                    f"{updates} WHERE heartbeats_latest.received_at <= excluded.received_at", row)
            self._touch(cur, client, now)

    @_retried
    def prune_heartbeats(self, older_than_s: float) -> int:
        cutoff = self._ts(utcnow() - _dt.timedelta(seconds=older_than_s))
        with self._tx() as cur:
            return cur.run("DELETE FROM heartbeats WHERE received_at < ?", (cutoff,)).rowcount

    # ------------------------------------------------------------------ status

    @_retried
    def status(self) -> dict:
        """What `egate central status` shows: per gate, refusals, clients, backlog."""
        with self._tx(write=False) as cur:
            version = self._version(cur)
            if version == 0:
                return {"schema_version": 0, "records": 0, "gates": {}, "refusals": [], "clients": [],
                        "backlog": {"records": 0, "oldest_received_at": None, "refused_by_central": 0}}
            gates: dict[str, dict] = {}

            def gate(name):
                return gates.setdefault(name, {"records": 0, "first_seq": None, "last_seq": None,
                                               "last_received_at": None, "heartbeat": None})

            for name, n, lo, hi, last in cur.run(
                    "SELECT gate, COUNT(*), MIN(seq), MAX(seq), MAX(received_at) FROM records GROUP BY gate"):
                gate(name).update(records=n, first_seq=lo, last_seq=hi, last_received_at=self._read_ts(last))
            for row in cur.run("SELECT gate, at, received_at, state, health, outbox_depth, oldest_age_s, counters, "
                               "in_service_s, via FROM heartbeats_latest"):
                gate(row[0])["heartbeat"] = {
                    "at": row[1], "received_at": self._read_ts(row[2]), "state": row[3],
                    "health": self._read_json(row[4]), "outbox_depth": row[5], "oldest_age_s": row[6],
                    "counters": self._read_json(row[7]), "in_service_s": row[8], "via": row[9]}
            refusals = [{"client": c, "reason": r, "count": n, "last_at": self._read_ts(t)} for c, r, n, t in
                        cur.run("SELECT client, reason, count, last_at FROM refusals ORDER BY client, reason")]
            clients = [{"cn": c, "first_seen": self._read_ts(f), "last_seen": self._read_ts(s), "requests": n}
                       for c, f, s, n in cur.run("SELECT cn, first_seen, last_seen, requests FROM clients ORDER BY cn")]
            n, oldest, refused = cur.run("SELECT COUNT(*), MIN(received_at), COUNT(forward_error) FROM records "
                                         "WHERE forwarded_at IS NULL").fetchone()
            total = cur.run("SELECT COUNT(*) FROM records").fetchone()[0]
            conflicts = cur.run("SELECT COUNT(*) FROM conflicts").fetchone()[0]
        return {"schema_version": version, "records": total, "gates": dict(sorted(gates.items())),
                "refusals": refusals, "clients": clients, "conflicts_kept": conflicts,
                "backlog": {"records": n, "oldest_received_at": self._read_ts(oldest), "refused_by_central": refused}}


class _NoLockType:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NoLock = _NoLockType()


class _Cursor:
    """A cursor taking `?` placeholders on both databases (psycopg wants %s)."""

    def __init__(self, cur, kind: str):
        self._cur = cur
        self._pg = kind == "postgresql"

    def run(self, sql: str, params=()):
        if self._pg:
            sql = sql.replace("?", "%s")
        self._cur.execute(sql, params)
        return self._cur
