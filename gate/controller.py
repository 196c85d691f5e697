"""The gate's glue: drivers in, PassageMachine events and door commands out.

Everything here runs on the reactor loop. Driver events arrive through
`reactor.call_from_thread`; blocking work (chip read, face and fingerprint pipelines) runs in
worker threads via `reactor.run_blocking`. The machine (`gate/passage.py`) is the authority:
each lane state says what the doors must be (`DOORS`) and `_apply_doors` is the only place that
commands them, only ever opening a leaf once the other is *reported* closed and locked.

One passage, in order: MRZ read → chip read and passive authentication → eligibility → journal
→ entry opens → one adult walks in → entry locks → face (quality, liveness, match against the
chip photo) and, when enrolled or required, fingerprint → decision → exit opens and the traveller
leaves, or the entry reopens and the traveller steps back out. Each passage ends in a record.

Supervision: a device that is lost (or a door fault, or tamper) takes the lane out of service,
with anyone inside sent back through the entry; when every required device is healthy again
and the mantrap is clear the lane returns to service by itself. An unexpected error ends the
passage, never the process.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from core import logs
from core.audit import AuditLog
from core.component import Component, LinkDown, LinkUp
from core.errors import DeviceError, EGateError
from core.reasons import Reason, guidance_for
from drivers.door.driver import CommandFailed, DoorController, LeafFault
from drivers.door.protocol import (
    Beams, Emergency, Leaf, LeafState, Position, PowerState, Reject, RejectReason, Status, Tamper, Watchdog,
)
from drivers.mrz_reader.driver import MrzRead, MrzReader
from drivers.presence import Direction, Presence, PresenceConfig, PresenceTracker
from drivers.screen.driver import Rating, Screen
from gate.config import GateConfig
from gate.decision import Decider, Verdict
from gate.passage import DOORS, TIMEOUTS, PassageMachine
from gate.steps import ChipOutcome, ChipPhoto, ChipStep, FaceStep, FingerStep

log = logs.get("controller")

HEALTH_POLL_S = 0.5
HEALTH_HOLD_S = 1.0        # a device must stay lost (or healthy) this long to change the lane
HEARTBEAT_S = 0.1


@dataclass
class PassageRecord:
    """What a passage leaves behind: decisions, reason codes, scores and timings; never images.

    `reasons` are `core.reasons.Reason` values (plain strings); `reason_detail` maps a code to the
    open-ended detail that is not part of it (the error type of a `FAULT`)."""

    passage_id: str
    gate_id: str
    started: str
    outcome: str = "open"   # cleared | refused_document | refused_biometric | abandoned | exit_timeout | aborted
    reasons: list[str] = field(default_factory=list)
    reason_detail: dict[str, str] = field(default_factory=dict)
    document: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    timings_s: dict = field(default_factory=dict)
    t0: float = field(default_factory=time.monotonic, repr=False)  # monotonic start, not recorded
    record_id: str | None = field(default=None, repr=False)        # `<gate>:<seq>` once in the outbox

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("t0", "record_id")}


@dataclass(frozen=True)
class OfficerAlert:
    """Something an officer must come and see: a refer-back, a stranded person, tamper, a fault."""
    reason: str
    passage_id: str | None
    detail: str
    at: str


@dataclass
class Devices:
    """The hardware objects a controller drives (built by `gate.app`)."""

    door: DoorController
    mrz_reader: MrzReader
    chip: ChipStep
    face: FaceStep
    finger: FingerStep | None  # None when no templates are enrolled on this gate
    screen: Screen
    required: tuple[Component, ...] = ()   # whose health decides whether the lane is in service


class PassageStore(Protocol):
    """Where passages go (`sync.outbox.Outbox`): the open one, durably, before any leaf moves for
    it; its record, in the same transaction that closes it."""

    def open(self, passage: dict) -> None: ...
    def pending(self) -> dict | None: ...        # left open by a process that died
    def finish(self, passage: dict) -> str: ...  # the record's id


class Aborted(Exception):
    """The passage in progress must end now (a device was lost, the lane was taken out of service)."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(eq=False)
class PendingDocument:
    """A document read for the next passage, possibly while the mantrap is still occupied: its
    record (the clock starts at the MRZ read), the early decision (DG1 and EF.SOD read and verified,
    eligibility decided; DG2 may still be being read), the whole chip read (DG2's hash checked) and
    the chip photo, the enrolled fingerprint template. Nothing of it moves a leaf until the lane
    takes it (`passage`), in order, when idle."""

    read: MrzRead
    record: PassageRecord
    decided: asyncio.Future        # (Verdict, ChipOutcome | None) for the entry's decision
    chip: asyncio.Future           # the whole ChipOutcome (None without an MRZ)
    template: asyncio.Future       # the enrolled template or None
    photo: ChipPhoto = field(default_factory=ChipPhoto)
    aborted: Aborted | None = None
    reading_shown: bool = False

    @property
    def traveller_id(self) -> str | None:
        m = self.read.mrz
        return f"{m.issuer}:{m.document_number}" if m is not None else None


_NOT_IN_SERVICE = ("recovering", "out_of_service", "maintenance", "closed", "emergency")
# Refusals in the mantrap an officer is alerted to although the screen does not send the traveller to one.
_ALERTED = (Reason.TAILGATING,)
# The lane states a passage can be aborted from (`abort`): the traveller has not been cleared.
_ABORTABLE = ("reading_document", "entering", "confirming_occupancy", "face", "finger", "deciding")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


