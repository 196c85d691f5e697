"""The gate's glue: drivers in, PassageMachine transitions and door commands out.

Everything here runs on the reactor loop. Driver events arrive through
`reactor.call_from_thread`; blocking work (chip read, face and fingerprint pipelines) runs
in worker threads via `reactor.run_blocking`. Each state of the machine says what the doors
must be (`passage.DOORS`); `_apply_doors` is the only place that commands them.

One passage, in order: MRZ read → chip read and passive authentication → eligibility →
entry opens → one adult walks in → entry locks → face (quality, liveness, match against the
chip photo) and, when enrolled or required, fingerprint → exit opens and the traveller leaves,
or the entry reopens and the traveller steps back out. Each passage ends in a record.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import dataclass, field

from core import logs
from core.reasons import Reason, guidance_for
from drivers.door.driver import DoorController
from drivers.door.protocol import Beams, Emergency, Leaf, LeafState, Position, Status
from drivers.mrz_reader.driver import MrzRead, MrzReader
from drivers.presence import Presence, PresenceConfig, PresenceTracker
from drivers.screen.driver import Screen
from gate.config import GateConfig
from gate.decision import Verdict, document_verdict
from gate.passage import PassageMachine
from gate.steps import ChipOutcome, ChipStep, FaceStep, FingerStep

log = logs.get("controller")


@dataclass
class PassageRecord:
    """What a passage leaves behind: decisions, reason codes, scores and timings; never images.

    `reasons` are `core.reasons.Reason` values (plain strings); `reason_detail` maps a code to the
    open-ended detail that is not part of it (the error type of a `FAULT`)."""

    passage_id: str
    gate_id: str
    started: str
    outcome: str = "open"              # cleared | refused_document | refused_biometric | abandoned | aborted
    reasons: list[str] = field(default_factory=list)
    reason_detail: dict[str, str] = field(default_factory=dict)
    document: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    timings_s: dict = field(default_factory=dict)
    t0: float = field(default_factory=time.monotonic, repr=False)  # monotonic start, not recorded

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "t0"}


@dataclass
class Devices:
    """The hardware objects a controller drives (built by `gate.app`)."""

    door: DoorController
    mrz_reader: MrzReader
    chip: ChipStep
    face: FaceStep
    finger: FingerStep | None  # None when no templates are enrolled on this gate
    screen: Screen


class GateController:
    def __init__(self, cfg: GateConfig, reactor, devices: Devices, on_record=lambda record: None):
        self.cfg = cfg
        self.reactor = reactor
        self.dev = devices
        self.on_record = on_record
        self.machine = PassageMachine(on_state=self._on_state)
        self.presence = PresenceTracker(PresenceConfig(beams=cfg.devices.door.beams))
        self.last_presence: Presence | None = None
        self.leaves: dict[Leaf, LeafState | None] = {Leaf.ENTRY: None, Leaf.EXIT: None}
        self.emergency = False
        self.language = cfg.devices.screen.languages[0]
        self.records: list[PassageRecord] = []
        self._mrz: asyncio.Queue[MrzRead] = asyncio.Queue(maxsize=1)
        self._changed = asyncio.Event()
        self._passage: asyncio.Task | None = None
        self._mantrap_flags: set[Reason] = set()

    # -- driver events (on the loop) ------------------------------------------------
    def door_event(self, ev) -> None:
        if isinstance(ev, Status):  # the full picture, after (re)connection or a query
            self.leaves[Leaf.ENTRY], self.leaves[Leaf.EXIT] = ev.entry, ev.exit
            self.last_presence = self.presence.update(time.monotonic(), ev.beams.low, ev.beams.high)
            if ev.emergency != self.emergency:
                self._set_emergency(ev.emergency)
        elif isinstance(ev, Beams):
            self.last_presence = self.presence.update(time.monotonic(), ev.low, ev.high)
            self._watch_mantrap()
        elif isinstance(ev, LeafState):
            self.leaves[ev.leaf] = ev
        elif isinstance(ev, Emergency):
            self._set_emergency(ev.active)
        self._changed.set()

    def mrz_event(self, ev) -> None:
        if not isinstance(ev, MrzRead):
            return
        if self.machine.state != "idle" or self._mrz.full():
            log.info("mrz_ignored", state=self.machine.state)  # a document placed mid-passage waits
            return
        self._mrz.put_nowait(ev)

    def device_event(self, ev) -> None:
        """Link and stream changes of the camera and the fingerprint scanner."""
        log.info("device_event", kind=type(ev).__name__, detail=getattr(ev, "reason", None))

    def _watch_mantrap(self) -> None:
        """While one traveller is being let in and verified, remember anything that says a second
        body or a child is in the mantrap: a glance at one instant can miss a tailgater."""
        p = self.last_presence
        if p is None or self.machine.state not in ("entering", "verifying"):
            return
        if p.tailgating or p.occupancy > 1:
            self._mantrap_flags.add(Reason.TAILGATING)
        if p.children:
            self._mantrap_flags.add(Reason.BELOW_MIN_HEIGHT)

    # -- state → hardware -----------------------------------------------------------
    def _on_state(self, state: str) -> None:
        log.info("passage_state", state=state)
        self._apply_doors()

    def _apply_doors(self) -> None:
        for leaf, want in zip((Leaf.ENTRY, Leaf.EXIT), self.machine.doors):
            if want == "open":
                self.dev.door.open(leaf)
            else:
                self.dev.door.lock(leaf)

    def _show(self, message_id: str, **params) -> None:
        self.dev.screen.show(message_id, self.language, params or None)

    def _set_emergency(self, active: bool) -> None:
        if active == self.emergency:
            return
        self.emergency = active
        if active:
            if self._passage and not self._passage.done():
                self._passage.cancel()
            self.machine.send("emergency_on")
            self._show("passage.emergency")
        else:
            self.machine.send("emergency_off")

    # -- waiting ---------------------------------------------------------------------
    async def _until(self, predicate, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.25))
            except TimeoutError:
                pass
        return True

    def occupancy(self) -> int:
        p = self.last_presence
        return 0 if p is None else p.occupancy

    # -- main loop ---------------------------------------------------------------------
    async def serve(self) -> None:
        """Recover, then serve travellers until cancelled."""
        while True:
            if self.machine.state == "recovering":
                await self.recover()
            if self.machine.state != "idle":
                await self._until(lambda: self.machine.state == "recovering", 3600)
                continue
            self._show("gate.welcome")
            read = await self._mrz.get()
            if self.machine.state != "idle":
                continue
            self._passage = asyncio.create_task(self.passage(read))
            try:
                await self._passage
            except asyncio.CancelledError:
                if not self.emergency:
                    raise
            except Exception:
                # A bug or a device failure must not stop the gate: end this passage, recover.
                log.exception("passage_failed")
                if self.machine.state not in ("recovering", "emergency"):
                    self.machine.send("fault")

    async def recover(self) -> None:
        """Boot or after an emergency: lock both leaves; if someone is inside, send them back out
        through the entry (never through the exit: a restart must not clear anyone)."""
        self._apply_doors()
        await self._until(lambda: self.last_presence is not None, 2.0)
        if self.occupancy() > 0:
            log.warning("recover_mantrap_occupied", occupancy=self.occupancy())
            self._show("passage.step_back")
            self.dev.door.open(Leaf.ENTRY)
            await self._until(lambda: self.occupancy() == 0, self.cfg.timeouts.passage_s)
            self.dev.door.lock(Leaf.ENTRY)
        self.machine.send("recovered")

    async def passage(self, read: MrzRead) -> PassageRecord:
        record = PassageRecord(uuid.uuid4().hex, self.cfg.gate.id, dt.datetime.now(dt.timezone.utc).isoformat())
        try:
            self.machine.send("document_presented")
            self._show("document.reading")
            verdict, chip = await self._check_document(read, record)
            record.timings_s["document"] = round(time.monotonic() - record.t0, 3)
            if not verdict.accepted:
                self._show(verdict.guidance)
                self.machine.send("document_refused")
                return self._finish(record, "refused_document", verdict.reasons)
            self._mantrap_flags.clear()
            self.machine.send("document_accepted")
            self._show("passage.enter")
            t_enter = time.monotonic()
            if not await self._until(self._walked_in, self.cfg.timeouts.document_s):
                self.machine.send("entry_abandoned")
                return self._finish(record, "abandoned", [Reason.ENTRY_TIMEOUT])
            self.machine.send("entered")
            # Nobody else gets in: verification starts once the entry leaf is closed and locked.
            entry_locked = await self._until(lambda: self._leaf_locked(Leaf.ENTRY), 2 * self.cfg.timeouts.door_travel_s)
            record.timings_s["enter"] = round(time.monotonic() - t_enter, 3)
            reasons = sorted(self._mantrap_flags) or ([] if entry_locked else [Reason.ENTRY_NOT_CLOSED])
            if not reasons:
                reasons = await self._verify_biometrics(chip, record)
            reasons = sorted(self._mantrap_flags) or reasons  # a tailgater seen during verification too
            if reasons:
                self._show(guidance_for(reasons))
                self.machine.send("refused")
                await self._until(lambda: self.occupancy() == 0, self.cfg.timeouts.passage_s)
                self.machine.send("returned")
                return self._finish(record, "refused_biometric", reasons)
            self.machine.send("verified")
            self._show("passage.proceed")
            t_exit = time.monotonic()
            await self._until(lambda: self.occupancy() == 0, self.cfg.timeouts.passage_s)
            record.timings_s["exit"] = round(time.monotonic() - t_exit, 3)
            self.machine.send("exited")
            return self._finish(record, "cleared", [])
        except asyncio.CancelledError:
            self._finish(record, "aborted", [Reason.EMERGENCY if self.emergency else Reason.SHUTDOWN])
            raise
        except Exception as exc:
            self._finish(record, "aborted", [Reason.FAULT], {Reason.FAULT: type(exc).__name__})
            raise
        finally:
            log.info("passage_done", passage_id=record.passage_id, outcome=record.outcome, reasons=record.reasons)

    def _walked_in(self) -> bool:
        """Someone is in the mantrap and clear of the entry leaf's swing (beam 0)."""
        p = self.last_presence
        return p is not None and p.occupancy >= 1 and all(b.first > 0 for b in p.bodies)

    def _leaf_locked(self, leaf: Leaf) -> bool:
        state = self.leaves[leaf]
        return state is not None and state.position == Position.CLOSED and state.locked

    async def _check_document(self, read: MrzRead, record: PassageRecord) -> tuple[Verdict, ChipOutcome | None]:
        if read.mrz is None:
            return Verdict(False, (Reason.MRZ_UNREADABLE,)), None
        optical = read.mrz
        record.document = {"type": optical.doc_type, "issuer": optical.issuer, "nationality": optical.nationality,
                           "number": optical.document_number}
        chip = await self.reactor.run_blocking(self.dev.chip.read, optical)
        record.timings_s.update({f"chip.{k}": round(v, 3) for k, v in chip.timings_s.items()})
        if chip.error:
            record.document["chip_error"] = chip.error
        verdict = document_verdict(optical, chip.passive_auth, self.cfg.eligibility, self.cfg.gate.direction,
                                   dt.date.today())
        record.document.update(verdict.details)
        return verdict, chip

    async def _verify_biometrics(self, chip: ChipOutcome, record: PassageRecord) -> list[Reason]:
        """Face first; then, for enrolled travellers (or when the policy requires it), the
        fingerprint, fused with the face score at the target false-match rate."""
        t = time.monotonic()
        try:
            face = await self.reactor.run_blocking(self.dev.face.verify, chip.face_image, self._show_threadsafe)
        finally:
            if chip.face_image is not None:
                chip.face_image.fill(0)  # the chip photo is a biometric sample too
                chip.face_image = None
        record.timings_s["face"] = round(time.monotonic() - t, 3)
        record.scores["face"] = face.scores
        if any(r is not Reason.FACE_NO_MATCH for r in face.reasons):  # liveness or capture failed: no fusion
            return list(face.reasons)
        template = self.dev.finger.enrolled(chip.traveller_id) if self.dev.finger else None
        if template is None:
            if self.cfg.eligibility.require_fingerprint:
                return [Reason.FINGER_NOT_ENROLLED]
            return list(face.reasons)
        t = time.monotonic()
        self._show("finger.place")
        finger = await self.reactor.run_blocking(self.dev.finger.verify, template, self._show_threadsafe)
        record.timings_s["finger"] = round(time.monotonic() - t, 3)
        record.scores["finger"] = finger.scores
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
        self.on_record(record)
        return record
