"""The technician console and the officer commands against the real gate process on the simulated
lane: a scripted terminal on a real pty (the console's session loop behind it, as `egate diag
console --port` runs it), `egate diag --json` for the same commands, and the officer's socket.
One lane and one gate for the module; the gate's console clock is injected, so lockouts and idle
timeouts are reached by moving it, never by sleeping."""
from __future__ import annotations

import io
import json
import re
import socket
import threading

import pytest

from core import logs
from drivers.door.protocol import Position
from gate import config
from gate.cli import main as egate
from gate.console import protocol
from simulators.door import Walker, beam_state
from simulators.lane import Lane, person
from simulators.traveller import Traveller
from sync.outbox import Outbox
from sync.record import decode_envelope, load_signing_key
from tests.console_helpers import PASSWORDS, Clock, Terminal, audit, wait_for, write_accounts
from tests.test_gate_lane import RunningGate


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    with Lane(tmp_path_factory.mktemp("lane"), profile="zero-latency") as lane:
        cfg = config.load_gate(lane.config_path)
        write_accounts(cfg.console.accounts_path(cfg.storage.data_dir))
        logs.configure("info", "json", stream=io.StringIO(), gate_id=cfg.gate.id)   # `show log` reads these lines
        running = RunningGate(cfg)
        clock = Clock()
        running.app.console.clock = running.app.console.accounts.clock = clock
        with running as app:
            app.lane, app.clock = lane, clock
            wait_for(lambda: app.console.path.exists(), 10, "the console socket")
            yield app


@pytest.fixture
def term(gate):
    t = Terminal(gate.console.path, gate.clock)
    yield t
    t.close()


@pytest.fixture(autouse=True)
def lane_in_service(gate):
    """Each test leaves the lane serving, whatever it did to it."""
    yield
    state = gate.controller.machine.state
    if state == "maintenance":
        on_loop(gate, gate.controller.set_maintenance, False, "test")
    elif state == "closed":
        on_loop(gate, gate.controller.machine.send, "lane_opened")
    wait_for(lambda: gate.controller.machine.state == "idle", 30, "the lane back in service")


def flat(text: str) -> str:
    return " ".join(text.split())


def on_loop(app, fn, *args):
    import concurrent.futures

    done = concurrent.futures.Future()
    app.reactor.call_from_thread(lambda: done.set_result(fn(*args)))
    return done.result(5)


def diag(capsys, monkeypatch, app, user, *words, stdin=None):
    """`egate diag --json ...` in this process; (exit code, the JSON it printed)."""
    monkeypatch.setattr("sys.stdin", io.StringIO((stdin or PASSWORDS[user]) + "\n"))
    code = egate(["diag", "--socket", str(app.console.path), "--user", user, "--password-stdin", "--json", *words])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1]) if out else None


# ------------------------------------------------------------------------ the serial console

def test_login_commands_abbreviations_completion_and_role_denial(gate, term):
    assert "logged in as vera (viewer)" in term.login("vera")
    status = term.command("show status")
    assert "lane idle" in flat(status) and "passages 0" in flat(status), status
    assert "lane idle" in flat(term.command("sh st"))                       # unique prefixes
    for text, shows in (("show devices", "door "), ("show passage last", "no passage since"), ("show counters", "alerts"),
                        ("show sync", "sending to"), ("show log 5", " info "), ("show config", "sha256"),
                        ("show version", "egate"), ("sensors", "low ........"), ("sync status", "backlog"),
                        ("show alerts", ""), ("help", "show status")):
        assert shows in term.command(text), text
    assert "test door" not in term.command("help")                          # only what the role may run
    term.type("sh\t")
    assert term.expect("show ") == "show "                                   # Tab completes the word
    term.type("\x15")                                                       # Ctrl-U: the line is gone
    assert "% ambiguous command \"s\": sensors show sync" in term.command("s")
    assert "% denied: maintenance on needs the technician role (you are viewer)" in term.command("maintenance on")
    assert "% denied" in term.command("audit tail")
    assert gate.controller.machine.state == "idle"
    term.type("logout\r")
    term.expect("login: ")
    commands = [(e["actor"], e["details"]["command"], e["details"]["result"]) for e in audit(gate, "console.command")]
    assert ("vera", "maintenance on", "denied") in commands and ("vera", "show status", "ok") in commands
    assert ("vera", "technician.logout") in [(e["actor"], e["action"]) for e in audit(gate)]


