"""Every refusal path and every device fault through the real gate process (GateApp) on the simulated
lane (issue 9, items 2, 7 and 9): real ptys, pcscd+vpcd, the MJPEG camera, scripted travellers.

Each test runs its own gate on the module's lane (zero-latency profile) and checks what a passage
leaves behind: the record's outcome and reason codes, what the screen showed, the officer alerts,
the audit trail, and the doors. A sampler thread watches the door controller simulator's own leaf
states through every test: both leaves unlocked outside an emergency fails the test. After each
fault a genuine traveller must be cleared by the same gate, nothing restarted.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import structlog

from biometrics.privacy import TemplateVault
from core import logs
from core.reasons import Reason
from drivers.door.protocol import Position
from gate import config
from gate.app import GateApp
from gate.steps import EnrolmentStore
from simulators import demo
from simulators.door import Walker, beam_state
from simulators.lane import Lane
from simulators.traveller import Traveller
from sync.record import ALERT, AUDIT, RATING, decode_envelope, load_signing_key

REPO = Path(__file__).resolve().parent.parent
BEAMS = 8
STAND = BEAMS // 2 + 1          # where a traveller stops in the mantrap (front beam), as simulators.traveller
DEVICES = ("door", "mrz_reader", "fingerprint", "camera")


def wait_for(predicate, timeout_s: float, poll_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


# -- the doors, watched from the door controller's side ------------------------------------------------

class DoorWatch:
    """Samples the door controller simulator's own view every 2 ms. Both leaves unlocked while the
    emergency input is off is a violation, except in the emergency's aftermath: the leaves the fire
    alarm opened are still open when it clears, until the gate locks them (that wait is bounded
    separately: `aftermath_s`)."""

    def __init__(self, door, state=None):
        self.door = door
        self.state = state            # the gate's lane state, sampled beside the doors
        self.states: list[tuple[float, str]] = []
        self.violations: list[tuple[float, object]] = []
        self.changes: list[tuple[float, object]] = []   # every distinct status (leaves, emergency, watchdog)
        self.aftermath_s: list[float] = []
        self._aftermath_since: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="door-watch", daemon=True)

    def start(self) -> DoorWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last = None
        while not self._stop.wait(0.002):
            s = self.door.status()
            now = time.monotonic()
            key = (s.entry, s.exit, s.emergency, s.watchdog_tripped)
            if key != last:
                self.changes.append((now, s))
                last = key
            self._sample_state(now)
            both_locked = s.entry.locked and s.exit.locked
            if s.emergency:
                self._aftermath_since = now
                continue
            if self._aftermath_since is not None:
                if both_locked:
                    self.aftermath_s.append(now - self._aftermath_since)
                    self._aftermath_since = None
                continue
            if not s.entry.locked and not s.exit.locked:
                self.violations.append((now, s))

    def _sample_state(self, now: float) -> None:
        if self.state is None:
            return
        try:
            state = self.state()
        except (RuntimeError, StopIteration):   # read from another thread mid-transition; the next sample sees it
            return
        if not self.states or self.states[-1][1] != state:
            self.states.append((now, state))

    def states_after(self, t: float) -> list[str]:
        return [state for at, state in self.states if at >= t]

    def entry_opened_after(self, t: float) -> bool:
        return any(at >= t and s.entry.position in (Position.OPENING, Position.OPEN) for at, s in self.changes)

    def exit_opened_after(self, t: float) -> bool:
        return any(at >= t and s.exit.position in (Position.OPENING, Position.OPEN) for at, s in self.changes)

    def check(self) -> None:
        assert not self.violations, f"both leaves unlocked outside emergency: {self.violations[:3]}"
        assert self._aftermath_since is None, "the leaves were never locked again after the emergency"
        assert all(s < 3.0 for s in self.aftermath_s), f"leaves locked only {self.aftermath_s} s after the emergency"


# -- a gate on the lane ------------------------------------------------------------------------------------

def _jsonl(path: Path, start: int) -> list[dict]:
    if not path.exists():
        return []
    with open(path, "rb") as f:
        f.seek(start)
        return [json.loads(line) for line in f.read().splitlines() if line.strip()]


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


class Gate:
    """GateApp on its own thread and loop, as `egate run` runs it, with the door watch and the audit
    trail read from where this gate started."""

    def __init__(self, lane: Lane, cfg, *, ready: str | None = "idle"):
        self.lane, self.cfg, self.ready = lane, cfg, ready
        data = cfg.storage.data_dir
        self.audit_path = data / "audit.jsonl"
        self._audit0 = _size(self.audit_path)
        self.app = GateApp(cfg)
        self.watch = DoorWatch(lane.door, state=lambda: self.app.controller.machine.state)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="gate", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self.app.run())
        except BaseException as exc:  # noqa: BLE001 - reported by the test that cares (a cancelled service)
            self.error = exc

    @property
    def machine(self):
        return self.app.controller.machine

    @property
    def state(self) -> str:
        return self.machine.state

    @property
    def records(self):
        return self.app.controller.records

    def __enter__(self) -> Gate:
        self.watch.start()
        self.thread.start()
        assert wait_for(lambda: self.app.reactor.loop is not None, 30), "the gate's loop never started"
        if self.ready:
            assert wait_for(lambda: self.state == self.ready, 30), f"gate not {self.ready}: {self.state}"
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.app.reactor.call_from_thread(self.app.reactor.request_stop)
            self.thread.join(20)
            assert not self.thread.is_alive(), "gate did not stop"

    def __exit__(self, exc_type, *exc):
        try:
            self.stop()
        finally:
            self.watch.stop()
        if exc_type is None:
            self.watch.check()

    # -- what it left behind --
    def audit(self) -> list[dict]:
        return _jsonl(self.audit_path, self._audit0)

    def audited(self, action: str, **details) -> list[dict]:
        return [e for e in self.audit() if e["action"] == action
                and all(e["details"].get(k) == v for k, v in details.items())]

    def wait_state(self, state: str, timeout_s: float = 15) -> None:
        assert wait_for(lambda: self.state == state, timeout_s), f"gate not {state} but {self.state}"

    def wait_record(self, n: int, timeout_s: float = 30):
        assert wait_for(lambda: len(self.records) > n, timeout_s), f"no record after {n}; state {self.state}"
        return self.records[n]

    def alerts(self, reason: Reason | None = None):
        return [a for a in self.app.controller.alerts if reason is None or a.reason == reason.value]

    def clears_a_genuine_traveller(self, who: str = "lin"):
        """Nothing restarted: the next genuine traveller is cleared by this gate."""
        self.wait_state("idle", 20)
        assert self.machine.healthy
        n = len(self.records)
        t = walk(self.lane, "genuine", who)
        record = self.wait_record(n, 10)
        assert record.outcome == "cleared" and record.reasons == [], record.as_dict()
        assert t.outcome == "passed", t.summary()
        self.wait_state("idle", 10)
        return record


def walk(lane, kind, who=None, **kw) -> Traveller:
    t = Traveller(lane, kind, who, **kw).start()
    assert t.join(90), f"{kind} traveller never finished"
    return t


def timeline(t: Traveller) -> list[str]:
    return [e["event"] for e in t.summary()["timeline"]]


def leaves_locked(lane) -> bool:
    s = lane.door.status()
    return s.entry.locked and s.exit.locked


# -- a person moved by hand (beams and camera), for what the scripted kinds do not do ---------------------

def step(lane, fronts, walkers=(Walker(),), step_s=0.02) -> None:
    for front in fronts:
        lane.door.set_beams(*beam_state(list(walkers), front, BEAMS))
        time.sleep(step_s)


def look(lane, who: str) -> None:
    lane.camera.set_scene("traveller", face=lane.face_index(who))


# -- fixtures ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lane(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lane")
    with open(workdir / "gate.log", "a") as log_file:
        logs.configure("info", "json", stream=log_file, gate_id="SIM-LANE-01")
        try:
            with Lane(workdir, profile="zero-latency") as lane:
                yield lane
        finally:
            structlog.reset_defaults()


@pytest.fixture(scope="module")
def cfg(lane):
    cfg = config.load_gate(lane.config_path)
    store = EnrolmentStore(cfg.storage.data_dir / "enrolment", TemplateVault.from_key_file(cfg.storage.template_key))
    demo.enrol_nationals(lane, store)   # lin, chen and wang; the foreigners are face only
    return cfg


def _reset(lane) -> None:
    lane.door.set_emergency(False)
    for sim in (lane.door, lane.mrz, lane.fingerprint, lane.camera):
        sim.faults.clear()
    lane.door.set_obstruction("entry", False)
    lane.door.set_obstruction("exit", False)
    lane.door.set_beams(0, 0)
    lane.camera.set_scene("no_face")
    lane.fingerprint.lift_finger()
    if lane.document is not None:
        lane.take_passport()


@pytest.fixture(autouse=True)
def clean_lane(lane):
    _reset(lane)
    yield
    _reset(lane)


def variant(lane, path: Path, **sections) -> config.GateConfig:
    """The lane's gate config with some keys changed: variant(lane, p, timeouts={"document_s": 2})."""
    out, section, todo = [], None, {k.replace("__", "."): dict(v) for k, v in sections.items()}
    for line in lane.config_path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text.startswith("["):
            section = text.strip("[]")
            out.append(line)
            out.extend(f"{k} = {json.dumps(v)}" for k, v in todo.get(section, {}).items())
            continue
        if section in todo and "=" in text and text.split("=", 1)[0].strip() in todo[section]:
            continue
        out.append(line)
    path.write_text("\n".join(out) + "\n")
    return config.load_gate(path)


