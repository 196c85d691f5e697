"""Officer commands in the passage machine (release, close, open: new transitions under the old
guards) and the audit trail's way to central: every entry, officer alerts included, a signed record
in the outbox, exactly once, caught up after a crash."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from statemachine.exceptions import TransitionNotAllowed

from core.audit import AuditLog
from gate.passage import DOORS, PassageMachine
from sync import record as rec
from sync.outbox import Outbox

REFUSED = ["recovered", "document_presented", "document_accepted", "entered", "occupancy_confirmed",
           "face_decided", "refused"]


class Facts:
    def __init__(self, **kw):
        self.empty = self.entry = self.exit = self.positive = True
        self.__dict__.update(kw)

    def mantrap_empty(self):
        return self.empty

    def entry_secured(self):
        return self.entry

    def exit_secured(self):
        return self.exit

    def decision_positive(self):
        return self.positive


def test_release_locks_the_entry_before_the_exit_opens_and_only_with_someone_inside():
    facts = Facts()
    m = PassageMachine(facts)
    for e in REFUSED:
        m.send(e)
    assert m.state == "returning" and m.doors == ("open", "locked")
    with pytest.raises(TransitionNotAllowed):
        m.send("officer_release")                      # nobody inside: nothing to release
    facts.empty = False
    m.send("officer_release")
    assert m.state == "releasing" and m.doors == ("locked", "locked")
    facts.entry = False
    with pytest.raises(TransitionNotAllowed):
        m.send("released")                             # the entry not yet reported locked
    facts.entry, facts.positive = True, False
    with pytest.raises(TransitionNotAllowed):
        m.send("released")                             # no positive decision (the officer's)
    facts.positive = True
    m.send("released")
    assert m.state == "exiting" and m.doors == ("locked", "open")


def test_a_traveller_who_walks_back_out_while_releasing_leaves_the_lane_idle():
    facts = Facts()
    m = PassageMachine(facts)
    for e in REFUSED:
        m.send(e)
    facts.empty = False
    m.send("officer_release")
    m.send("release_timeout")
    assert m.state == "entry_attention"
    m.send("officer_release")
    facts.empty = True
    m.send("returned")
    assert m.state == "idle"


def test_an_officer_closes_only_between_passages_and_opens_only_a_closed_lane():
    m = PassageMachine(Facts())
    m.send("recovered")
    m.send("lane_closed")
    assert m.state == "closed" and DOORS["closed"] == ("locked", "locked")
    with pytest.raises(TransitionNotAllowed):
        m.send("maintenance_on")
    m.send("lane_opened")
    assert m.state == "recovering"
    m.send("recovered")
    m.send("document_presented")
    with pytest.raises(TransitionNotAllowed):
        m.send("lane_closed")


@pytest.fixture
def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite", "GATE-01", Ed25519PrivateKey.generate())
    yield box
    box.stop()


def bodies(box):
    key = box.key.public_key()
    return [rec.decode_envelope(p.envelope).verify(key) for p in box.unacknowledged(1000)]


def test_audit_entries_and_alerts_are_signed_records_once_each(outbox, tmp_path):
    trail = AuditLog(tmp_path / "audit.jsonl")
    trail.subscribe(outbox.add_audit)
    login = trail.append("olga", "officer.login", role="officer", channel="cli")
    alert = trail.append("gate", "officer.alert", reason="PAD_PASSIVE", passage_id="p-1", detail="refused")
    assert outbox.add_audit(login) is None                          # already there: never twice
    first, second = bodies(outbox)
    assert (first["outcome"], first["passage"], first["reasons"]) == ("audit", "", [])
    assert (second["outcome"], second["passage"], second["reasons"]) == ("alert", "p-1", ["PAD_PASSIVE"])
    assert second["detail"]["audit"] == alert and first["detail"]["audit"]["hash"] == alert["prev"]   # the chain
    # What the outbox missed (a crash between the trail and the outbox) is caught up, in order.
    trail.unsubscribe(outbox.add_audit)
    missed = [trail.append("tina", "console.command", command="show status", result="ok") for _ in range(2)]
    for entry in trail.entries(outbox.audit_seq()):
        outbox.add_audit(entry)
    assert [b["detail"]["audit"] for b in bodies(outbox)[2:]] == missed
    assert outbox.audit_seq() == missed[-1]["seq"]
