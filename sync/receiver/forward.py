"""A backup receiver forwards what it holds to central, so no record depends on one gate surviving.

A background task of a backup receiver: it leases the oldest records central has not acknowledged
(`forwarded_at IS NULL`), sends them to central's `/v1/records` as the backup's forwarder
certificate (CN `backup:<site>`, which central lists in `trusted_forwarders`), and marks those
central answered `stored` or `duplicate`. When central cannot be reached, answers 5xx or
something that is not the protocol, the lease is given back and the task waits (exponential
backoff with jitter, `retry_initial_s` to `retry_max_s`). A record central refuses (say, it lacks
the gate's key) is kept, its reason shown, and tried again after `refused_retry_s`. Leases let
several backups share one database without sending the same record twice at once; a crash mid-way
leaves a lease that simply expires. Sending a record twice is harmless: central answers duplicate.
"""
from __future__ import annotations

import asyncio
import random
import time

import aiohttp

from sync.receiver import protocol as P
from sync.receiver.config import Forward
from sync.receiver.store import Store, StoreError


class CentralError(Exception):
    """Central did not take the batch: unreachable, an error status, or an answer off the protocol."""


class Forwarder:
    def __init__(self, cfg: Forward, store: Store, db, log, *, max_bytes: int = P.MAX_BATCH_BYTES):
        self.cfg = cfg
        self.store = store
        self.db = db                      # runs a blocking store call in the database threads
        self.log = log
        self.max_bytes = max_bytes
        self.batch_size = cfg.batch_size  # halved when central says 413, back up as batches pass
        self.wake = asyncio.Event()       # set when this receiver stored something new
        self.url = cfg.url.rstrip("/") + P.RECORDS_PATH
        self.forwarded = 0
        self.refused = 0
        self.failures = 0                 # consecutive
        self.last_ok_at: float | None = None
        self.last_error: str | None = None

    def snapshot(self) -> dict:
        return {"url": self.cfg.url, "forwarded": self.forwarded, "refused": self.refused,
                "consecutive_failures": self.failures, "last_ok_at": self.last_ok_at, "last_error": self.last_error}

    async def run(self) -> None:
        ctx = P.client_ssl_context(self.cfg.ca_cert, self.cfg.client_cert, self.cfg.client_key)
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_s)
        delay = self.cfg.retry_initial_s
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx, limit=2), timeout=timeout) as session:
            while True:
                try:
                    sent = await self.once(session)
                except (CentralError, StoreError) as exc:
                    self.failures += 1
                    self.last_error = str(exc)
                    wait = delay * random.uniform(0.8, 1.2)
                    self.log.warning("forward_failed", url=self.cfg.url, error=str(exc), attempt=self.failures,
                                     retry_in_s=round(wait, 3))
                    await asyncio.sleep(wait)
                    delay = min(delay * 2, self.cfg.retry_max_s)
                    continue
                delay = self.cfg.retry_initial_s
                if self.failures:
                    self.log.info("forward_resumed", url=self.cfg.url, after_failures=self.failures)
                    self.failures = 0
                if not sent:
                    self.wake.clear()
                    try:  # not wait_for: on 3.11 it swallows a cancel (SIGTERM) when a batch woke us meanwhile
                        async with asyncio.timeout(self.cfg.poll_s):
                            await self.wake.wait()
                    except asyncio.TimeoutError:
                        pass

    async def once(self, session: aiohttp.ClientSession) -> int:
        """Forward one batch; the number of records sent (0: nothing to forward)."""
        lease_s = self.cfg.timeout_s + 10
        batch = await self.db(self.store.claim_unforwarded, self.batch_size, self.max_bytes, lease_s)
        if not batch:
            return 0
        ids = [rid for rid, _ in batch]
        try:
            results = await self._post(session, [env for _, env in batch])
        except CentralError:
            try:
                await self.db(self.store.release, ids)
            except StoreError:
                pass  # the lease expires on its own
            raise
        acked, refused = [], []
        for rid, result in zip(ids, results):
            if result["id"] is not None and result["id"] != rid:
                refused.append((rid, f"central answered for {result['id']!r}"))
            elif result["status"] in P.ACKNOWLEDGED:
                acked.append(rid)
            else:
                refused.append((rid, result["reason"] or "refused"))
        if acked:
            await self.db(self.store.mark_forwarded, acked)
        if refused:
            await self.db(self.store.defer, refused, self.cfg.refused_retry_s)
            for rid, reason in refused[:20]:
                self.log.error("forward_refused", record=rid, reason=reason, retry_in_s=self.cfg.refused_retry_s)
        self.forwarded += len(acked)
        self.refused += len(refused)
        self.last_ok_at = time.time()
        self.last_error = None
        if self.batch_size < self.cfg.batch_size:
            self.batch_size = min(self.cfg.batch_size, self.batch_size * 2)
        self.log.info("forwarded", url=self.cfg.url, records=len(batch), acknowledged=len(acked), refused=len(refused))
        return len(batch)

    async def _post(self, session: aiohttp.ClientSession, envelopes: list[bytes]) -> list[dict]:
        try:
            async with session.post(self.url, data=P.encode_batch(envelopes),
                                    headers={"Content-Type": P.CONTENT_TYPE}) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise CentralError(f"{self.url}: {type(exc).__name__}: {exc}") from None
        if status == 413 and self.batch_size > 1:
            self.batch_size = max(1, len(envelopes) // 2)
            raise CentralError(f"{self.url}: 413 for {len(envelopes)} records; next batches of {self.batch_size}")
        if status != 200:
            raise CentralError(f"{self.url}: HTTP {status} {body[:200]!r}")
        try:
            return P.decode_results(body, len(envelopes))
        except P.ProtocolError as exc:
            raise CentralError(f"{self.url}: {exc}") from None