# ============================================================================ refusals

def test_impostor_is_refused_on_the_biometrics_and_sent_back(lane, cfg):
    with Gate(lane, cfg) as g:
        t = walk(lane, "impostor")            # bakker with lin's passport (lin is enrolled)
        record = g.wait_record(0)
        g.wait_state("idle")
    assert record.outcome == "refused_biometric", record.as_dict()
    assert set(record.reasons) <= {Reason.FACE_NO_MATCH.value, Reason.BIOMETRIC_NO_MATCH.value} and record.reasons
    assert record.scores["face"]["score"] < record.scores["face"]["threshold"]
    assert "passage.step_back" in g.app.screen.ids() and "passage.proceed" not in g.app.screen.ids()
    assert t.outcome == "sent_back" and "exit_open" not in timeline(t), t.summary()


@pytest.mark.parametrize("kind", ["photo_attack", "replay_attack"])
def test_presentation_attack_is_refused_as_one_and_referred_to_an_officer(lane, cfg, kind):
    with Gate(lane, cfg) as g:
        t = walk(lane, kind)
        record = g.wait_record(0)
        g.wait_state("idle")
    assert record.outcome == "refused_biometric", record.as_dict()
    pad = [r for r in record.reasons if r.startswith("PAD_")]
    assert pad, f"{kind} not refused as a presentation attack: {record.reasons} {record.scores}"
    assert Reason.FACE_NOT_CAPTURED.value not in record.reasons, record.as_dict()
    assert "passage.see_officer" in g.app.screen.ids()
    assert any(a.reason in pad and a.passage_id == record.passage_id for a in g.alerts()), g.alerts()
    assert g.audited("officer.alert", passage_id=record.passage_id)
    assert t.outcome == "sent_back" and "exit_open" not in timeline(t), t.summary()