def _locked_for(answer: str) -> int:
    """The seconds a locked account's answer says are left."""
    m = re.search(r"% account locked: try again in (\d+) s", answer)
    assert m, answer
    return int(m.group(1))


def test_lockout_with_backoff_and_the_line_pauses(gate, term):
    for attempt in range(1, 4):
        assert "% login incorrect" in term.login("lock", f"wrong-password-{attempt}")
        gate.clock.advance(2 ** attempt)              # the line's own pause after its n-th failure: 2**n s
    # The third failure locked the name for 30 s (8 s ago): even the right password is refused.
    assert 0 < _locked_for(term.login("lock")) <= 22   # the test clock also runs with real time
    gate.clock.advance(16 + 7)                        # the line's pause, and the lock is over
    assert "% login incorrect" in term.login("lock", "wrong-again-123")      # one more failure: 60 s
    gate.clock.advance(30)
    assert 0 < _locked_for(term.login("lock")) <= 30
    gate.clock.advance(31)
    assert "logged in as lock" in term.login("lock")
    failed = [e["details"] for e in audit(gate, "login.failed") if e["actor"] == "lock"]
    assert [f["locked_s"] for f in failed if f["why"] == "bad_credentials"] == [0.0, 0.0, 30.0, 60.0]
    assert [f["why"] for f in failed].count("locked") == 2


def test_idle_timeout_logs_out_without_sleeping(gate, term):
    term.login("tina")
    gate.clock.advance(gate.cfg.console.idle_timeout_s + 1)
    assert "no input for 300 s: logged out" in term.expect("login: ")
    assert wait_for(lambda: [e for e in audit(gate, "technician.logout")
                             if e["actor"] == "tina" and e["details"]["why"] == "idle"], 10)


def test_garbage_and_a_break_on_the_line_are_dropped(gate, term):
    term.login("tina")
    term.type(b"sho\x01\x02\xff\xfe\x1b[A\x1b[15~\x80w st")       # noise and arrow keys inside a word
    assert "lane" in term.command("atus")
    term.type(b"show sta\x00")                                   # a BREAK: the line is dropped
    term.expect("% break")
    term.expect(r"tina> $")
    assert "lane" in term.command("show status")
    assert term.sessions[-1].editor.garbage >= 8 and term.sessions[-1].breaks == 1


def test_maintenance_waits_for_the_traveller_inside_then_door_and_device_tests(gate, term):
    lane = gate.lane
    term.login("tina")
    assert "% test door entry actuates a device: only in maintenance" in term.command("test door entry")
    t = Traveller(lane, "genuine", "devries").start()
    wait_for(lambda: gate.controller.machine.state == "face", 30, "the traveller inside")
    out = term.command("maintenance on", 60)
    assert "waiting for the passage in progress to end (face)" in out and "lane maintenance" in out, out
    assert t.join(30) and t.outcome == "passed", t.summary()                 # let through, never trapped
    assert gate.controller.records[-1].outcome == "cleared"
    assert gate.screen.ids()[-1] == "gate.out_of_service"
    for leaf in ("entry", "exit"):
        out = term.command(f"test door {leaf}")
        assert f"leaf {leaf}" in flat(out) and "result pass" in flat(out), out
    assert "chip reader" in term.command("test reader")
    out = term.command("test camera")
    assert "640x480" in out and "result pass" in flat(out), out
    lane.fingerprint.place_finger(person("lin").finger_id)
    out = term.command("test finger", 30)
    lane.fingerprint.lift_finger()
    assert "NFIQ 2" in out and "minutiae" in out and person("lin").surname not in out, out
    # The interlock: a leaf that cannot close keeps the other one shut.
    lane.door.set_obstruction("entry", True)
    assert "locked NO" in flat(term.command("test door entry"))
    assert "% interlock: the entry leaf is not reported closed and locked" in term.command("test door exit")
    lane.door.set_obstruction("entry", False)
    wait_for(lambda: gate.controller.entry_secured(), 15, "the entry locked again")
    assert "valid yes" in flat(term.command("config validate"))
    assert "% no sync endpoint configured" in term.command("sync flush")      # this lane keeps its records
    assert "lane recovering" in term.command("maintenance off")
    wait_for(lambda: gate.controller.machine.state == "idle", 15, "back in service")
    tests = [e["details"] for e in audit(gate, "device.test")]
    assert {"device": "door.entry", "passed": True, "gate_id": gate.cfg.gate.id} in tests
    assert [e["details"]["technician"] for e in audit(gate, "maintenance.enter")][-1] == "tina"


