"""The store-and-forward agent: sends the outbox to central, fails over to the site's backup and
the off-site backup when central is unreachable, and fails back when it returns.

`EndpointMachine` (python-statemachine, strict) is the agent's own state: which endpoint it sends
to. It moves down the list after `failover_after` consecutive failed requests, or when nothing was
acknowledged for `failover_timeout_s`; while away from central it probes the endpoints above
every `failback_probe_s` with a real, idempotent request (an empty batch, which the receiver
answers only after touching its database) and moves back up after `failback_after` consecutive
successes and at least `min_dwell_s` on the current endpoint, so a flapping link cannot make it
flap. Records a backup acknowledged stay in the outbox and go to central after failback, oldest
first; central's acknowledgement is the only one that removes a record.

One request at a time, on the gate's event loop (aiohttp); nothing here blocks the loop but the
outbox's short SQLite transactions.
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import msgpack
from statemachine import State, StateChart
from statemachine.exceptions import TransitionNotAllowed

from core import logs
from core.component import Component, ComponentStatus
from sync.config import SyncConfig
from sync.downstream import Downstream, Unreachable
from sync.outbox import Outbox
from sync.receiver import protocol as P
from sync.record import document_fields

log = logs.get("sync")

MSGPACK = "application/msgpack"
ROLES = ("central", "backup", "offsite")


class EndpointMachine(StateChart):
    """Which receiver the agent sends to. Guards say which endpoints are configured."""

    allow_event_without_transition = False
    catch_errors_as_events = False

    central = State(initial=True)
    backup = State()
    offsite = State()

    fail_over = (central.to(backup, cond="has_backup") | central.to(offsite, cond="has_offsite")
                 | backup.to(offsite, cond="has_offsite"))
    fail_back_to_central = backup.to(central) | offsite.to(central)
    fail_back_to_backup = offsite.to(backup, cond="has_backup")

    def __init__(self, configured: set[str]):
        self.configured = configured
        super().__init__()

    def has_backup(self) -> bool:
        return "backup" in self.configured

    def has_offsite(self) -> bool:
        return "offsite" in self.configured

    @property
    def active(self) -> str:
        (state,) = [s.id for s in self.configuration]
        return state


class SendFailed(Exception):
    """A request did not reach a receiver that answered it (refused, timed out, a 5xx)."""


@dataclass
class Switch:
    at: str
    to: str
    why: str
    detection_s: float | None  # from the first failure to the switch (failover)
    mono: float                # the agent's clock (time.monotonic) at the switch


class SyncAgent(Component):
    name = "sync"

    def __init__(self, cfg: SyncConfig, outbox: Outbox, *, gate_status: Callable[[], dict],
                 clock: Callable[[], float] = time.monotonic, downstream: Downstream | None = None):
        """`gate_status()` gives the heartbeat's state, health, counters and in_service_s.
        `downstream` pulls bundles (default: built from `cfg.bundles` when it names kinds)."""
        self.cfg = cfg
        self.outbox = outbox
        self.gate_status = gate_status
        self.clock = clock
        self.urls = dict(cfg.endpoints)
        self.machine = EndpointMachine(set(self.urls))
        self.errors: collections.deque[str] = collections.deque(maxlen=20)
        self.switches: list[Switch] = []
        self.sent = collections.Counter()      # acknowledged records per endpoint role
        self.refused = collections.Counter()   # refusals by reason
        self.last_ack_at: str | None = None
        self._failures = 0
        self._first_failure: float | None = None
        self._last_success = clock()
        self._arrived = clock()                # on the current endpoint since
        self._probe_ok: collections.Counter[str] = collections.Counter()
        self._next_probe = 0.0
        self._next_heartbeat = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        if downstream is None and cfg.bundles.kinds:
            downstream = Downstream.from_config(cfg.bundles, outbox.path.parent)
        self.downstream = downstream
        self._next_bundles = 0.0

    # -- component -------------------------------------------------------------------------
    def status(self) -> ComponentStatus:
        active = self.machine.active
        detail = f"sending to {active} ({self.urls.get(active, 'none')})"
        return ComponentStatus(self.name, True, detail, {f"acked_{k}": v for k, v in self.sent.items()})

    def nudge(self) -> None:
        """A new record is in the outbox: send it now rather than at the next poll. Any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- the loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        if not self.urls:
            log.warning("sync_disabled", why="no sync.central_url: records stay in the outbox")
            return
        self._loop = asyncio.get_running_loop()
        timeout = aiohttp.ClientTimeout(total=self.cfg.request_timeout_s)
        connector = aiohttp.TCPConnector(ssl=self._ssl(), limit=2, force_close=False)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            self._session = session
            delay = self.cfg.retry_initial_s
            while True:
                try:
                    progressed = await self.cycle()
                    self._publish()
                except Exception as exc:  # noqa: BLE001 - the outbox failing (a full disk) must not end delivery
                    self.errors.append(f"{_now()} {type(exc).__name__}: {exc}")
                    log.error("sync_cycle_failed", error=f"{type(exc).__name__}: {exc}")
                    progressed = False
                if progressed:
                    delay = self.cfg.retry_initial_s
                    continue
                self._wake.clear()
                try:  # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel if the event was set meanwhile
                    async with asyncio.timeout(delay if self._failures else self.cfg.retry_initial_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                delay = min(delay * 2, self.cfg.retry_max_s) if self._failures else self.cfg.retry_initial_s

    async def cycle(self) -> bool:
        """One round: heartbeat when due, probe the endpoints above when due, send one batch.
        True when a batch was acknowledged (so the next one goes at once)."""
        now = self.clock()
        active = self.machine.active
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.cfg.heartbeat_s
            await self._heartbeat(active)
        if active != "central" and now >= self._next_probe:
            self._next_probe = now + self.cfg.failback_probe_s
            await self._probe_above(active)
            active = self.machine.active
        if self.downstream is not None and now >= self._next_bundles:
            await self._pull_bundles(active)
            active = self.machine.active
        batch = self.outbox.unacknowledged(self.cfg.batch_size, skip_backup_acked=active != "central")
        if not batch:
            # Nothing owed: `failover_timeout_s` counts from here, not from the last acknowledgement,
            # or the first failure after an idle spell would fail over at once.
            self._last_success = now
            return False
        try:
            results = await self._post_records(active, [p.envelope for p in batch])
        except SendFailed as exc:
            self._failed(active, str(exc))
            return False
        acked = [p.id for p, r in zip(batch, results) if r.get("status") in ("stored", "duplicate")]
        for p, r in zip(batch, results):
            if r.get("status") == "refused":
                # A receiver that refuses a record we signed is a bug or an attack, never a reason
                # to drop it: counted, logged, kept for an officer to look at.
                self.refused[str(r.get("reason"))] += 1
                self.errors.append(f"{active} refused {p.id}: {r.get('reason')}")
                log.error("sync_record_refused", endpoint=active, record=p.id, reason=r.get("reason"))
        self.outbox.acknowledged(acked, by=active)
        self.sent[active] += len(acked)
        self._succeeded()
        return bool(acked)

    # -- failover and failback ----------------------------------------------------------------
    def _failed(self, role: str, why: str) -> None:
        now = self.clock()
        self._failures += 1
        if self._first_failure is None:
            self._first_failure = now
        self.errors.append(f"{_now()} {role}: {why}")
        log.warning("sync_send_failed", endpoint=role, failures=self._failures, error=why)
        if self._failures >= self.cfg.failover_after or now - self._last_success >= self.cfg.failover_timeout_s:
            try:
                self._switch("fail_over", f"{self._failures} failures on {role}: {why}")
            except TransitionNotAllowed:  # no endpoint below: stay, keep retrying with backoff
                log.error("sync_no_endpoint_below", endpoint=role, failures=self._failures)

    def _succeeded(self) -> None:
        self._failures = 0
        self._first_failure = None
        self._last_success = self.clock()
        self.last_ack_at = _now()

    def _switch(self, event: str, why: str) -> None:
        before = self.machine.active
        detection = None if self._first_failure is None else round(self.clock() - self._first_failure, 3)
        self.machine.send(event)
        after = self.machine.active
        self._arrived = self.clock()
        self._failures = 0
        self._first_failure = None
        self._last_success = self.clock()
        self._probe_ok.clear()
        self._next_probe = self.clock() + self.cfg.failback_probe_s
        self.switches.append(Switch(_now(), after, why, detection if event == "fail_over" else None, self.clock()))
        log.warning("sync_endpoint_switched", frm=before, to=after, why=why, detection_s=detection)

    async def _probe_above(self, active: str) -> None:
        for role in ROLES[:ROLES.index(active)]:
            if role not in self.urls:
                continue
            try:
                await self._post_records(role, [])
            except SendFailed as exc:
                self._probe_ok[role] = 0
                log.info("sync_probe_failed", endpoint=role, error=str(exc))
                continue
            self._probe_ok[role] += 1
            dwelt = self.clock() - self._arrived
            if self._probe_ok[role] >= self.cfg.failback_after and dwelt >= self.cfg.min_dwell_s:
                self._switch(f"fail_back_to_{role}", f"{self._probe_ok[role]} good probes of {role}")
                return

    async def _pull_bundles(self, role: str) -> None:
        """Newer bundles from the active endpoint (sync/downstream.py). Not answering counts
        towards failover like a records request, and the pull is tried again next cycle."""
        try:
            await self.downstream.pull(self._session, self.urls[role], role)
        except Unreachable as exc:
            self._next_bundles = self.clock()
            self._failed(role, f"bundles: {exc}")
            return
        self._next_bundles = self.clock() + self.downstream.interval_s
        self._failures = 0
        self._first_failure = None
        self._last_success = self.clock()

    async def open_crossing(self, issuer: str, number: str, direction: str, timeout_s: float) -> dict:
        """Ask central whether the document's last cleared crossing is in `direction` (docs/sync.md,
        "Crossings"): {"checked": "central" | "skipped: <why>", "open": bool, "last": {...} | None}.
        Central only: a backup holds part of the history, and its "no" would mean nothing."""
        if "central" not in self.urls or self._session is None:
            return {"checked": "skipped: no central link", "open": False}
        if self.machine.active != "central":
            return {"checked": f"skipped: central unreachable (sending to {self.machine.active})", "open": False}
        doc = document_fields({"issuer": issuer, "number": number}, self.outbox.document_policy,
                              self.outbox.document_hash_key)
        key = P.crossing_key(doc)
        try:
            async with asyncio.timeout(timeout_s):
                reply = await self._post("central", P.CROSSINGS_PATH, {"document": key, "direction": direction})
        except (SendFailed, TimeoutError) as exc:
            return {"checked": f"skipped: {exc or 'central did not answer in time'}", "open": False}
        if not isinstance(reply, dict) or not isinstance(reply.get("open"), bool):
            return {"checked": "skipped: an answer off the protocol", "open": False}
        return {"checked": "central", "open": reply["open"], "last": reply.get("last")}

    # -- requests ---------------------------------------------------------------------------
    async def _post_records(self, role: str, envelopes: list[bytes]) -> list[dict]:
        reply = await self._post(role, "/v1/records", envelopes)
        results = reply.get("results") if isinstance(reply, dict) else None
        if not isinstance(results, list) or len(results) != len(envelopes) \
                or not all(isinstance(r, dict) for r in results):
            raise SendFailed(f"{role}: a reply that does not answer the batch")
        return results

    async def _heartbeat(self, role: str) -> None:
        try:
            await self._post(role, "/v1/heartbeat", self._heartbeat_body())
        except SendFailed as exc:  # the next records request decides about failover
            log.warning("sync_heartbeat_failed", endpoint=role, error=str(exc))

    def _heartbeat_body(self) -> dict:
        b = self.outbox.backlog()
        return {"gate": self.outbox.gate_id, "at": _now(), "outbox_depth": b["depth"],
                "oldest_age_s": b["oldest_age_s"],
                **{k: v for k, v in self.gate_status().items() if k in P.HEARTBEAT_KEYS}}

    async def _post(self, role: str, path: str, payload) -> object:
        assert self._session is not None
        url = self.urls[role].rstrip("/") + path
        data = msgpack.packb(payload, use_bin_type=True)
        try:
            async with self._session.post(url, data=data, headers={"Content-Type": MSGPACK}) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise SendFailed(f"{role}: HTTP {resp.status}: {body[:200]!r}")
        except (aiohttp.ClientError, OSError, TimeoutError, ssl.SSLError) as exc:
            raise SendFailed(f"{role}: {type(exc).__name__}: {exc}") from None
        try:
            return msgpack.unpackb(body, raw=False)
        except (msgpack.UnpackException, ValueError) as exc:
            raise SendFailed(f"{role}: an answer that is not msgpack ({exc})") from None

    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.cfg.ca_cert))
        ctx.load_cert_chain(str(self.cfg.client_cert), str(self.cfg.client_key))
        return ctx

    def _publish(self) -> None:
        self.outbox.set_status({
            "active": self.machine.active, "url": self.urls.get(self.machine.active),
            "last_ack_at": self.last_ack_at, "errors": list(self.errors)[-5:],
            "acked": dict(self.sent), "refused": dict(self.refused),
            "switches": [s.__dict__ for s in self.switches[-10:]], "updated": _now(),
            **({"bundles": self.downstream.status()} if self.downstream is not None else {}),
        })


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()