def test_child_is_refused_at_the_document_and_referred(lane, cfg):
    """wang, born 2017: under `eligibility.min_age_years` (10); the entry never opens."""
    with Gate(lane, cfg) as g:
        t = walk(lane, "child", patience_s=2.0)
        record = g.wait_record(0)
    assert record.outcome == "refused_document" and record.reasons == [Reason.AGE_BELOW_MINIMUM.value]
    shown = g.app.screen.ids()
    assert shown[shown.index("document.reading") + 1] == "document.rejected"
    assert t.outcome == "gave_up" and "entry_open" not in timeline(t)
    # AGE_BELOW_MINIMUM refers the traveller to an officer: the officer is told.
    assert [a.passage_id for a in g.alerts(Reason.AGE_BELOW_MINIMUM)] == [record.passage_id], g.alerts()


def test_child_below_the_beam_row_is_refused_in_the_mantrap(lane, cfg, tmp_path):
    """With no minimum age the document passes; the beam array sees someone under 120 cm."""
    with Gate(lane, variant(lane, tmp_path / "gate.toml", eligibility={"min_age_years": 0})) as g:
        t = walk(lane, "child")
        record = g.wait_record(0)
        g.wait_state("idle")
    assert record.outcome == "refused_biometric" and record.reasons == [Reason.BELOW_MIN_HEIGHT.value]
    assert "passage.step_back" in g.app.screen.ids() and "face.blink" not in g.app.screen.ids()
    assert t.outcome == "sent_back" and "exit_open" not in timeline(t), t.summary()