def test_a_line_lost_mid_command_cancels_it_and_the_lane_serves_on(gate, term):
    term.login("tina")
    t = Traveller(gate.lane, "genuine", "devries").start()
    wait_for(lambda: gate.controller.machine.state == "face", 30, "the traveller inside")
    term.type("maintenance on\r")
    term.expect("waiting for the passage in progress")
    term.unplug()                                               # the cable is pulled mid-command
    wait_for(lambda: [e for e in audit(gate, "console.command")
                      if e["details"]["command"] == "maintenance on" and e["details"]["result"] == "cancelled"], 10)
    assert wait_for(lambda: [e for e in audit(gate, "technician.logout") if e["details"]["why"] == "disconnect"], 10)
    assert t.join(30) and t.outcome == "passed"
    wait_for(lambda: gate.controller.machine.state == "idle", 15, "idle again")
    assert gate.controller.hold_documents == 0                  # nothing held: the next traveller is served
    assert Traveller(gate.lane, "genuine", "devries").start().join(60)


# ------------------------------------------------------------------------ egate diag --json

def test_the_same_commands_through_egate_diag_json(gate, capsys, monkeypatch):
    code, out = diag(capsys, monkeypatch, gate, "vera", "sh", "st")
    assert code == 0 and out["ok"] and out["command"] == "show status" and out["data"]["lane"] == "idle"
    for words, key in ((["show", "devices"], "devices"), (["show", "counters"], "counters"), (["sensors"], "entry"),
                       (["show", "version"], "egate"), (["sync", "status"], "backlog"), (["show", "log", "3"], "lines"),
                       (["show", "passage", "last"], "passage"), (["show", "config"], "settings")):
        code, out = diag(capsys, monkeypatch, gate, "vera", *words)
        assert code == 0 and key in out["data"], (words, out)
    code, out = diag(capsys, monkeypatch, gate, "vera", "maintenance", "on")
    assert code == 1 and out == {"ok": False, "error": "denied: maintenance on needs the technician role (you are viewer)"}
    code, out = diag(capsys, monkeypatch, gate, "adam", "audit", "tail", "3")
    assert code == 0 and len(out["data"]["entries"]) == 3
    code, out = diag(capsys, monkeypatch, gate, "adam", "show", "nonsense")
    assert code == 1 and out["error"].startswith('unknown command "show nonsense"')
    code, out = diag(capsys, monkeypatch, gate, "vera", "show", "status", stdin="not-the-password")
    assert code == 3 and out is None


# ------------------------------------------------------------------------ officers