class GateController:
    def __init__(self, cfg: GateConfig, reactor, devices: Devices, *, store: PassageStore | None = None,
                 audit: AuditLog | None = None, on_alert: Callable[[OfficerAlert], None] = lambda alert: None):
        self.cfg = cfg
        self.reactor = reactor
        self.dev = devices
        self.store = store
        self.audit = audit
        self.on_alert = on_alert
        self.presence = PresenceTracker(PresenceConfig(beams=cfg.devices.door.beams))
        self.last_presence: Presence | None = None
        self.leaves: dict[Leaf, LeafState | None] = {Leaf.ENTRY: None, Leaf.EXIT: None}
        self.emergency = False
        self.tamper = False
        self.door_fault: str | None = None     # a leaf fault or failed command, until the leaves obey again
        self.language = cfg.devices.screen.languages[0]
        self.records: list[PassageRecord] = []
        self.alerts: list[OfficerAlert] = []
        self.ratings: dict[str, int] = {}        # travellers' one-tap satisfaction ratings, by face
        self.heartbeat = time.monotonic()
        self._commanded: dict[Leaf, str | None] = {Leaf.ENTRY: None, Leaf.EXIT: None}
        self._visits = 0                          # state entries so far: a timeout belongs to one visit
        self._mrz: asyncio.Queue[MrzRead] = asyncio.Queue(maxsize=1)
        self._pending: PendingDocument | None = None   # the next passage's document, read ahead
        self.cycles: dict[str, float] = {}       # cleared passage id -> MRZ read → exit locked behind them (s)
        self._last_cleared: PassageRecord | None = None
        self._changed = asyncio.Event()
        self._passage: asyncio.Task | None = None
        self._cancel = threading.Event()       # the current passage's worker threads stop when set
        self._abort: Aborted | None = None
        self._mantrap_flags: set[Reason] = set()
        self._traveller_track: int | None = None
        self._decision = False
        self._serving: asyncio.Task | None = None
        self._since: dict[str, tuple[bool, float]] = {}   # device -> (healthy, since when)
        self._lost: dict[str, str] = {}          # device -> why, while the lane is out of service for it
        self._journal_id: str | None = None      # the passage in progress
        self.last_health: dict[str, str | None] = {}
        self._in_service_s = 0.0
        self._in_service_since = 0.0
        self._against_flow = False
        # The console's hooks (gate/console/lane.py): hold new documents while the lane is being taken
        # out; open a leaf for a door test in maintenance; the passage refused in the mantrap while its
        # traveller may still be inside (an officer may release them).
        self.hold_documents = 0
        self.door_test: Leaf | None = None
        self.refused_inside: str | None = None
        self.decider = Decider(cfg)               # gate.app gives it the screening services
        self.machine = PassageMachine(self, on_state=self._on_state)

    # -- the machine's facts (guards) --------------------------------------------------
    def mantrap_empty(self) -> bool:
        p = self.last_presence
        return p is not None and p.occupancy == 0 and not p.bodies and not p.objects_left

    def entry_secured(self) -> bool:
        return self._leaf_locked(Leaf.ENTRY)

    def exit_secured(self) -> bool:
        return self._leaf_locked(Leaf.EXIT)

    def decision_positive(self) -> bool:
        return self._decision and not self._mantrap_flags

    def _leaf_locked(self, leaf: Leaf) -> bool:
        state = self.leaves[leaf]
        return state is not None and state.position == Position.CLOSED and state.locked

    def alive(self) -> bool:
        """For the door driver's keep-alive: the loop is turning and the controller is serving."""
        serving = self._serving is not None and not self._serving.done()
        return serving and time.monotonic() - self.heartbeat < self.cfg.devices.door.watchdog_ms / 2000

    # -- driver events (on the loop) ------------------------------------------------------
    def door_event(self, ev) -> None:
        match ev:
            case Status():
                self.leaves[Leaf.ENTRY], self.leaves[Leaf.EXIT] = ev.entry, ev.exit
                self._beams(ev.beams)
                self._set_tamper(ev.tamper)
                self._set_emergency(ev.emergency)
                self._check_door_fault_cleared()
                self._apply_doors()
            case Beams():
                self._beams(ev)
            case LeafState():
                self.leaves[ev.leaf] = ev
                self._check_door_fault_cleared()
                self._apply_doors()          # an open waiting on the other leaf's lock may go now
            case Emergency(active=active):
                self._set_emergency(active)
            case Tamper(active=active):
                self._set_tamper(active)
            case LeafFault(leaf=leaf, expected=expected):
                if leaf == Leaf.ENTRY and self.machine.state == "confirming_occupancy":
                    # The door controller's word that the entry did not close behind the traveller comes
                    # before the state's own timeout: the passage ends as ENTRY_NOT_CLOSED, not as a FAULT.
                    self._expire("confirming_occupancy", self._visits)
                self._door_fault(f"{leaf.name.lower()} leaf did not reach {expected.name.lower()}")
            case CommandFailed(command=command, attempts=n):
                self._door_fault(f"{type(command).__name__} not acknowledged after {n} attempts")
            case Reject(command=command, reason=reason):
                if reason != RejectReason.EMERGENCY:   # under emergency the firmware refuses close/lock: expected
                    log.warning("door_reject", command=command, reason=reason.name)
                self._commanded = {Leaf.ENTRY: None, Leaf.EXIT: None}   # re-apply when the facts change
            case LinkUp():
                self._commanded = {Leaf.ENTRY: None, Leaf.EXIT: None}   # the controller's state is re-read (HELLO)
            case LinkDown(reason=reason):
                log.warning("door_link_down", reason=reason)
            case Watchdog(tripped=tripped):
                self._audit("door.fault", what="watchdog", tripped=tripped)
                self._commanded = {Leaf.ENTRY: None, Leaf.EXIT: None}
            case PowerState(state=power):
                self._audit("door.fault", what="power", state=power.name.lower())
        self._changed.set()

    def mrz_event(self, ev) -> None:
        if isinstance(ev, MrzRead):
            # Read ahead while the mantrap is busy: the next traveller's document is read, authenticated
            # and decided meanwhile (`_documents`); one document at a time on the reader.
            if self.machine.state in _NOT_IN_SERVICE or self._mrz.full() or self.hold_documents:
                log.info("mrz_ignored", state=self.machine.state)
                return
            self._mrz.put_nowait(ev)
        self._changed.set()

    def device_event(self, ev) -> None:
        """Link and stream changes of the camera and the fingerprint scanner (health polls decide)."""
        log.info("device_event", kind=type(ev).__name__, detail=getattr(ev, "reason", None))
        self._changed.set()

    def screen_event(self, ev) -> None:
        """A traveller's one-tap rating after their passage (`drivers.screen.driver.Rating`): kept as
        its own signed record linked by passage id (`Outbox.rate`); the passage record is already final."""
        if not isinstance(ev, Rating):
            return
        self.ratings[ev.rating] = self.ratings.get(ev.rating, 0) + 1
        try:
            if self.store is not None and hasattr(self.store, "rate"):
                self.store.rate(ev.passage_id, ev.rating)
        except Exception as exc:  # a rating is never worth a passage: logged, not raised
            log.warning("rating_not_recorded", passage_id=ev.passage_id, error=f"{type(exc).__name__}: {exc}")

    def _beams(self, ev: Beams) -> None:
        self.last_presence = p = self.presence.update(time.monotonic(), ev.low, ev.high)
        state = self.machine.state
        if state in ("entering", "confirming_occupancy", "face", "finger", "deciding"):
            # A glance at one instant can miss a tailgater: remember anything seen while one
            # traveller is let in and verified.
            if p.tailgating or p.occupancy > 1:
                self._mantrap_flags.add(Reason.TAILGATING)
            if p.children and self.cfg.eligibility.min_height_cm:
                self._mantrap_flags.add(Reason.BELOW_MIN_HEIGHT)
            if self._traveller_track is None and p.bodies:
                self._traveller_track = p.bodies[0].track
        elif state == "exiting" and self._came_from_exit(p):
            self._against_flow = True
            self._alert(Reason.AGAINST_FLOW, "a body appeared at the exit leaf and walked in")
            self._show_reason(Reason.AGAINST_FLOW)
            self.machine.send("against_flow")
        elif state == "idle" and p.occupancy > 0:
            self._alert(Reason.MANTRAP_OCCUPIED, f"{p.occupancy} person(s) in the mantrap while idle")
            self.machine.send("occupied")

    def _came_from_exit(self, p: Presence) -> bool:
        last = self.cfg.devices.door.beams - 1
        return any(b.track != self._traveller_track and b.origin >= last - 0.5
                   and b.direction != Direction.TOWARD_EXIT for b in p.bodies)

    # -- faults, tamper, emergency ---------------------------------------------------------
    def _door_fault(self, what: str) -> None:
        if self.emergency:
            return  # the firmware holds both leaves open and refuses the rest: not a fault
        if self.door_fault is None:
            log.error("door_fault", what=what)
            self._audit("door.fault", what=what)
        self.door_fault = what
        self._commanded = {Leaf.ENTRY: None, Leaf.EXIT: None}  # commanded again until the leaves obey
        self._device_lost("door", what)

    def _check_door_fault_cleared(self) -> None:
        if self.door_fault is None:
            return
        # Only both leaves reported closed and locked clear it: a leaf stuck open is exactly where
        # `returning` wants the entry, and that must not count as the door obeying again.
        if all(self._leaf_locked(leaf) for leaf in Leaf):
            log.info("door_fault_cleared", was=self.door_fault)
            self.door_fault = None

    def _set_tamper(self, active: bool) -> None:
        if active == self.tamper:
            return
        self.tamper = active
        self._audit("tamper", active=active)
        if active:
            self._alert(Reason.TAMPER, "the door controller reports a leaf forced or its housing open")
            self._device_lost("door", "tamper")

    def _set_emergency(self, active: bool) -> None:
        if active == self.emergency:
            return
        self.emergency = active
        self._audit("emergency", active=active)
        if active:
            self._abort_passage(Reason.EMERGENCY, "emergency input")
            self._show("passage.emergency")  # first: whoever sees the emergency state sees it on the screen too
            self.machine.send("emergency_on")
        else:
            self._commanded = {Leaf.ENTRY: None, Leaf.EXIT: None}
            self.machine.send("emergency_off")

    def _device_lost(self, device: str, why: str) -> None:
        if device in self._lost:
            return
        self._lost[device] = why
        self._audit("service.out", device=device, why=why)
        log.error("device_lost", device=device, why=why)
        if why != "tamper":  # a forced door has its own alert
            self._alert(Reason.FAULT, f"{device}: {why}")
        if self.machine.healthy:
            self.machine.send("device_lost")
        if self.machine.state not in ("exiting", "exit_attention"):  # a cleared traveller still walks out
            self._abort_passage(Reason.FAULT, f"{device}: {why}")
        if self.machine.state == "idle":
            self.machine.send("taken_out_of_service")
            self._show("gate.out_of_service")

    def _device_restored(self, device: str) -> None:
        why = self._lost.pop(device, None)
        if why is None:
            return
        self._audit("service.in", device=device, was=why)
        log.info("device_restored", device=device)
        if not self._lost and not self.machine.healthy:
            self.machine.send("devices_restored")
            if self.machine.state == "out_of_service":
                self.machine.send("back_in_service")

    def _health(self) -> dict[str, str | None]:
        """Each required device: None when usable, else why not."""
        out: dict[str, str | None] = {}
        door = self.dev.door
        out["door"] = ("tamper" if self.tamper else self.door_fault if self.door_fault
                       else None if door.state.link_up else "link down")
        for comp in self.dev.required:
            status = comp.status()
            out[comp.name] = None if status.healthy else status.detail
        return out

    async def _heartbeat(self) -> None:
        """Proves the loop turns (the door driver feeds the door's watchdog only while it does)."""
        while True:
            self.heartbeat = time.monotonic()
            await asyncio.sleep(HEARTBEAT_S)

    async def _supervise(self) -> None:
        """Device health with hysteresis: out of service when a device stays unusable, back when
        every device stays usable; a door that disobeys is commanded again."""
        while True:
            health = self.last_health = await self.reactor.run_blocking(self._health)
            now = time.monotonic()
            for name, problem in health.items():
                ok = problem is None
                was, since = self._since.get(name, (ok, now))
                if ok != was:
                    since = now
                self._since[name] = (ok, since)
                if now - since < HEALTH_HOLD_S:
                    continue
                if ok:
                    self._device_restored(name)
                else:
                    self._device_lost(name, problem)
            if self.door_fault is not None:
                self._commanded = {Leaf.ENTRY: None, Leaf.EXIT: None}
                self._apply_doors()
            await asyncio.sleep(HEALTH_POLL_S)

    def status_snapshot(self) -> dict:
        """For the central heartbeat: state, device health, counters, time in service."""
        now = time.monotonic()
        in_service = self._in_service_s + (now - self._in_service_since if self._in_service_since else 0.0)
        counters = {"alerts": len(self.alerts)}
        for r in self.records:
            counters[r.outcome] = counters.get(r.outcome, 0) + 1
        counters.update({f"rated_{face}": n for face, n in self.ratings.items()})   # live satisfaction at central
        return {"state": self.machine.state, "health": dict(self.last_health), "counters": counters,
                "in_service_s": round(in_service, 1), **self.decider.status()}

    def set_maintenance(self, on: bool, actor: str) -> bool:
        """Take the lane out of service for a technician, or give it back (through recovery).
        Only between passages: returns False (and changes nothing) while a traveller is in the lane."""
        state = self.machine.state
        if on and state in ("idle", "out_of_service", "recovering"):
            self.machine.send("maintenance_on")
            self._show("gate.out_of_service")
        elif not on and state == "maintenance":
            self.machine.send("maintenance_off")
        else:
            return False
        self._audit("maintenance.enter" if on else "maintenance.exit", technician=actor)
        self._changed.set()
        return True

    def officer_release(self) -> None:
        """An officer cleared the traveller refused in the mantrap by hand (gate/console/lane.py): their
        decision stands for the gate's, and the machine's guards still hold (someone inside, the
        entry reported locked before the exit opens)."""
        self._decision, self._mantrap_flags = True, set()
        try:
            self.machine.send("officer_release")
        except Exception:
            self._decision = False
            raise

    def set_door_test(self, leaf: Leaf | None) -> None:
        """Open `leaf` for a technician's door test (maintenance only, and only once the other leaf
        is reported locked: `_apply_doors`), or lock it again with None."""
        self.door_test = leaf
        self._apply_doors()

    # -- state → hardware ------------------------------------------------------------------
    def _on_state(self, state: str) -> None:
        log.info("passage_state", state=state)
        self.dev.screen.lane_state(state)   # the screen's own message where gate logic shows none
        self.lane_state = state
        now = time.monotonic()
        serving = state not in _NOT_IN_SERVICE
        if serving and not self._in_service_since:
            self._in_service_since = now
        elif not serving and self._in_service_since:
            self._in_service_s += now - self._in_service_since
            self._in_service_since = 0.0
        self._visits += 1
        if not serving:  # a document read just before is not a passage to start once the lane is back
            while not self._mrz.empty():
                self._mrz.get_nowait()
            self._drop_pending(f"lane {state}")
        if state not in ("returning", "entry_attention", "releasing"):
            self.refused_inside = None
        if state == "out_of_service":
            self._alert(Reason.OUT_OF_SERVICE, ", ".join(f"{d}: {why}" for d, why in self._lost.items()) or state)
        timeout = TIMEOUTS.get(state)
        if timeout is not None:  # never at construction: the machine enters `recovering` before any loop runs
            delay = getattr(self.cfg.timeouts, timeout.setting) * timeout.factor
            asyncio.get_running_loop().call_later(delay, self._expire, state, self._visits)
        self._apply_doors()
        self._changed.set()

    def _expire(self, state: str, visit: int) -> None:
        """A per-state timeout: fires only if the machine is still in the same visit of that state."""
        if self.machine.state != state or self._visits != visit:
            return
        timeout = TIMEOUTS[state]
        log.warning("state_timeout", state=state, reason=timeout.reason.value)
        if timeout.reason.refer_to_officer:
            self._alert(timeout.reason, f"timed out in {state}")
        self._show_reason(timeout.reason)
        self.machine.send(timeout.event)
        if state == "exit_clear":
            self._door_fault("exit leaf not reported locked after the traveller left")

    def _apply_doors(self) -> None:
        """Command each leaf towards what the state requires; open a leaf only once the other is
        reported closed and locked (the firmware refuses otherwise too). Idempotent."""
        if self.emergency or not self.dev.door.state.link_up:
            return  # the door controller holds both open by itself / re-applied on the STATUS after HELLO
        want = dict(zip((Leaf.ENTRY, Leaf.EXIT), DOORS[self.lane_state]))
        if self.door_test is not None and self.lane_state == "maintenance":
            want[self.door_test] = "open"
        for leaf in (Leaf.ENTRY, Leaf.EXIT):
            other = Leaf.EXIT if leaf == Leaf.ENTRY else Leaf.ENTRY
            if want[leaf] == "open" and not self._leaf_locked(other):
                continue  # re-applied when the other leaf reports locked
            if self._commanded[leaf] == want[leaf]:
                continue
            try:
                (self.dev.door.open if want[leaf] == "open" else self.dev.door.lock)(leaf)
            except DeviceError as exc:
                log.warning("door_command_failed", leaf=leaf.name, error=str(exc))
                continue  # the link is down: re-applied on LinkUp
            self._commanded[leaf] = want[leaf]

    def _show(self, message_id: str, **params) -> None:
        try:
            self.dev.screen.show(message_id, self.language, params or None)
        except DeviceError as exc:
            log.warning("screen_failed", error=str(exc), message_id=message_id)

    def _show_reason(self, reason: Reason) -> None:
        self._show(reason.guidance)

    def _alert(self, reason: Reason, detail: str, passage_id: str | None = None) -> None:
        passage_id = passage_id or self._journal_id
        alert = OfficerAlert(reason.value, passage_id, detail, _now())
        self.alerts.append(alert)
        log.warning("officer_alert", reason=reason.value, passage_id=passage_id, detail=detail)
        self._audit("officer.alert", reason=reason.value, passage_id=passage_id, detail=detail)
        try:
            self.on_alert(alert)
        except Exception as exc:  # the alert is in the audit trail whatever the sink does
            log.error("alert_sink_failed", error=f"{type(exc).__name__}: {exc}")

    def _audit(self, action: str, **details) -> None:
        if self.audit is not None:
            self.audit.append("gate", action, gate_id=self.cfg.gate.id, **details)

    # -- waiting ---------------------------------------------------------------------------
    async def _until(self, predicate, timeout_s: float | None = None) -> bool:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not predicate():
            if self._abort is not None:
                raise self._abort
            left = 0.25 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            await self._wait_changed(min(left, 0.25))
        return True

    async def _wait_changed(self, timeout_s: float) -> None:
        """Until a driver event or `timeout_s`. Not `asyncio.wait_for`: on Python 3.11 it can swallow
        a cancellation that arrives as the event is set, and a cancelled passage would run on."""
        self._changed.clear()
        waiter = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait({waiter}, timeout=timeout_s)
        finally:
            waiter.cancel()

    def occupancy(self) -> int:
        p = self.last_presence
        return 0 if p is None else p.occupancy

    # -- main loop ---------------------------------------------------------------------------
    async def serve(self) -> None:
        """Serve travellers until cancelled; no error ends this loop."""
        self._serving = asyncio.current_task()
        self._record_interrupted()
        helpers = [asyncio.create_task(self._heartbeat()), asyncio.create_task(self._supervise()),
                   asyncio.create_task(self._documents())]
        try:
            while True:
                try:
                    await self._serve_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("controller_error")
                    self._audit("service.out", device="controller", why=f"{type(exc).__name__}: {exc}")
                    await asyncio.sleep(0.5)  # a fault that repeats must not spin the loop
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _serve_once(self) -> None:
        state = self.machine.state
        if state == "recovering":
            await self.recover()
        elif state == "idle" and not self.machine.healthy:
            self.machine.send("taken_out_of_service")
        elif state == "idle":
            if self._pending is None and self._mrz.empty():
                self._show("gate.welcome")
            pending = await self._next_pending()
            if pending is None:
                return
            await self._run_passage(pending)
        elif state in ("returning", "entry_attention"):
            await self._until(lambda: self.mantrap_empty() or self.machine.state != state)  # or an officer released
            if self.machine.state == state:
                self.machine.send("returned")
        elif state in ("exiting", "exit_attention"):
            await self._until(lambda: self.mantrap_empty() or self.machine.state != state)
            if self.machine.state == state:
                self.machine.send("exited")
        elif state == "releasing":
            await self._until(lambda: self.entry_secured() or self.mantrap_empty() or self.machine.state != state)
            if self.machine.state == state:
                self.machine.send("returned" if self.mantrap_empty() else "released")
        elif state == "exit_clear":
            await self._until(lambda: self.exit_secured() and self.mantrap_empty())
            if self.machine.state == "exit_clear":
                self.machine.send("exit_locked")
                last = self._last_cleared
                if last is not None:   # the lane's cycle: the exit locked behind the traveller
                    self._last_cleared = None
                    self.cycles[last.passage_id] = round(time.monotonic() - last.t0, 3)
                    log.info("lane_cycle", passage_id=last.passage_id, cycle_s=self.cycles[last.passage_id],
                             passage_s=last.timings_s.get("passage"))
        else:  # out_of_service, maintenance, closed, emergency: events move the machine
            if state in ("out_of_service", "closed"):
                self._show("gate.out_of_service")
            await self._until(lambda: self.machine.state != state)

    async def _next_pending(self) -> PendingDocument | None:
        """The next document (being read or read ahead), taken off the queue; None when the lane
        leaves idle first (an alarm, a fault)."""
        while self.machine.state == "idle":
            pending = self._pending
            if pending is not None and not self.hold_documents:
                self._pending = None
                return pending
            await self._wait_changed(0.25)
        return None

    async def _run_passage(self, pending: PendingDocument) -> None:
        self._abort = None
        self._cancel = threading.Event()
        self._passage = asyncio.current_task()
        try:
            await self.passage(pending)
        finally:
            self._passage = None
            self._abort = None

    def _drop_pending(self, why: str) -> None:
        """The document read ahead will not become a passage (the lane left service, an abort): no
        leaf moved for it and no journal holds it; its traveller lays it down again."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.aborted = Aborted(Reason.FAULT, why)
            log.info("document_dropped", passage_id=pending.record.passage_id, why=why)
            self._audit("document.dropped", passage_id=pending.record.passage_id, why=why)

    def _abort_passage(self, reason: Reason, detail: str) -> None:
        """End the passage in progress: its waits raise, its worker threads stop at their next check."""
        self._drop_pending(detail)
        if self._journal_id is None:
            return
        self._cancel.set()
        if self.dev.finger is not None:
            self.dev.finger.scanner.cancel()
        self._abort = Aborted(reason, detail)
        self._changed.set()

    async def recover(self) -> None:
        """Boot, after an emergency, a fault or maintenance: lock both leaves; if anyone is inside,
        send them back out through the entry (never the exit: a restart clears nobody)."""
        def still() -> bool:
            return self.machine.state == "recovering"

        self._apply_doors()
        if not await self._until(lambda: self.last_presence is not None or not still(), 2.0):
            self._show("gate.out_of_service")      # no beams, no service: the door link is down
            await self._until(lambda: self.last_presence is not None or not still())
        if not still():
            return
        if self.occupancy() > 0:
            log.warning("recover_mantrap_occupied", occupancy=self.occupancy())
            self._audit("recovery", occupancy=self.occupancy())
            self._show("passage.step_back")
            self.machine.send("occupied")
            return
        if not await self._until(lambda: self.mantrap_empty() or not still(), 1.0):
            self._show("passage.take_belongings")      # an object: wait for it to be removed
            if not await self._until(lambda: self.mantrap_empty() or not still(), self.cfg.timeouts.passage_s):
                self._alert(Reason.OBJECT_LEFT, "an object in the mantrap at recovery")
                await self._until(lambda: self.mantrap_empty() or not still())
        if still():
            self.machine.send("recovered")

    def _record_interrupted(self) -> None:
        """A passage the previous process left open is recorded now as interrupted."""
        if self.store is None:
            return
        try:
            pending = self.store.pending()
            detail = "gate process ended mid-passage"
        except EGateError as exc:  # a journal entry that is not a passage: recorded all the same
            pending, detail = {"passage_id": uuid.uuid4().hex}, str(exc)
        if pending is None:
            return
        record = PassageRecord(pending["passage_id"], self.cfg.gate.id, str(pending.get("started", _now())))
        record.document = pending.get("document", {}) if isinstance(pending.get("document"), dict) else {}
        self._audit("passage.interrupted", passage_id=record.passage_id, state=str(pending.get("state")))
        self._finish(record, "aborted", [Reason.INTERRUPTED], {Reason.INTERRUPTED: detail})

    # -- one passage -------------------------------------------------------------------------
    async def passage(self, pending: PendingDocument) -> PassageRecord:
        """One passage, from a document read (or being read) by `_documents`. Pipelined: the
        document may have been decided while the previous traveller was in the mantrap; the entry
        opens once DG1 and EF.SOD are verified and eligibility decided, while DG2 may still be read;
        face capture (with its liveness prompt) and the fingerprint start together the moment the
        traveller is inside; every decision waits for the entry reported locked and, for the face,
        for DG2 read and its hash checked."""
        read, record = pending.read, pending.record
        self._journal_id = record.passage_id
        self.dev.screen.passage(record.passage_id, read.mrz.issuer if read.mrz else None)   # language; rating link
        self._decision = False
        face_task = finger_task = None
        try:
            self.machine.send("document_presented")
            self._journal(record, "reading_document")
            if not pending.decided.done() and not pending.reading_shown:
                self._show("document.reading")
            verdict, chip = await self._await(pending.decided)
            if pending.aborted is not None:
                raise pending.aborted
            if not verdict.accepted:
                self._show(verdict.guidance)
                self.machine.send("document_refused")
                self._refer(verdict.reasons, "document refused")
                return self._finish(record, "refused_document", verdict.reasons)
            # The entry opens only with the exit reported locked and the mantrap empty.
            if not await self._until(lambda: self.exit_secured() and self.mantrap_empty(),
                                     2 * self.cfg.timeouts.door_travel_s):
                what = "exit leaf not reported locked" if not self.exit_secured() else "mantrap not empty"
                if not self.exit_secured():
                    self._door_fault(what)
                raise Aborted(Reason.FAULT, what)
            self._mantrap_flags.clear()
            self._against_flow = False
            self._traveller_track = None
            self._journal(record, "entering")
            self.machine.send("document_accepted")
            self._show("passage.enter")
            t_enter = time.monotonic()
            if not await self._until(lambda: self._walked_in() or self.machine.state != "entering"):
                raise AssertionError("unreachable: an unbounded wait returned False")
            if self.machine.state != "entering":  # entry_timeout: nobody came in
                return self._finish(record, "abandoned", [Reason.ENTRY_TIMEOUT])
            self.machine.send("entered")
            # The traveller is inside: face capture with its liveness prompt, and the fingerprint of an
            # enrolled traveller, start now, while the entry closes behind them (not for someone the
            # beams already refuse: a tailgater, a child).
            if not self._mantrap_flags:
                face_task, finger_task = await self._start_biometrics(pending, record)
            # Nothing is decided with the entry open: wait for it to be reported locked.
            await self._until(lambda: self.entry_secured() or self.machine.state != "confirming_occupancy")
            record.timings_s["enter"] = round(time.monotonic() - t_enter, 3)
            if self.machine.state != "confirming_occupancy":  # entry_not_closed
                return self._finish(record, "refused_biometric", [Reason.ENTRY_NOT_CLOSED])
            if self._mantrap_flags:
                return self._refuse(record, sorted(self._mantrap_flags))
            self.machine.send("occupancy_confirmed")
            if face_task is None:
                face_task, finger_task = await self._start_biometrics(pending, record)
            # The whole chip (DG2 read, its hash checked) before any face decision.
            document = await self._document_complete(pending, record)
            if document:
                return self._refuse(record, document, outcome="refused_document")
            reasons = await self._verify_biometrics(face_task, finger_task, record)
            reasons = sorted(self._mantrap_flags) or reasons  # a tailgater seen during verification too
            self._decision = not reasons
            if reasons:
                return self._refuse(record, reasons)
            self.machine.send("verified")
            self._show("passage.proceed")
            t_exit = time.monotonic()
            await self._until(lambda: self.mantrap_empty() or self.machine.state != "exiting")
            record.timings_s["exit"] = round(time.monotonic() - t_exit, 3)
            if self.machine.state == "exit_attention" and not self._against_flow:
                return self._finish(record, "exit_timeout", [Reason.EXIT_TIMEOUT])
            if self.machine.state == "exiting":
                self.machine.send("exited")
            # The traveller's clock: MRZ read → past the exit leaf (the lane's cycle ends when it locks).
            record.timings_s["passage"] = round(time.monotonic() - record.t0, 3)
            self._last_cleared = record
            # Against the flow: the traveller was cleared and the exit is open; the intruder is the
            # officer's (alerted) and leaves by the exit too, while the serving loop waits.
            detail = {Reason.AGAINST_FLOW: "someone came in from the exit side"} if self._against_flow else None
            return self._finish(record, "cleared", [], detail)
        except Aborted as ab:
            self._cancel.set()
            record = self._finish(record, "aborted", [ab.reason], {ab.reason: ab.detail})
            if self.machine.state in _ABORTABLE:
                self.machine.send("abort")
            return record
        except asyncio.CancelledError:
            self._cancel.set()
            self._finish(record, "aborted", [Reason.EMERGENCY if self.emergency else Reason.SHUTDOWN])
            raise
        except Exception as exc:
            self._cancel.set()
            log.exception("passage_failed", passage_id=record.passage_id)
            self._finish(record, "aborted", [Reason.FAULT], {Reason.FAULT: type(exc).__name__})
            if self.machine.state in _ABORTABLE:
                self.machine.send("abort")
            return record
        finally:
            self._journal_id = None
            self._stop_biometrics(face_task, finger_task, pending)
            log.info("passage_done", passage_id=record.passage_id, outcome=record.outcome, reasons=record.reasons)

    def _refuse(self, record: PassageRecord, reasons: list[Reason], outcome: str = "refused_biometric") -> PassageRecord:
        """Back out through the entry; a refer-back always reaches an officer."""
        self._show(guidance_for(reasons))
        self.machine.send("refused")
        self.refused_inside = record.passage_id
        self._refer(reasons, "refused in the mantrap")
        return self._finish(record, outcome, reasons)

    def _refer(self, reasons, where: str) -> None:
        """A refusal whose guidance sends the traveller to an officer (document or mantrap) alerts one."""
        referred = [Reason(r) for r in reasons if Reason(r).refer_to_officer or Reason(r) in _ALERTED]
        if referred and not any(a.reason == referred[0].value and a.passage_id == self._journal_id
                                for a in self.alerts[-8:]):   # already alerted with its detail (a control-list hit)
            self._alert(referred[0], f"{where}: " + ", ".join(Reason(r).value for r in reasons))

    def _journal(self, record: PassageRecord, state: str) -> None:
        if self.store is not None:
            self.store.open({"passage_id": record.passage_id, "started": record.started, "state": state,
                               "document": record.document})

    def _walked_in(self) -> bool:
        """Someone is in the mantrap and clear of the entry leaf's swing (beam 0)."""
        p = self.last_presence
        return p is not None and p.occupancy >= 1 and all(b.first > 0 for b in p.bodies)

    async def _documents(self) -> None:
        """Reads documents as they are laid down, also while the mantrap is busy, one at a time:
        the record opens at the MRZ read, the chip is read and verified, the traveller decided
        (`PendingDocument`); the lane takes it when idle. The next document is read only once this
        one's chip read is over (one reader) and the lane has taken it."""
        while True:
            read = await self._mrz.get()
            if self.machine.state in _NOT_IN_SERVICE or self.hold_documents:
                continue
            loop = asyncio.get_running_loop()
            pending = PendingDocument(read, PassageRecord(uuid.uuid4().hex, self.cfg.gate.id, _now()),
                                      loop.create_future(), loop.create_future(), loop.create_future())
            self._pending = pending
            self._changed.set()
            if self.machine.state == "idle":
                self._show("document.reading")
                pending.reading_shown = True
            try:
                await self._read_document(pending)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("document_read_failed", passage_id=pending.record.passage_id)
                pending.aborted = pending.aborted or Aborted(Reason.FAULT, type(exc).__name__)
            finally:
                for fut in (pending.decided, pending.chip, pending.template):
                    if not fut.done() and not isinstance(fut, asyncio.Task):
                        fut.set_result((Verdict(False, (Reason.FAULT,)), None) if fut is pending.decided else None)
                if not pending.photo.ready():
                    pending.photo.set(None)
            while self._pending is pending:       # not taken yet: the next document waits
                await self._wait_changed(0.25)

    async def _read_document(self, pending: PendingDocument) -> None:
        read, record = pending.read, pending.record
        if read.mrz is None:
            pending.decided.set_result((Verdict(False, (Reason.MRZ_UNREADABLE,)), None))
            return
        optical = read.mrz
        record.document = {"type": optical.doc_type, "issuer": optical.issuer, "nationality": optical.nationality,
                           "number": optical.document_number}
        loop = asyncio.get_running_loop()
        if self.dev.finger is not None:   # the enrolled template, fetched while the chip is read
            pending.template = asyncio.ensure_future(
                self.reactor.run_blocking(self.dev.finger.enrolled, pending.traveller_id))
        early: asyncio.Future = loop.create_future()

        def early_outcome(outcome: ChipOutcome) -> None:   # in the chip's worker thread, DG1 and EF.SOD verified
            self.reactor.call_from_thread(lambda: early.done() or early.set_result(outcome))

        work = asyncio.ensure_future(self.reactor.run_blocking(self.dev.chip.read_page, read, early_outcome))
        await asyncio.wait({work, early}, return_when=asyncio.FIRST_COMPLETED)
        chip = work.result() if work.done() else early.result()   # the whole read when it was that quick
        record.timings_s.update({f"chip.{k}": round(v, 3) for k, v in chip.timings_s.items()})
        if chip.error:
            record.document["chip_error"] = chip.error
        if chip.access:
            record.document["access"] = chip.access
        verdict = await self.reactor.run_blocking(self.decider.decide, optical, chip)   # gate/decision.py
        record.document.update(verdict.details)
        for reason, detail in verdict.alerts:   # a control-list hit: the officer gets the entry, the screen nothing
            self._alert(reason, detail, passage_id=record.passage_id)
        record.timings_s["document"] = round(time.monotonic() - record.t0, 3)
        pending.decided.set_result((verdict, chip))
        self._changed.set()
        full = await work
        if full is not chip:
            record.timings_s.update({f"chip.{k}": round(v, 3) for k, v in full.timings_s.items()
                                     if k not in ("early", "passive_auth")})
            record.timings_s["chip.passive_auth_dg2"] = round(full.timings_s.get("passive_auth", 0.0), 3)
        record.timings_s["chip.total"] = round(time.monotonic() - record.t0, 3)
        pending.chip.set_result(full)
        # The photo reaches the face step only once its hash is checked against the signed SOD.
        pa_ok = full.passive_auth is not None and full.passive_auth.passed and not full.error
        pending.photo.set(full.face_image if pa_ok else None)
        self._changed.set()

    async def _document_complete(self, pending: PendingDocument, record: PassageRecord) -> list[Reason]:
        """The whole chip read for the traveller inside: its passive authentication over every group
        (DG2's hash) must pass before any face decision; the reasons to refuse otherwise."""
        full = await self._await(pending.chip)
        if pending.aborted is not None:
            raise pending.aborted
        if full is None or full.passive_auth is None:
            if full is not None and full.error:
                record.document["chip_error"] = full.error
            return [Reason.CHIP_UNREADABLE]
        record.document["passive_auth"] = {c.name: c.status for c in full.passive_auth.checks}
        if not full.passive_auth.passed:
            return [Reason.for_pa_check(c.name) for c in full.passive_auth.failed] or [Reason.PA_VERDICT]
        if full.error:   # DG2 does not parse
            record.document["chip_error"] = full.error
        return []

    async def _await(self, future: asyncio.Future):
        """A future of this passage that an abort interrupts at once."""
        while True:
            done, _ = await asyncio.wait({future}, timeout=0.1)
            if self._abort is not None:
                raise self._abort
            if done:
                return future.result()

    async def _blocking(self, fn, *args):
        """A worker-thread step that an abort interrupts at once (the thread stops at its next check)."""
        work = asyncio.ensure_future(self.reactor.run_blocking(fn, *args))
        while True:
            done, _ = await asyncio.wait({work}, timeout=0.1)
            if done and self._abort is None:
                return work.result()
            if self._abort is not None:
                work.add_done_callback(lambda f: f.exception())  # its result is dropped, its error too
                raise self._abort

    async def _start_biometrics(self, pending: PendingDocument, record: PassageRecord):
        """Face capture (and its liveness prompt) now, against the chip photo once it is read; the
        fingerprint of an enrolled traveller in parallel. Returns the two running tasks (finger None
        when not enrolled or no scanner)."""
        t = time.monotonic()
        face_task = asyncio.ensure_future(self.reactor.run_blocking(
            self.dev.face.verify, pending.photo, self._show_threadsafe, self._cancel))
        face_task.add_done_callback(lambda f: record.timings_s.__setitem__("face", round(time.monotonic() - t, 3)))
        template = await self._await(pending.template) if self.dev.finger is not None else None
        finger_task = None
        if template is not None:
            self._show("finger.place")
            finger_task = asyncio.ensure_future(self.reactor.run_blocking(
                self.dev.finger.verify, template, self._show_threadsafe, self._cancel))
            finger_task.add_done_callback(
                lambda f: record.timings_s.__setitem__("finger", round(time.monotonic() - t, 3)))
        return face_task, finger_task

    def _stop_biometrics(self, face_task, finger_task, pending: PendingDocument) -> None:
        """However the passage ends: its captures stop, their errors are dropped, the chip photo wiped."""
        self._cancel.set()
        for task in (face_task, finger_task):
            if task is not None:
                task.add_done_callback(lambda f: f.cancelled() or f.exception())
        if finger_task is not None and not finger_task.done():
            self.dev.finger.scanner.cancel()

        def wipe() -> None:
            if pending.photo.image is not None:
                pending.photo.image.fill(0)   # the chip photo is a biometric sample too
        if face_task is None or face_task.done():
            wipe()
        else:
            face_task.add_done_callback(lambda f: wipe())

    async def _verify_biometrics(self, face_task, finger_task, record: PassageRecord) -> list[Reason]:
        """The face (captured since the traveller came in) decides first; then, for enrolled travellers
        (or when the policy requires it), the fingerprint captured in parallel, fused with the face
        score at the target false-match rate."""
        face = await self._await(face_task)
        record.scores["face"] = face.scores
        if any(r is not Reason.FACE_NO_MATCH for r in face.reasons):  # liveness or capture failed: no fusion
            self.machine.send("face_decided")
            return list(face.reasons)
        if finger_task is None:
            self.machine.send("face_decided")
            if self.cfg.eligibility.require_fingerprint:
                return [Reason.FINGER_NOT_ENROLLED]
            return list(face.reasons)
        self.machine.send("finger_required")
        finger = await self._await(finger_task)
        record.scores["finger"] = finger.scores
        if Reason.FINGER_NOT_CAPTURED in finger.reasons:
            scanner = self.dev.finger.scanner.status()
            if not scanner.healthy:
                # The scanner was lost under the capture: a device fault, never the traveller's refusal.
                raise Aborted(Reason.FAULT, f"{scanner.name}: {scanner.detail}")
        self.machine.send("finger_decided")
        if finger.score is None:
            return list(finger.reasons)
        fused = self.dev.face.fuse(face.score, finger.score)
        record.scores["fused"] = fused
        return [] if fused["match"] else [Reason.BIOMETRIC_NO_MATCH]

    def _show_threadsafe(self, message_id: str) -> None:
        self.reactor.call_from_thread(self._show, message_id)

    def _finish(self, record: PassageRecord, outcome: str, reasons, detail: dict | None = None) -> PassageRecord:
        record.outcome = outcome
        record.reasons = [Reason(r).value for r in reasons]  # an unknown code raises here, not downstream
        record.reason_detail = {Reason(r).value: str(v) for r, v in (detail or {}).items()}
        record.timings_s["total"] = round(time.monotonic() - record.t0, 3)
        self.records.append(record)
        if self.store is not None:
            record.record_id = self.store.finish({**record.as_dict(), "ended": _now()})
        return record