def test_no_show_is_abandoned_and_the_entry_relocks(lane, cfg, tmp_path):
    with Gate(lane, variant(lane, tmp_path / "gate.toml", timeouts={"document_s": 2})) as g:
        t = Traveller(lane, "no_show", patience_s=4.0).start()
        record = g.wait_record(0, 10)
        assert record.outcome == "abandoned" and record.reasons == [Reason.ENTRY_TIMEOUT.value], record.as_dict()
        # The entry relocks while the traveller still stands outside with the passport on the reader.
        assert wait_for(lambda: g.state == "idle" and leaves_locked(lane), 5), (g.state, lane.door.status())
        assert not t.done.is_set()
        assert t.join(20)
        assert g.app.screen.ids()[-1] == "gate.welcome"
        g.clears_a_genuine_traveller("devries")
    assert t.outcome == "no_show" and "entry_open_ignored" in timeline(t)


def test_finger_not_enrolled_is_refused_when_the_fingerprint_is_required(lane, cfg, tmp_path):
    with Gate(lane, variant(lane, tmp_path / "gate.toml", eligibility={"require_fingerprint": True})) as g:
        t = walk(lane, "genuine", "devries")     # a foreigner: no enrolled template
        record = g.wait_record(0)
        assert record.outcome == "refused_biometric" and record.reasons == [Reason.FINGER_NOT_ENROLLED.value]
        assert t.outcome == "sent_back" and "exit_open" not in timeline(t), t.summary()
        assert "passage.step_back" in g.app.screen.ids()
        cleared = g.clears_a_genuine_traveller("lin")   # enrolled: face and finger
    assert cleared.scores["finger"]["outcome"] == "match"


def test_tailgater_is_refused_and_both_are_sent_back(lane, cfg):
    with Gate(lane, cfg) as g:
        t = walk(lane, "tailgater")
        record = g.wait_record(0)
        g.wait_state("idle")
    assert record.outcome == "refused_biometric" and Reason.TAILGATING.value in record.reasons
    assert "passage.step_back" in g.app.screen.ids()
    assert t.outcome == "sent_back" and "exit_open" not in timeline(t), t.summary()


def _entry_stuck_behind_a_traveller(lane, g: Gate) -> float:
    """devries walks in and the entry leaf sticks open behind him; he steps back out through it.
    Returns when he is out (monotonic time of the refusal)."""
    lane.present_passport(lane.passport("devries"))
    assert wait_for(lambda: lane.door.status().entry.position == Position.OPEN, 10)
    lane.door.faults.inject("stuck_leaf", leaf="entry")
    step(lane, range(0, STAND + 1))
    look(lane, "devries")
    record = g.wait_record(0, 15)
    refused = time.monotonic()
    assert record.outcome == "refused_biometric", record.as_dict()
    assert record.reasons == [Reason.ENTRY_NOT_CLOSED.value], record.as_dict()
    assert "passage.step_back" in g.app.screen.ids()
    assert "face" not in record.scores                  # nothing decided with the entry open (capture may start)
    step(lane, range(STAND - 1, -2, -1))                # back out through the entry the leaf left open
    lane.camera.set_scene("no_face")
    lane.take_passport()
    return refused


