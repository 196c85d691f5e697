"""The real gate process (GateApp) against a whole simulated lane: real ptys, pcscd+vpcd, the MJPEG
camera, scripted travellers who act on what they see. Zero-latency profile to keep it quick."""
import asyncio
import base64
import io
import json
import threading
import time

import pytest

from biometrics.finger import iso19794_2 as iso
from gate import config
from core import logs
from core.reasons import Reason
from gate.app import GateApp
from simulators import demo
from simulators.lane import Lane, person
from simulators.traveller import Traveller
from sync.outbox import Outbox
from sync.record import decode_envelope, load_signing_key


class RunningGate:
    """GateApp on its own thread and loop, as `egate run` would run it."""

    def __init__(self, cfg):
        self.app = GateApp(cfg)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.app.run()), daemon=True)

    def __enter__(self):
        self.thread.start()
        assert wait_for(lambda: self.app.reactor.loop is not None and self.app.controller.machine.state == "idle", 30), \
            f"gate not ready: {self.app.controller.machine.state}"
        return self.app

    def stop(self):
        self.app.reactor.call_from_thread(self.app.reactor.request_stop)
        self.thread.join(20)
        assert not self.thread.is_alive(), "gate did not stop"

    def __exit__(self, *exc):
        if self.thread.is_alive():
            self.stop()


def wait_for(predicate, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.02)
    return True


@pytest.fixture(scope="module")
def lane(tmp_path_factory):
    with Lane(tmp_path_factory.mktemp("lane"), profile="zero-latency") as lane:
        yield lane


@pytest.fixture(scope="module")
def cfg(lane):
    return config.load_gate(lane.config_path)


def walk(lane, kind, who=None, **kw):
    t = Traveller(lane, kind, who, **kw).start()
    assert t.join(90), f"{kind} traveller never finished"
    return t


def test_genuine_national_is_cleared_with_face_and_enrolled_fingerprint(lane, cfg):
    stream = io.StringIO()
    logs.configure("debug", "json", stream=stream, gate_id=cfg.gate.id)
    with RunningGate(cfg) as app:
        demo.enrol_nationals(lane, app.enrolment)
        t = walk(lane, "genuine", "lin")
        assert wait_for(lambda: app.controller.records, 10)
        record = app.controller.records[-1]
        template = bytes(iso.encode(app.enrolment.lookup("TWN:" + person("lin").document_number)))
    assert record.outcome == "cleared" and record.reasons == [] and record.reason_detail == {}, record.as_dict()
    assert t.outcome == "passed", t.summary()
    assert set(record.document["passive_auth"].values()) == {"passed"}
    face, finger = record.scores["face"], record.scores["finger"]
    assert face["score"] >= face["threshold"] and face["liveness"]["passed"]
    assert finger["outcome"] == "match" and record.scores["fused"]["match"]
    # The outbox holds it signed by the gate's key; it carries decisions and scores, never a sample.
    box = Outbox.inspect(cfg.storage.data_dir / "outbox.sqlite")  # the gate has stopped: its file, as it left it
    (pending,) = [p for p in box.unacknowledged(1000) if p.id == record.record_id]
    box.stop()
    key = load_signing_key(cfg.storage.signing_key).public_key()
    written = decode_envelope(pending.envelope).verify(key)
    assert written["passage"] == record.passage_id and len(pending.envelope) < 8000
    assert written["gate"] == cfg.gate.id and written["id"] == f"{cfg.gate.id}:{written['seq']}"
    assert written["outcome"] == "cleared" and written["timings"]["total"] > 0 and "t0" not in written
    assert written["document"]["number"] == person("lin").document_number  # sync.document_number = full
    assert template not in pending.envelope and template[:32] not in pending.envelope
    # Nor does the log: a whole passage at debug level, no template in any encoding, no image.
    text = stream.getvalue()
    assert '"passage_done"' in text and record.passage_id in text
    for encoded in (template.hex(), base64.b64encode(template).decode(), str(list(template[:16]))[1:-1]):
        assert encoded[:40] not in text
    assert max(len(line) for line in text.splitlines()) < 4000


def test_forged_passport_never_opens_a_leaf(lane, cfg):
    with RunningGate(cfg) as app:
        t = walk(lane, "forged", patience_s=3.0)
        record = app.controller.records[-1]
    assert record.outcome == "refused_document" and record.reasons == [Reason.PA_DG1_HASH.value]
    shown = app.screen.ids()
    assert shown[shown.index("document.reading") + 1] == "document.rejected"  # the reason's guidance
    assert t.outcome == "gave_up"
    assert not any(e["event"] == "entry_open" for e in t.summary()["timeline"])


def test_tailgater_is_refused_and_sent_back_through_the_entry(lane, cfg):
    with RunningGate(cfg) as app:
        t = walk(lane, "tailgater")
        assert wait_for(lambda: app.controller.records, 10)
        record = app.controller.records[-1]
    assert record.outcome == "refused_biometric" and Reason.TAILGATING.value in record.reasons
    assert "passage.step_back" in app.screen.ids() and "passage.see_officer" not in app.screen.ids()
    assert t.outcome == "sent_back", t.summary()
    assert not any(e["event"] == "exit_open" for e in t.summary()["timeline"])


def test_a_restart_mid_passage_never_opens_the_exit(lane, cfg):
    first = RunningGate(cfg)
    with first as app:
        t = Traveller(lane, "genuine", "devries").start()
        assert wait_for(lambda: app.controller.machine.state == "face", 30), app.controller.machine.state
        first.stop()  # SIGTERM mid-passage
    assert app.controller.records[-1].outcome == "aborted" and app.controller.records[-1].reasons == [Reason.SHUTDOWN.value]
    status = lane.door.status()
    assert status.exit.locked and status.entry.locked
    with RunningGate(cfg) as again:  # boots into recovering: the traveller inside leaves by the entry
        assert t.join(60)
        assert again.controller.machine.state == "idle"
    assert t.outcome == "sent_back", t.summary()
    assert not any(e["event"] == "exit_open" for e in t.summary()["timeline"])