def raw(app, *requests) -> list[dict]:
    """Requests on one raw connection; one answer each."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(app.console.path))
        f = s.makefile("rwb")
        out = []
        for r in requests:
            f.write(protocol.encode(r))
            f.flush()
            out.append(json.loads(f.readline()))
        return out


def test_officer_commands_refused_without_authentication_or_by_a_guard(gate, capsys, monkeypatch):
    (reply,) = raw(gate, {"op": "run", "argv": ["release"]})
    assert reply == {"ok": False, "error": "not logged in: log in first"}
    code, out = diag(capsys, monkeypatch, gate, "tina", "release")                 # a technician is no officer
    assert code == 1 and out["error"] == "denied: release needs the officer role (you are technician)"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["olga"]))
    assert egate(["officer", "release", "--socket", str(gate.console.path), "--user", "olga", "--password-stdin"]) == 1
    assert "no refused traveller waiting in the mantrap (lane state idle)" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["olga"]))
    assert egate(["officer", "close", "--socket", str(gate.console.path), "--user", "olga", "--password-stdin"]) == 0
    assert gate.controller.machine.state == "closed"
    wait_for(lambda: gate.screen.ids()[-1] == "gate.out_of_service", 5, "the screen saying the gate is closed")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["olga"]))
    assert egate(["officer", "open", "--socket", str(gate.console.path), "--user", "olga", "--password-stdin"]) == 0
    wait_for(lambda: gate.controller.machine.state == "idle", 15, "the lane open again")
    def actions():
        return [(e["actor"], e["details"]["action"], e["details"]["result"]) for e in audit(gate, "officer.action")]

    wait_for(lambda: len(actions()) >= 3, 5, "the officer actions audited")      # written once answered
    assert actions()[-3:] == [("olga", "release", "refused"), ("olga", "close", "accepted"),
                              ("olga", "open", "accepted")]
    assert [e["actor"] for e in audit(gate, "console.command") if e["details"]["result"] == "unauthenticated"] == ["-"]


def test_officer_releases_a_referred_traveller_and_watches_the_alert(gate, monkeypatch):
    lane, c = gate.lane, gate.controller
    alerts, watching = [], threading.Event()

    def watch():
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(gate.console.path))
            f = s.makefile("rwb")
            for r in ({"op": "login", "user": "olga", "password": PASSWORDS["olga"], "channel": "test"},
                      {"op": "run", "argv": ["watch"]}):
                f.write(protocol.encode(r))
                f.flush()
            f.readline()
            f.readline()                                   # the progress line: watching now
            watching.set()
            alerts.append(json.loads(f.readline()))

    threading.Thread(target=watch, daemon=True).start()
    assert watching.wait(10)
    # A photo attack: the traveller walks in holding a printed photo, is refused, and waits inside.
    lane.present_passport(lane.passport("lin"))
    wait_for(lambda: lane.door.status().entry.position == Position.OPEN, 30, "the entry open")
    walker, pause = [Walker()], threading.Event()
    for front in range(0, 6):
        lane.door.set_beams(*beam_state(walker, front, 8))
        pause.wait(0.02)
    lane.camera.set_scene("printed_photo", face=lane.face_index("lin"))
    wait_for(lambda: c.machine.state == "returning", 60, "the refusal")
    record = c.records[-1]
    assert record.outcome == "refused_biometric" and c.refused_inside == record.passage_id
    alert = wait_for(lambda: alerts and alerts[0], 10, "the alert on the stream")["alert"]
    assert alert["kind"] == "referral" and alert["passage_id"] == record.passage_id
    # The officer checks the traveller by hand and releases them: the entry locks, then the exit opens.
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORDS["olga"]))
    assert egate(["officer", "release", "--socket", str(gate.console.path), "--user", "olga", "--password-stdin"]) == 0
    wait_for(lambda: lane.door.status().exit.position == Position.OPEN, 20, "the exit open")
    assert lane.door.status().entry.locked
    lane.camera.set_scene("no_face")
    for front in range(6, 12):
        lane.door.set_beams(*beam_state(walker, front, 8))
        pause.wait(0.02)
    lane.take_passport()
    wait_for(lambda: c.machine.state == "idle", 20, "idle after the traveller left by the exit")
    (action,) = wait_for(lambda: [e for e in audit(gate, "officer.action") if e["details"]["action"] == "release"
                                  and e["details"]["result"] == "accepted"], 5, "the release audited")
    assert action["actor"] == "olga"
    # Alerts and audit entries leave for central as signed records of their own (outcome alert / audit).
    box = Outbox.inspect(gate.cfg.storage.data_dir / "outbox.sqlite")
    try:
        key = load_signing_key(gate.cfg.storage.signing_key).public_key()
        bodies = [decode_envelope(p.envelope).verify(key) for p in box.unacknowledged(100_000)]
    finally:
        box.stop()
    sent = [b["detail"]["audit"] for b in bodies if b["outcome"] in ("alert", "audit")]
    assert any(b["outcome"] == "alert" and b["passage"] == record.passage_id and b["reasons"] == [alert["reason"]]
               for b in bodies)
    assert action in sent and [e["seq"] for e in sent] == sorted(e["seq"] for e in sent)