def test_entry_that_does_not_close_refuses_and_takes_the_lane_out_of_service_until_it_obeys(lane, cfg):
    with Gate(lane, cfg) as g:
        refused = _entry_stuck_behind_a_traveller(lane, g)
        g.wait_state("out_of_service")
        assert g.app.screen.ids()[-1] == "gate.out_of_service"
        assert g.audited("service.out", device="door")
        time.sleep(1.0)                   # longer than the supervisor's hold: still out of service
        stuck_states = g.watch.states_after(refused)
        lane.door.faults.clear("stuck_leaf")
        g.wait_state("idle", 15)
        assert leaves_locked(lane)
        assert g.audited("service.in", device="door")
        g.clears_a_genuine_traveller()
    # Never back in service while the leaf stayed stuck (it is where `returning` wants the entry: open).
    assert "idle" not in stuck_states, stuck_states
    assert [e["action"] for e in g.audit() if e["action"].startswith("service.")] == ["service.out", "service.in"]


def test_against_flow_entry_is_alerted_and_the_entry_never_opens(lane, cfg):
    with Gate(lane, cfg) as g:
        lane.present_passport(lane.passport("devries"))
        assert wait_for(lambda: lane.door.status().entry.position == Position.OPEN, 10)
        step(lane, range(0, STAND + 1))
        look(lane, "devries")
        assert wait_for(lambda: lane.door.status().exit.position == Position.OPEN, 20), g.state
        g.wait_state("exiting", 2)
        t_cleared = time.monotonic()
        # Someone steps in through the open exit, towards the entry, while the traveller stands inside.
        me, them = beam_state([Walker()], STAND, BEAMS), 1 << (BEAMS - 1)   # an adult at the exit leaf's beam
        lane.door.set_beams(me[0] | them, me[1] | them)
        assert wait_for(lambda: g.alerts(Reason.AGAINST_FLOW), 3), (g.state, g.alerts())
        assert g.state == "exit_attention"
        assert g.app.screen.ids()[-1] == Reason.AGAINST_FLOW.guidance
        # Both leave by the exit (the intruder goes back, the traveller goes on); the entry stays locked.
        lane.door.set_beams(*me)
        time.sleep(0.05)
        step(lane, range(STAND + 1, BEAMS + 2))
        lane.camera.set_scene("no_face")
        lane.take_passport()
        record = g.wait_record(0, 10)
        g.wait_state("idle")
        assert not g.watch.entry_opened_after(t_cleared), g.watch.changes
        assert g.audited("officer.alert", reason=Reason.AGAINST_FLOW.value)
        assert record.outcome == "cleared" and Reason.AGAINST_FLOW.value in record.reason_detail, record.as_dict()
        g.clears_a_genuine_traveller("devries")


# ============================================================================ faults

def _sim(lane, device):
    return {"door": lane.door, "mrz_reader": lane.mrz, "fingerprint": lane.fingerprint, "camera": lane.camera}[device]


@pytest.mark.parametrize("device", DEVICES)
def test_device_unplugged_while_idle_takes_the_lane_out_of_service_and_back(lane, cfg, device):
    with Gate(lane, cfg) as g:
        sim = _sim(lane, device)
        sim.faults.inject("unplug")
        g.wait_state("out_of_service", 10)
        assert not g.machine.healthy
        assert g.app.screen.ids()[-1] == "gate.out_of_service"
        assert g.audited("service.out", device=device), g.audit()
        assert leaves_locked(lane)
        sim.faults.clear("unplug")
        g.wait_state("idle", 20)
        assert g.audited("service.in", device=device), g.audit()
        assert not g.records
        g.clears_a_genuine_traveller()


@pytest.mark.parametrize("device,state", [("door", "finger"), ("mrz_reader", "finger"), ("fingerprint", "finger"),
                                          ("camera", "face")])
def test_device_unplugged_mid_passage_sends_the_traveller_back_and_the_lane_heals(lane, cfg, device, state):
    with Gate(lane, cfg) as g:
        # lin is enrolled and never puts a finger down: the passage waits at the finger step.
        t = Traveller(lane, "genuine", "lin", finger="never", inside_patience_s=40).start()
        g.wait_state(state, 20)
        sim = _sim(lane, device)
        sim.faults.inject("unplug")
        record = g.wait_record(0, 10)
        assert record.outcome == "aborted" and record.reasons == [Reason.FAULT.value], record.as_dict()
        assert record.reason_detail[Reason.FAULT.value].startswith(f"{device}:"), record.as_dict()
        assert wait_for(lambda: g.audited("service.out", device=device), 5), g.audit()  # after the 1 s hold
        time.sleep(0.5)
        sim.faults.clear("unplug")
        assert t.join(40), t.summary()
        assert t.outcome == "sent_back" and "exit_open" not in timeline(t), t.summary()
        g.wait_state("idle", 20)
        assert g.audited("service.in", device=device), g.audit()
        g.clears_a_genuine_traveller()


