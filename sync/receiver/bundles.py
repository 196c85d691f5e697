"""Downstream at the receivers: central publishes signed bundles, every receiver serves them, a
backup mirrors central's so gates that failed over still get them.

    publish(store, key, kind, files)       central (`egate bundle publish`): next version of the kind,
                                           signed with `publish.signing_key`, stored in one transaction
    GET /v1/bundles                        {"bundles": {kind: {"version", "created", "size", "sha256"}}}
    GET /v1/bundles/<kind>?after=<n>       200 with the newest envelope of the kind above n (the exact
                                           bytes central signed), 204 when there is none
    Mirror                                 role backup: every `publish.mirror_s` asks central's index and
                                           fetches what is newer, as its forwarder (mutual TLS)

Bundles live in the `bundles` table (migration 2) on SQLite or PostgreSQL; every version is kept
(a receiver serves the newest only). The format and its checks are `sync/downstream.py`.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import random
from dataclasses import dataclass

import aiohttp
import msgpack
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync import downstream as D
from sync.receiver import protocol as P
from sync.receiver.store import Store, StoreError, utcnow

_PUBLISH_LOCK = 0x65676175   # pg_advisory_xact_lock key: one publisher at a time picks the next version
PUBLISHED = "published"


@dataclass(frozen=True)
class Published:
    kind: str
    version: int
    created: str
    sha256: str
    size: int
    files: int


# ------------------------------------------------------------------------ the table

def _publish(store: Store, key: Ed25519PrivateKey, kind: str, files: dict[str, bytes],
             created: dt.datetime, source: str) -> Published:
    with store._tx() as cur:
        if store.kind == "postgresql":
            cur.run(f"SELECT pg_advisory_xact_lock({_PUBLISH_LOCK})")
        (last,) = cur.run("SELECT COALESCE(MAX(version), 0) FROM bundles WHERE kind = ?", (kind,)).fetchone()
        envelope = D.sign(kind, last + 1, files, key, created)
        bundle, _, _ = D.decode(envelope, max_bytes=len(envelope))
        cur.run("INSERT INTO bundles (kind, version, created, sha256, size, envelope, stored_at, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, bundle.version, bundle.created.isoformat(), bundle.sha256, bundle.size, envelope,
                 store._ts(utcnow()), source))
    return Published(kind, bundle.version, bundle.created.isoformat(), bundle.sha256, bundle.size, len(files))


def publish(store: Store, key: Ed25519PrivateKey, kind: str, files: dict[str, bytes], *,
            created: dt.datetime | None = None, source: str = PUBLISHED) -> Published:
    """Sign `files` as the next version of `kind` and store it (blocking). The payload is checked
    as a gate would check it first (a CRL bundle of CRLs that parse, ...): BundleError if not."""
    D.check_payload(kind, files)
    return store._again(_publish, key, kind, files, created or utcnow(), source)


def _put(store: Store, envelope: bytes, source: str) -> bool:
    bundle, _, _ = D.decode(envelope, max_bytes=len(envelope))
    with store._tx() as cur:
        rows = cur.run("INSERT INTO bundles (kind, version, created, sha256, size, envelope, stored_at, source) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, version) DO NOTHING RETURNING kind",
                       (bundle.kind, bundle.version, bundle.created.isoformat(), bundle.sha256, bundle.size,
                        envelope, store._ts(utcnow()), source)).fetchall()
    return bool(rows)


def put_envelope(store: Store, envelope: bytes, source: str) -> bool:
    """Store an envelope as it is (a backup mirroring central; tests). False when that kind and
    version is already there (the stored one is kept)."""
    return store._again(_put, envelope, source)


def _latest(store: Store, kind: str, after: int):
    with store._tx(write=False) as cur:
        row = cur.run("SELECT version, envelope FROM bundles WHERE kind = ? AND version > ? "
                      "ORDER BY version DESC LIMIT 1", (kind, after)).fetchone()
    return None if row is None else (row[0], bytes(row[1]))


def latest(store: Store, kind: str, after: int = 0) -> tuple[int, bytes] | None:
    """(version, envelope) of the newest bundle of `kind` above `after`, or None."""
    return store._again(_latest, kind, after)


def _index(store: Store) -> dict:
    with store._tx(write=False) as cur:
        if store._version(cur) < 2:
            return {}
        rows = cur.run("SELECT b.kind, b.version, b.created, b.size, b.sha256, b.source FROM bundles b "
                       "JOIN (SELECT kind, MAX(version) AS version FROM bundles GROUP BY kind) m "
                       "ON b.kind = m.kind AND b.version = m.version ORDER BY b.kind").fetchall()
    return {k: {"version": v, "created": c, "size": n, "sha256": h, "source": s} for k, v, c, n, h, s in rows}


def index(store: Store) -> dict:
    """{kind: the newest version's version, created, size, sha256, source}."""
    return store._again(_index)


def _history(store: Store, kind: str | None) -> list[dict]:
    with store._tx(write=False) as cur:
        if store._version(cur) < 2:
            return []
        sql = "SELECT kind, version, created, size, sha256, stored_at, source FROM bundles"
        params: tuple = ()
        if kind is not None:
            sql, params = sql + " WHERE kind = ?", (kind,)
        rows = cur.run(sql + " ORDER BY kind, version", params).fetchall()
    return [{"kind": k, "version": v, "created": c, "size": n, "sha256": h, "stored_at": store._read_ts(t),
             "source": s} for k, v, c, n, h, t, s in rows]


def history(store: Store, kind: str | None = None) -> list[dict]:
    """Every stored version (`egate bundle show`)."""
    return store._again(_history, kind)


# ------------------------------------------------------------------------ serving

def add_routes(app: web.Application, receiver) -> None:
    """GET /v1/bundles and /v1/bundles/<kind> on a Receiver's app (any client of its CA)."""

    async def handle_index(request: web.Request) -> web.Response:
        if receiver._client(request) is None:
            return await receiver._refuse(None, 403, "forbidden", "no client certificate CN")
        bundles = await receiver.db(index, receiver.store)
        return web.Response(body=msgpack.packb({"bundles": bundles}, use_bin_type=True), content_type=P.CONTENT_TYPE)

    async def handle_kind(request: web.Request) -> web.Response:
        cn = receiver._client(request)
        if cn is None:
            return await receiver._refuse(None, 403, "forbidden", "no client certificate CN")
        kind = request.match_info["kind"]
        if not D.KIND_RE.match(kind):
            return await receiver._refuse(cn, 400, "bad_request", f"{kind!r:.40} is not a bundle kind")
        raw = request.query.get("after", "0")
        if not raw.isdigit() or len(raw) > 19:
            return await receiver._refuse(cn, 400, "bad_request", f"after={raw!r:.40}: a version number (>= 0)")
        found = await receiver.db(latest, receiver.store, kind, int(raw))
        if found is None:
            return web.Response(status=204)
        version, envelope = found
        receiver.log.info("bundle_served", client=cn, kind=kind, version=version, after=int(raw), size=len(envelope))
        return web.Response(body=envelope, content_type=P.CONTENT_TYPE, headers={"X-Egate-Bundle-Version": str(version)})

    app.router.add_get(D.BUNDLES_PATH, handle_index)
    app.router.add_get(D.BUNDLES_PATH + "/{kind}", handle_kind)


# ------------------------------------------------------------------------ a backup mirrors central

class MirrorError(Exception):
    """Central could not be asked (unreachable, an error status, an answer off the protocol)."""


class Mirror:
    """Role backup: keeps this receiver's bundles up to date with central's.

    Every `publish.mirror_s` it asks central's index, and fetches each kind whose newest version
    is above its own, as the backup's forwarder (the same TLS identity as forwarding). A bundle
    must verify with `publish.verify_key` when one is set (else it is checked for form only: the
    gates verify anyway) and be of the kind and version asked for; it is stored byte for byte."""

    def __init__(self, forward, publish, store: Store, db, log):
        self.forward = forward
        self.cfg = publish
        self.store = store
        self.db = db
        self.log = log
        self.key = D.load_public_key(publish.verify_key) if publish.verify_key else None
        self.base = forward.url.rstrip("/")
        self.mirrored = 0
        self.refused = 0
        self.failures = 0
        self.last_error: str | None = None

    def snapshot(self) -> dict:
        return {"mirrored": self.mirrored, "refused": self.refused, "consecutive_failures": self.failures,
                "last_error": self.last_error}

    async def run(self) -> None:
        if self.key is None:
            self.log.warning("bundle_mirror_unverified", why="no publish.verify_key: mirrored bundles are checked "
                                                             "for form only (gates still verify them)")
        ctx = P.client_ssl_context(self.forward.ca_cert, self.forward.client_cert, self.forward.client_key)
        timeout = aiohttp.ClientTimeout(total=max(self.forward.timeout_s, 60.0))
        delay = self.forward.retry_initial_s
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=2), timeout=timeout) as session:
            while True:
                try:
                    await self.once(session)
                except (MirrorError, StoreError) as exc:
                    self.failures += 1
                    self.last_error = str(exc)
                    wait = min(delay, self.cfg.mirror_s) * random.uniform(0.8, 1.2)
                    self.log.warning("bundle_mirror_failed", url=self.base, error=str(exc), retry_in_s=round(wait, 3))
                    await asyncio.sleep(wait)
                    delay = min(delay * 2, self.forward.retry_max_s)
                    continue
                self.failures = 0
                delay = self.forward.retry_initial_s
                await asyncio.sleep(self.cfg.mirror_s)

    async def once(self, session: aiohttp.ClientSession) -> int:
        """Fetch what central has newer; how many bundles were stored."""
        status, body = await self._get(session, D.BUNDLES_PATH)
        if status != 200:
            raise MirrorError(f"{self.base}{D.BUNDLES_PATH}: HTTP {status}")
        try:
            theirs = msgpack.unpackb(body, raw=False)["bundles"]
            theirs = {k: int(v["version"]) for k, v in theirs.items() if isinstance(k, str) and D.KIND_RE.match(k)}
        except Exception as exc:  # noqa: BLE001 - anything off the protocol
            raise MirrorError(f"{self.base}{D.BUNDLES_PATH}: not a bundle index ({type(exc).__name__})") from None
        mine = await self.db(index, self.store)
        stored = 0
        for kind, version in sorted(theirs.items()):
            have = mine.get(kind, {}).get("version", 0)
            if version <= have:
                continue
            status, envelope = await self._get(session, f"{D.BUNDLES_PATH}/{kind}?after={have}")
            if status == 204:
                continue
            if status == 413:
                self.refused += 1
                self.log.error("bundle_mirror_refused", kind=kind, reason="too_large",
                               detail=f"more than publish.max_bytes ({self.cfg.max_bytes})")
                continue
            if status != 200:
                raise MirrorError(f"{self.base}{D.BUNDLES_PATH}/{kind}: HTTP {status}")
            try:
                if self.key is not None:
                    bundle = D.verify(envelope, self.key, kind=kind, after=have, max_bytes=self.cfg.max_bytes)
                else:
                    bundle, _, _ = D.decode(envelope, self.cfg.max_bytes)
                    if bundle.kind != kind or bundle.version <= have:
                        raise D.BundleError("wrong_kind" if bundle.kind != kind else "rollback",
                                            f"asked for {kind} above v{have}, got {bundle.kind} v{bundle.version}")
            except D.BundleError as exc:
                self.refused += 1
                self.log.error("bundle_mirror_refused", kind=kind, reason=exc.reason, detail=exc.detail[:300])
                continue
            if await self.db(put_envelope, self.store, envelope, f"mirror:{self.base}"):
                stored += 1
                self.mirrored += 1
                self.log.info("bundle_mirrored", kind=kind, version=bundle.version, size=len(envelope))
        return stored

    async def _get(self, session: aiohttp.ClientSession, path: str) -> tuple[int, bytes]:
        try:
            async with session.get(self.base + path) as resp:
                if resp.content_length is not None and resp.content_length > self.cfg.max_bytes:
                    return 413, b""
                chunks, size = [], 0
                while chunk := await resp.content.read(256 * 1024):
                    size += len(chunk)
                    if size > self.cfg.max_bytes:
                        return 413, b""
                    chunks.append(chunk)
                return resp.status, b"".join(chunks)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise MirrorError(f"{self.base}{path}: {type(exc).__name__}: {exc}") from None