def test_egate_run_check_reports_every_device(lane, cfg):
    """As on a gate: simulators, bench and tests cannot be imported by the gate process."""
    import subprocess

    from tests.import_blocker import blocked_python
    argv = ["run", "--config", str(lane.config_path), "--check"]
    res = subprocess.run(blocked_python(f"from gate.cli import main; sys.exit(main({argv!r}))"),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = {line.split()[1]: line.split()[0] for line in res.stdout.splitlines() if line[:4] in ("ok  ", "FAIL")}
    assert rows == {"outbox": "ok", "door": "ok", "mrz_reader": "ok", "chip_reader": "ok", "camera": "ok",
                    "fingerprint": "ok", "screen": "ok", "passage": "ok", "console": "ok"}, res.stdout


def test_fire_alarm_mid_passage_opens_both_leaves_and_the_gate_recovers_after(lane, cfg):
    with RunningGate(cfg) as app:
        t = Traveller(lane, "genuine", "devries").start()
        assert wait_for(lambda: app.controller.machine.state == "face", 30), app.controller.machine.state
        lane.door.set_emergency(True)
        assert wait_for(lambda: app.controller.machine.state == "emergency", 5)
        status = lane.door.status()
        assert t.join(30) and t.outcome == "passed"  # out through the exit the alarm opened
        assert app.controller.records[-1].outcome == "aborted"
        assert app.controller.records[-1].reasons == [Reason.EMERGENCY.value]
        assert "passage.emergency" in app.screen.ids()
        lane.door.set_emergency(False)
        assert wait_for(lambda: app.controller.machine.state == "idle", 20), app.controller.machine.state
        assert wait_for(lambda: lane.door.status().entry.locked and lane.door.status().exit.locked, 10)
    assert status.emergency


def test_maintenance_takes_the_lane_out_between_passages_and_gives_it_back(lane, cfg):
    import concurrent.futures

    def on_loop(app, fn, *args):
        done = concurrent.futures.Future()
        app.reactor.call_from_thread(lambda: done.set_result(fn(*args)))
        return done.result(5)

    with RunningGate(cfg) as app:
        assert on_loop(app, app.controller.set_maintenance, True, "tech-07")
        assert wait_for(lambda: app.controller.machine.state == "maintenance", 5)
        assert app.screen.ids()[-1] == "gate.out_of_service"
        t = walk(lane, "genuine", "devries", patience_s=3)
        assert t.outcome == "gave_up" and not app.controller.records  # nobody is let in
        assert not on_loop(app, app.controller.set_maintenance, True, "tech-07")  # already out
        assert on_loop(app, app.controller.set_maintenance, False, "tech-07")
        assert wait_for(lambda: app.controller.machine.state == "idle", 10)
        assert walk(lane, "genuine", "devries").outcome == "passed"
    entries = [json.loads(line) for line in app.audit.path.read_text().splitlines()]
    actions = [(e["action"], e["details"].get("technician")) for e in entries if e["action"].startswith("maintenance")]
    assert actions[-2:] == [("maintenance.enter", "tech-07"), ("maintenance.exit", "tech-07")]


def test_the_next_document_is_decided_while_the_mantrap_is_occupied(lane, cfg):
    """Pipelining: the next traveller lays the passport down while the one before is in the mantrap;
    it is read and decided meanwhile, and the entry opens for them as soon as the exit is reported
    locked behind the first (never before: one leaf open at a time)."""
    app = GateApp(cfg, screen=lane.screen)
    thread = threading.Thread(target=lambda: asyncio.run(app.run()), daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: app.reactor.loop is not None and app.controller.machine.state == "idle", 30)
        first = Traveller(lane, "genuine", "devries", passport_back="on_entry").start()
        assert wait_for(lambda: any(e.what == "passport_taken" for e in list(first.timeline)), 30)
        second = Traveller(lane, "genuine", "bakker", passport_back="on_entry").start()
        assert first.join(60) and second.join(60), (first.summary(), second.summary())
        assert wait_for(lambda: len(app.controller.records) >= 2 and app.controller.machine.state == "idle", 20)
        a, b = app.controller.records[-2:]
    finally:
        app.reactor.call_from_thread(app.reactor.request_stop)
        thread.join(20)
    assert (first.outcome, second.outcome) == ("passed", "passed"), (first.summary(), second.summary())
    assert (a.outcome, b.outcome) == ("cleared", "cleared")
    left = next(e.t for e in first.timeline if e.what == "left_mantrap")
    assert b.t0 < left, "the second document was not read while the first traveller was inside"
    assert b.timings_s["document"] < b.timings_s["passage"]
    # The entry opened for the second only after the exit was reported locked behind the first.
    history = list(lane.door.history)
    out = next(e.t for e in first.timeline if e.what == "walking_out")
    entry_opening = next(t for t, leaf, pos, locked in history if t > out and leaf.name == "ENTRY"
                         and pos.name == "OPENING")
    exit_locked = [t for t, leaf, pos, locked in history if out < t <= entry_opening and leaf.name == "EXIT"
                   and pos.name == "CLOSED" and locked]
    assert exit_locked and entry_opening - exit_locked[-1] < 1.0, (exit_locked, entry_opening)
    assert b.passage_id in app.controller.cycles and a.passage_id in app.controller.cycles