def test_camera_stream_stopped_and_restarted_while_idle(lane, cfg):
    """The camera's own stream (not its link): `slow` beyond the driver's read timeout is a stall."""
    with Gate(lane, cfg) as g:
        lane.camera.faults.inject("slow", delay_s=3.0)
        g.wait_state("out_of_service", 10)
        assert g.audited("service.out", device="camera"), g.audit()
        lane.camera.faults.clear("slow")
        g.wait_state("idle", 20)
        assert g.audited("service.in", device="camera")
        g.clears_a_genuine_traveller()


def test_garbage_on_every_serial_line_idle_and_mid_passage(lane, cfg):
    serial = (lane.door, lane.mrz, lane.fingerprint)
    with Gate(lane, cfg) as g:
        for sim in serial:
            sim.faults.inject("garbage", nbytes=200)
        time.sleep(1.0)
        assert g.state == "idle" and g.machine.healthy
        n = len(g.records)
        t = Traveller(lane, "genuine", "lin").start()
        g.wait_state("face", 20)
        for sim in serial:
            sim.faults.inject("garbage", nbytes=200)
        assert t.join(60)
        record = g.wait_record(n)
        assert record.outcome == "cleared", record.as_dict()
        assert t.outcome == "passed"
        assert not g.audited("service.out"), g.audit()
        g.clears_a_genuine_traveller()
    assert g.app.door.stats()["undecodable"] + sum(g.app.door.link.errors.values()) > 0


def test_emergency_on_and_off_while_idle_then_the_gate_serves_again(lane, cfg):
    """The original bug: after the emergency input went on and off while idle the gate never served again."""
    with Gate(lane, cfg) as g:
        lane.door.set_emergency(True)
        g.wait_state("emergency", 5)
        assert wait_for(lambda: lane.door.status().entry.position == lane.door.status().exit.position == Position.OPEN, 5)
        assert g.app.screen.ids()[-1] == "passage.emergency"
        lane.door.set_emergency(False)
        g.wait_state("idle", 10)
        assert wait_for(lambda: leaves_locked(lane), 5)
        assert [e["details"]["active"] for e in g.audited("emergency")] == [True, False]
        assert not g.records
        g.clears_a_genuine_traveller()


def test_emergency_mid_passage_releases_by_the_exit_and_the_gate_serves_again(lane, cfg):
    with Gate(lane, cfg) as g:
        t = Traveller(lane, "genuine", "devries").start()
        g.wait_state("face", 20)
        lane.door.set_emergency(True)
        g.wait_state("emergency", 5)
        assert t.join(30) and t.outcome == "passed", t.summary()   # out through the exit the alarm opened
        record = g.records[-1]
        assert record.outcome == "aborted" and record.reasons == [Reason.EMERGENCY.value]
        lane.door.set_emergency(False)
        g.wait_state("idle", 10)
        assert [e["details"]["active"] for e in g.audited("emergency")] == [True, False]
        g.clears_a_genuine_traveller()


def test_door_link_down_at_boot_starts_out_of_service_and_serves_when_the_door_appears(lane, cfg):
    lane.door.faults.inject("unplug")
    assert wait_for(lambda: not os.path.exists(lane.door.path), 2)
    with Gate(lane, cfg, ready=None) as g:
        assert wait_for(lambda: g.audited("service.out", device="door"), 10), g.audit()
        # The audit entry is written as the loss is handled; the machine follows within the same turn.
        assert wait_for(lambda: not g.machine.healthy and g.state in ("recovering", "out_of_service"), 5), g.state
        assert wait_for(lambda: "gate.out_of_service" in g.app.screen.ids(), 5), g.app.screen.ids()
        assert "gate.welcome" not in g.app.screen.ids()
        lane.door.faults.clear("unplug")
        g.wait_state("idle", 20)
        assert g.audited("service.in", device="door")
        g.clears_a_genuine_traveller()


