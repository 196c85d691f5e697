"""The receiver: an aiohttp server behind mutual TLS that verifies and stores passage records.

`Receiver(cfg)` is one receiver (central or backup); `await start()` migrates the database, binds
and (for a backup) starts forwarding to central; `await stop()` undoes it. `serve(cfg)` runs one
until SIGTERM or SIGINT (`egate central serve`).

Per record of a batch (docs/sync.md, "Wire protocol"): decode the envelope and its body
(`malformed`), find the gate's key (`unknown_gate`), verify the signature (`bad_signature`), check
the sender (`foreign`: the record's gate must be the client certificate's CN unless that CN is a
trusted forwarder), then insert idempotently (`stored`, `duplicate`, or `conflict` for the same id
with other bytes). Signatures are checked in worker threads and the database is written in its
own, so the event loop only moves bytes.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgpack
from aiohttp import web

from core import logs
from sync import record as _record
from sync.receiver import protocol as P
from sync.receiver.config import ReceiverConfig, database_target
from sync.receiver.store import DIRECT, Incoming, Store, StoreError, StoreUnavailable

PRUNE_EVERY_S = 600.0


class GateKeys:
    """The gates' record keys, `<dir>/<gate id>.pem`, read when first needed and again when the
    file changes (a new gate needs no restart). A gate whose file is missing or unreadable has
    no key: its records are refused as unknown_gate (an unreadable file is also logged)."""

    def __init__(self, directory: Path, log=None):
        self.dir = Path(directory)
        self.log = log or logs.get("receiver")
        self._cache: dict[str, tuple[int, object]] = {}

    def get(self, gate: str):
        if not P.valid_gate_id(gate):
            return None
        path = self.dir / f"{gate}.pem"
        try:
            st = path.stat()
        except OSError:
            self._cache.pop(gate, None)
            return None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._cache.get(gate)
        if cached and cached[0] == stamp:
            return cached[1]
        try:
            key = _record.load_verify_key(path.read_bytes(), str(path))
        except (OSError, _record.RecordError) as exc:
            self.log.error("gate_key_unreadable", gate=gate, path=str(path), error=str(exc))
            return None
        self._cache[gate] = (stamp, key)
        return key


def _result(rid, status, reason=None) -> dict:
    return {"id": rid, "status": status, "reason": reason}


def _error(status: int, code: str, reason: str) -> web.Response:
    return web.Response(status=status, body=P.encode_error(code, reason), content_type=P.CONTENT_TYPE)


class Receiver:
    """One receiver process's server; see the module docstring."""

    def __init__(self, cfg: ReceiverConfig, *, log=None):
        self.cfg = cfg
        self.log = log or logs.get("receiver")
        base = cfg.source.parent if cfg.source else None
        self.target = database_target(cfg.database, base, cfg.source)
        self.store = Store(self.target, central=cfg.role == "central")
        self.keys = GateKeys(cfg.gate_keys_dir, self.log)
        self.forwarders = frozenset(cfg.trusted_forwarders)
        workers = 1 if self.target.kind == "sqlite" else cfg.database.workers
        self._db_pool = ThreadPoolExecutor(workers, thread_name_prefix="receiver-db")
        self._cpu_pool = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="receiver-verify")
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []
        self.forwarder = None
        self.port: int | None = None
        self.started_at = time.time()

    # ------------------------------------------------------------------ life cycle

    async def db(self, fn, *args, **kwargs):
        """Run a blocking store call in the database threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db_pool, lambda: fn(*args, **kwargs))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.cfg.limits.max_batch_bytes, middlewares=[self._errors])
        app.router.add_post(P.RECORDS_PATH, self.handle_records)
        app.router.add_post(P.HEARTBEAT_PATH, self.handle_heartbeat)
        app.router.add_get(P.STATUS_PATH, self.handle_status)
        app.router.add_post(P.CROSSINGS_PATH, self.handle_crossings)
        from sync.receiver.bundles import add_routes

        add_routes(app, self)  # GET /v1/bundles[/<kind>]: downstream bundles (sync/receiver/bundles.py)
        return app

    async def start(self) -> None:
        before, after = await self.db(self.store.migrate)
        if before != after:
            self.log.info("schema_migrated", database=self.target.display(), version_from=before, version_to=after)
        listen = self.cfg.listen
        ctx = P.server_ssl_context(listen.tls_cert, listen.tls_key, listen.client_ca)
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, listen.host, listen.port, ssl_context=ctx, reuse_address=True, backlog=512)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # the real port when listen.port was 0
        if self.cfg.role == "backup":
            from sync.receiver.forward import Forwarder

            self.forwarder = Forwarder(self.cfg.forward, self.store, self.db, self.log,
                                       max_bytes=self.cfg.limits.max_batch_bytes)
            self._tasks.append(asyncio.create_task(self.forwarder.run(), name="forwarder"))
            from sync.receiver.bundles import Mirror

            self.mirror = Mirror(self.cfg.forward, self.cfg.publish, self.store, self.db, self.log)
            self._tasks.append(asyncio.create_task(self.mirror.run(), name="bundle-mirror"))
        self._tasks.append(asyncio.create_task(self._maintain(), name="maintenance"))
        self.log.info("receiver_listening", role=self.cfg.role, site=self.cfg.site, host=listen.host, port=self.port,
                      database=self.target.display(), forwards_to=self.cfg.forward.url if self.cfg.forward else None)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._db_pool.shutdown(wait=True)
        self._cpu_pool.shutdown(wait=True)
        self.store.close()
        self.log.info("receiver_stopped", role=self.cfg.role, site=self.cfg.site)

    async def _maintain(self) -> None:
        while True:
            try:
                pruned = await self.db(self.store.prune_heartbeats, self.cfg.limits.heartbeat_history_days * 86400)
                if pruned:
                    self.log.info("heartbeats_pruned", rows=pruned)
            except StoreError as exc:
                self.log.warning("prune_failed", error=str(exc))
            await asyncio.sleep(PRUNE_EVERY_S)

    # ------------------------------------------------------------------ requests

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except StoreUnavailable as exc:
            self.log.error("database_unavailable", path=request.path, error=str(exc))
            return _error(503, "unavailable", "the receiver's database cannot be reached; nothing was stored")
        except StoreError as exc:
            self.log.error("database_error", path=request.path, error=str(exc))
            return _error(503, "unavailable", "the receiver's database refused the write; nothing was stored")

    def _client(self, request: web.Request) -> str | None:
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport else None
        return P.peer_cn(ssl_object.getpeercert()) if ssl_object else None

    async def _refuse(self, cn: str | None, status: int, code: str, reason: str) -> web.Response:
        """A whole request refused: counted (when the database is up), logged, answered."""
        self.log.warning("request_refused", client=cn, error=code, reason=reason)
        if cn is not None:
            try:
                await self.db(self.store.count_refusals, cn, Counter({code: 1}))
            except StoreError as exc:
                self.log.warning("refusal_not_counted", client=cn, error=code, db_error=str(exc))
        return _error(status, code, reason)

    async def _body(self, request: web.Request, cn: str, limit: int) -> bytes | web.Response:
        if request.content_type != P.CONTENT_TYPE:
            return await self._refuse(cn, 415, "wrong_content_type",
                                      f"Content-Type {request.content_type!r}; this endpoint takes {P.CONTENT_TYPE}")
        if request.content_length is not None and request.content_length > limit:
            return await self._refuse(cn, 413, "too_large", f"{request.content_length} bytes; at most {limit}")
        chunks, size = [], 0
        while chunk := await request.content.read(256 * 1024):
            size += len(chunk)
            if size > limit:
                return await self._refuse(cn, 413, "too_large", f"more than {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        return body

    async def handle_records(self, request: web.Request) -> web.Response:
        cn = self._client(request)
        if cn is None:
            return await self._refuse(None, 403, "forbidden", "no client certificate CN")
        limits = self.cfg.limits
        body = await self._body(request, cn, limits.max_batch_bytes)
        if isinstance(body, web.Response):
            return body
        try:
            items = P.decode_batch(body, limits.max_batch_bytes)
        except P.ProtocolError as exc:
            return await self._refuse(cn, 400, "bad_body", str(exc))
        if len(items) > limits.max_batch_records:
            return await self._refuse(cn, 413, "too_large",
                                      f"{len(items)} records in one batch; at most {limits.max_batch_records}")
        loop = asyncio.get_running_loop()
        results, incoming, refusals = await loop.run_in_executor(self._cpu_pool, self._check, items, cn)
        via = cn if cn in self.forwarders else DIRECT
        verdicts = await self.db(self.store.ingest, [rec for _, rec in incoming], via=via, client=cn, refusals=refusals)
        stored = 0
        for (index, rec), verdict in zip(incoming, verdicts):
            if verdict == "conflict":
                results[index] = _result(rec.id, P.REFUSED, "conflict")
                self.log.error("record_conflict", client=cn, record=rec.id,
                               detail="same id, other bytes: a replay or a tampered record; kept in conflicts")
            else:
                results[index] = _result(rec.id, verdict)
                stored += verdict == P.STORED
        if stored and self.forwarder is not None:
            self.forwarder.wake.set()
        counts = Counter(r["status"] for r in results)
        self.log.info("batch", client=cn, via=via, records=len(results), stored=counts[P.STORED],
                      duplicate=counts[P.DUPLICATE], refused=counts[P.REFUSED])
        return web.Response(body=P.encode_results(results), content_type=P.CONTENT_TYPE)

    def _check(self, items: list, cn: str):
        """Decode, key, signature and identity checks (worker thread). Returns the results so far
        (None where the database decides), the (index, Incoming) to insert, refusal counts."""
        results: list[dict | None] = []
        incoming: list[tuple[int, Incoming]] = []
        refusals: Counter = Counter()
        trusted = cn in self.forwarders

        def refuse(rid, reason, detail):
            refusals[reason] += 1
            results.append(_result(rid, P.REFUSED, reason))
            self.log.warning("record_refused", client=cn, record=rid, reason=reason, detail=detail)

        for item in items:
            if not isinstance(item, bytes):
                refuse(None, "malformed", f"a batch item that is {type(item).__name__}, not bin")
                continue
            try:
                env = _record.decode_envelope(item)
                body = _record.decode_body(env.body)  # unverified: only to know whose key to use
            except _record.RecordError as exc:
                refuse(None, "malformed", str(exc))
                continue
            rid, gate = body["id"], body["gate"]
            key = self.keys.get(gate)
            if key is None:
                refuse(rid, "unknown_gate", f"no key for gate {gate!r:.80}")
                continue
            try:
                env.verify(key)
            except _record.RecordError as exc:
                refuse(rid, "bad_signature", str(exc))
                continue
            if gate != cn and not trusted:
                refuse(rid, "foreign", f"record of {gate!r} sent by {cn!r}")
                continue
            incoming.append((len(results), Incoming(rid, gate, body["seq"], body["passage"], body["outcome"],
                                                    body["started"], body["ended"], env.raw,
                                                    P.record_crossing(body))))
            results.append(None)
        return results, incoming, refusals

    async def handle_heartbeat(self, request: web.Request) -> web.Response:
        cn = self._client(request)
        if cn is None:
            return await self._refuse(None, 403, "forbidden", "no client certificate CN")
        body = await self._body(request, cn, P.MAX_HEARTBEAT_BYTES)
        if isinstance(body, web.Response):
            return body
        try:
            beat = P.decode_heartbeat(body)
        except P.ProtocolError as exc:
            return await self._refuse(cn, 400, "bad_body", str(exc))
        if beat["gate"] != cn:
            return await self._refuse(cn, 403, "forbidden", f"heartbeat of {beat['gate']!r} sent by {cn!r}")
        await self.db(self.store.store_heartbeat, beat, client=cn)
        self.log.debug("heartbeat", gate=cn, state=beat["state"], outbox_depth=beat["outbox_depth"])
        return web.Response(body=msgpack.packb({"ok": True}), content_type=P.CONTENT_TYPE)

    async def handle_crossings(self, request: web.Request) -> web.Response:
        """A gate asks whether a document's last cleared crossing is in its own direction: arrived
        twice without leaving, or leaving without having arrived (where central knows)."""
        cn = self._client(request)
        if cn is None:
            return await self._refuse(None, 403, "forbidden", "no client certificate CN")
        body = await self._body(request, cn, 4096)
        if isinstance(body, web.Response):
            return body
        try:
            q = P.decode_crossing_query(body)
        except P.ProtocolError as exc:
            return await self._refuse(cn, 400, "bad_body", str(exc))
        last = await self.db(self.store.last_crossing, q["document"])
        reply = {"open": last is not None and last["direction"] == q["direction"], "last": last}
        return web.Response(body=msgpack.packb(reply, use_bin_type=True), content_type=P.CONTENT_TYPE)

    async def handle_status(self, request: web.Request) -> web.Response:
        status = await self.db(self.store.status)
        reply = {"role": self.cfg.role, "site": self.cfg.site, "schema_version": status["schema_version"],
                 "records": status["records"], "gates": sorted(status["gates"]),
                 "uptime_s": round(time.time() - self.started_at, 3)}
        if self.forwarder is not None:
            reply["backlog"] = status["backlog"]["records"]
            reply["forwarding"] = self.forwarder.snapshot()
        return web.Response(body=msgpack.packb(reply, use_bin_type=True, default=str), content_type=P.CONTENT_TYPE)


async def serve(cfg: ReceiverConfig, *, ready=None) -> None:
    """Run a receiver until SIGTERM or SIGINT; `ready(receiver)` is called once it listens."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    receiver = Receiver(cfg)
    try:
        await receiver.start()
        if ready is not None:
            ready(receiver)
        await stop.wait()
    finally:
        await receiver.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
