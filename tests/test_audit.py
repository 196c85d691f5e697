"""The audit trail detects an edited, deleted, inserted or reordered entry."""
import json
import subprocess
import sys

import pytest

from core import audit


@pytest.fixture
def trail(tmp_path):
    log = audit.AuditLog(tmp_path / "audit.jsonl")
    log.append("tech:wu", "technician.login", method="console")
    log.append("tech:wu", "maintenance.enter", reason="beam 3 cleaning")
    log.append("tech:wu", "door.override", leaf="exit", command="open")
    log.append("tech:wu", "maintenance.exit")
    log.append("gate", "tamper", switch="cabinet")
    return log.path


def lines(path):
    return path.read_text().splitlines(keepends=True)


def test_intact_trail_verifies_and_reopens_at_its_tail(trail):
    assert audit.verify(trail) is None
    again = audit.AuditLog(trail)
    entry = again.append("officer:lin", "officer.action", action="release")
    assert entry["seq"] == 6
    assert audit.verify(trail) is None


def test_edited_entry(trail):
    rows = lines(trail)
    entry = json.loads(rows[2])
    entry["details"]["command"] = "close"
    rows[2] = json.dumps(entry) + "\n"
    trail.write_text("".join(rows))
    broken = audit.verify(trail)
    assert broken.line == 3 and "edited" in broken.reason


def test_deleted_entry(trail):
    rows = lines(trail)
    del rows[1]
    trail.write_text("".join(rows))
    broken = audit.verify(trail)
    assert broken.line == 2 and "link broken" in broken.reason


def test_inserted_entry_even_with_a_valid_own_hash(trail):
    rows = lines(trail)
    forged = {"seq": 2, "ts": "2026-01-01T00:00:00+00:00", "actor": "x", "action": "door.override",
              "details": {}, "prev": json.loads(rows[0])["hash"]}
    forged["hash"] = audit._digest(forged)
    rows.insert(2, json.dumps(forged) + "\n")
    trail.write_text("".join(rows))
    broken = audit.verify(trail)
    assert broken.line == 3


def test_reordered_entries(trail):
    rows = lines(trail)
    rows[1], rows[2] = rows[2], rows[1]
    trail.write_text("".join(rows))
    assert audit.verify(trail).line == 2


def test_garbage_line(trail):
    with open(trail, "ab") as fh:
        fh.write(b"\x00\xffnot json\n")
    assert audit.verify(trail) == audit.Broken(6, "not a JSON entry")


def test_refuses_to_append_to_broken_trail_and_unknown_actions(trail):
    rows = lines(trail)
    del rows[0]
    trail.write_text("".join(rows))
    with pytest.raises(audit.AuditError, match="broken trail"):
        audit.AuditLog(trail)
    with pytest.raises(audit.AuditError, match="unknown audit action"):
        audit.AuditLog(trail.parent / "new.jsonl").append("x", "door.opne")


def test_cli_verify_exit_codes(trail):
    ok = subprocess.run([sys.executable, "-m", "gate", "audit", "verify", str(trail)], capture_output=True, text=True)
    assert ok.returncode == 0 and "intact" in ok.stdout
    rows = lines(trail)
    rows[3] = rows[3].replace("maintenance.exit", "maintenance.enter")
    trail.write_text("".join(rows))
    bad = subprocess.run([sys.executable, "-m", "gate", "audit", "verify", "--json", str(trail)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert json.loads(bad.stdout) == {"file": str(trail), "intact": False, "line": 4,
                                      "reason": "content does not match its hash (edited entry)"}