@pytest.mark.parametrize("during", ["recovering_at_boot", "out_of_service"])
def test_emergency_during_recovery_then_the_gate_serves_again(lane, cfg, during):
    """Recovering at boot (the door appears with its emergency input on), or out of service for a lost device."""
    sim = lane.door if during == "recovering_at_boot" else lane.mrz
    if during == "recovering_at_boot":
        sim.faults.inject("unplug")
        assert wait_for(lambda: not os.path.exists(lane.door.path), 2)
    with Gate(lane, cfg, ready=None if during == "recovering_at_boot" else "idle") as g:
        if during == "out_of_service":
            sim.faults.inject("unplug")
            g.wait_state("out_of_service", 10)
        else:
            assert wait_for(lambda: g.audited("service.out", device="door"), 10)
            assert g.state == "recovering"
        lane.door.set_emergency(True)
        if during == "recovering_at_boot":
            time.sleep(0.1)
            sim.faults.clear("unplug")     # the door appears, its emergency input on
        g.wait_state("emergency", 10)
        assert "passage.emergency" in g.app.screen.ids()
        lane.door.set_emergency(False)
        if during == "out_of_service":
            g.wait_state("out_of_service", 10)   # back to recovering, still short of a device
            sim.faults.clear("unplug")
        g.wait_state("idle", 20)
        assert [e["details"]["active"] for e in g.audited("emergency")] == [True, False]
        g.clears_a_genuine_traveller()


# ============================================================================ the keep-alive (item 2)

def _entry_open_for(lane, who="devries") -> None:
    lane.present_passport(lane.passport(who))
    assert wait_for(lambda: lane.door.status().entry.position == Position.OPEN, 10)


def test_a_blocked_event_loop_starves_the_watchdog_and_the_door_locks_by_itself(lane, cfg):
    watchdog_s = cfg.devices.door.watchdog_ms / 1000
    with Gate(lane, cfg) as g:
        _entry_open_for(lane)                   # the entry open: the watchdog must close and lock it
        trips = len(lane.door.watchdog_trips)
        t0 = time.monotonic()
        g.app.reactor.call_from_thread(time.sleep, 3.0)
        assert wait_for(lambda: len(lane.door.watchdog_trips) > trips, watchdog_s + 1.5), "the watchdog never tripped"
        tripped = lane.door.watchdog_trips[trips]
        assert tripped - t0 <= watchdog_s + 1.0, f"tripped {tripped - t0:.2f} s after the loop stalled"
        assert wait_for(lambda: leaves_locked(lane), 0.5), lane.door.status()
        assert time.monotonic() - t0 < 3.0, "the leaves locked only once the loop ran again"
        assert lane.door.last_keepalive <= t0 + 0.7, "keep-alives went on while the loop stood still"
        # The loop turns again: the keep-alive resumes, the passage goes on, the traveller is served.
        assert wait_for(lambda: not lane.door.status().watchdog_tripped, 5)
        assert wait_for(lambda: lane.door.status().entry.position == Position.OPEN, 5), g.state
        step(lane, range(0, STAND + 1))
        look(lane, "devries")
        assert wait_for(lambda: lane.door.status().exit.position == Position.OPEN, 20), g.state
        step(lane, range(STAND + 1, BEAMS + 2))
        lane.camera.set_scene("no_face")
        lane.take_passport()
        record = g.wait_record(0, 10)
        assert record.outcome == "cleared", record.as_dict()
        assert g.audited("door.fault", what="watchdog", tripped=True)
        g.clears_a_genuine_traveller("devries")


def test_a_dead_controller_task_starves_the_watchdog_and_the_door_locks(lane, cfg):
    watchdog_s = cfg.devices.door.watchdog_ms / 1000
    with Gate(lane, cfg) as g:
        _entry_open_for(lane)
        trips = len(lane.door.watchdog_trips)
        t0 = time.monotonic()
        g.app.reactor.call_from_thread(lambda: g.app.controller._serving.cancel())
        assert wait_for(lambda: len(lane.door.watchdog_trips) > trips, watchdog_s + 1.5), "the watchdog never tripped"
        assert lane.door.watchdog_trips[trips] - t0 <= watchdog_s + 1.0
        assert wait_for(lambda: leaves_locked(lane), 0.5), lane.door.status()
        assert lane.door.last_keepalive <= t0 + 0.3, "keep-alives went on for a controller that was not serving"


# ============================================================================ the journal (item 7)

def _egate_run(lane, log_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gate", "run", "--config", str(lane.config_path)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))


def _logged(log_path: Path, **fields) -> bool:
    for line in log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if all(entry.get(k) == v for k, v in fields.items()):
            return True
    return False


class StoredPassages:
    """The gate's outbox (`gate-data/outbox.sqlite`), read as another process would: the open
    passage's journal entry, and the signed records, verified with the lane's signing key."""

    def __init__(self, lane, cfg):
        self.path = cfg.storage.data_dir / "outbox.sqlite"
        self.key = load_signing_key(cfg.storage.signing_key).public_key()
        self.start = self.last_seq()

    def _query(self, sql: str, *args) -> list:
        if not self.path.exists():
            return []
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def last_seq(self) -> int:
        rows = self._query("SELECT COALESCE(MAX(seq), 0) FROM records")
        return rows[0][0] if rows else 0

    def journal(self) -> dict | None:
        rows = self._query("SELECT passage FROM journal WHERE k = 1")
        return json.loads(rows[0][0]) if rows else None

    def records(self) -> list[dict]:
        """The passage records (the audit trail and ratings travel in the same outbox)."""
        rows = self._query("SELECT envelope FROM records WHERE seq > ? ORDER BY seq", self.start)
        records = [decode_envelope(env).verify(self.key) for (env,) in rows]
        return [r for r in records if r["outcome"] not in (AUDIT, ALERT, RATING)]


def test_kill_9_mid_passage_is_recorded_as_interrupted_and_the_traveller_leaves_by_the_entry(lane, cfg, tmp_path):
    stored = StoredPassages(lane, cfg)
    audit = cfg.storage.data_dir / "audit.jsonl"
    audit0 = _size(audit)
    watch = DoorWatch(lane.door).start()
    first = _egate_run(lane, tmp_path / "first.log")
    second = None
    try:
        assert wait_for(lambda: _logged(tmp_path / "first.log", event="passage_state", state="idle"), 60), \
            (tmp_path / "first.log").read_text()[-3000:]
        # lin never puts a finger down: the passage waits at the finger step, both leaves locked.
        # lin takes the passport as the entry opens: one left on the reader would be read ahead for the
        # next passage by the restarted gate (pipelining), which is not what this test is about.
        t = Traveller(lane, "genuine", "lin", finger="never", inside_patience_s=60, passport_back="on_entry").start()
        assert wait_for(lambda: _logged(tmp_path / "first.log", event="passage_state", state="finger"), 30)
        pending = stored.journal()               # durable before any leaf moved for it
        assert pending is not None and pending["state"] == "entering", pending
        assert leaves_locked(lane)
        killed_at = time.monotonic()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # Nobody feeds the watchdog now; the leaves stay locked, the exit never opens.
        assert wait_for(lambda: lane.door.status().watchdog_tripped, 2.5)
        assert leaves_locked(lane)
        assert stored.records() == [] and stored.journal() == pending
        second = _egate_run(lane, tmp_path / "second.log")
        assert t.join(60), t.summary()
        assert t.outcome == "sent_back", t.summary()
        assert "exit_open" not in timeline(t) and not watch.exit_opened_after(killed_at)
        assert wait_for(lambda: _logged(tmp_path / "second.log", event="passage_state", state="idle"), 30)
        records = stored.records()
        assert [(r["passage"], r["outcome"], r["reasons"]) for r in records] == \
            [(pending["passage_id"], "aborted", [Reason.INTERRUPTED.value])], records
        assert stored.journal() is None
        assert any(e["action"] == "passage.interrupted" and e["details"]["passage_id"] == pending["passage_id"]
                   for e in _jsonl(audit, audit0))
        # The new process serves the next traveller.
        g = walk(lane, "genuine", "devries")
        assert g.outcome == "passed", g.summary()
        assert wait_for(lambda: [r["outcome"] for r in stored.records()] == ["aborted", "cleared"], 10)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        watch.stop()
    watch.check()
