"""PassageMachine: strict transitions, guards on the reported mantrap facts, door requirements per
state, health region, timeouts, and the diagram in docs/passage.md."""
import random
from pathlib import Path

import pytest
from statemachine.exceptions import TransitionNotAllowed

from core.reasons import Reason
from core import generated
from gate.passage import DOORS, TIMEOUTS, PassageMachine, diagram, reference_markdown

CLEARED = ["recovered", "document_presented", "document_accepted", "entered", "occupancy_confirmed",
           "face_decided", "verified", "exited", "exit_locked"]


class Facts:
    """What the controller would report: all true means an empty mantrap, both leaves locked, a match."""

    def __init__(self, **kw):
        self.empty = self.entry = self.exit = self.positive = True
        for k, v in kw.items():
            setattr(self, k, v)

    def mantrap_empty(self):
        return self.empty

    def entry_secured(self):
        return self.entry

    def exit_secured(self):
        return self.exit

    def decision_positive(self):
        return self.positive


def drive(*events, facts=None):
    seen = []
    m = PassageMachine(facts or Facts(), on_state=seen.append)
    for e in events:
        m.send(e)
    return m, seen


def test_boots_into_recovering_with_both_leaves_locked_and_devices_ok():
    m, seen = drive()
    assert m.state == "recovering" and m.doors == ("locked", "locked") and m.healthy
    assert seen == ["recovering"]


def test_cleared_passage_steps_through_every_state_and_never_opens_both_leaves():
    m, seen = drive(*CLEARED)
    assert seen == ["recovering", "idle", "reading_document", "entering", "confirming_occupancy", "face", "deciding",
                    "exiting", "exit_clear", "idle"]
    assert [DOORS[s] for s in ("entering", "face", "exiting")] == [("open", "locked"), ("locked", "locked"),
                                                                   ("locked", "open")]
    for state, (entry, exit_) in DOORS.items():
        assert state == "emergency" or "locked" in (entry, exit_), f"{state}: a mantrap never has both leaves open"


def test_the_finger_step_sits_between_face_and_decision():
    m, seen = drive(*CLEARED[:5], "finger_required", "finger_decided", "verified")
    assert seen[-3:] == ["finger", "deciding", "exiting"]


@pytest.mark.parametrize("fact", ["exit", "empty"])
def test_the_entry_opens_only_with_the_exit_reported_locked_and_the_mantrap_empty(fact):
    facts = Facts()
    m, _ = drive("recovered", "document_presented", facts=facts)
    setattr(facts, fact, False)
    with pytest.raises(TransitionNotAllowed):
        m.send("document_accepted")
    assert m.state == "reading_document" and m.doors == ("locked", "locked")
    setattr(facts, fact, True)
    m.send("document_accepted")
    assert m.state == "entering"


@pytest.mark.parametrize("fact", ["entry", "positive"])
def test_the_exit_opens_only_after_a_positive_decision_with_the_entry_reported_locked(fact):
    facts = Facts()
    m, _ = drive(*CLEARED[:6], facts=facts)
    setattr(facts, fact, False)
    with pytest.raises(TransitionNotAllowed):
        m.send("verified")
    assert m.state == "deciding"


def test_verification_waits_for_the_entry_to_lock():
    facts = Facts(entry=False)
    m, _ = drive(*CLEARED[:4], facts=facts)
    with pytest.raises(TransitionNotAllowed):
        m.send("occupancy_confirmed")
    m.send("entry_not_closed")
    assert m.state == "returning" and m.doors == ("open", "locked")


def test_never_idle_while_the_beams_see_someone():
    facts = Facts(empty=False)
    m, _ = drive(facts=facts)
    with pytest.raises(TransitionNotAllowed):
        m.send("recovered")
    m.send("occupied")
    assert m.state == "returning"
    with pytest.raises(TransitionNotAllowed):
        m.send("returned")
    facts.empty = True
    m.send("returned")
    assert m.state == "idle"


def test_refused_traveller_goes_back_through_the_entry_from_any_step_inside():
    for steps in (CLEARED[:4], CLEARED[:5], CLEARED[:6]):
        m, _ = drive(*steps, "refused")
        assert m.state == "returning" and m.doors == ("open", "locked")
        m.send("returned")
        assert m.state == "idle"


@pytest.mark.parametrize("event", ["verified", "entered", "exited", "recovered", "occupancy_confirmed"])
def test_events_out_of_order_are_errors_not_ignored(event):
    m, _ = drive("recovered", "document_presented")
    with pytest.raises(TransitionNotAllowed):
        m.send(event)
    assert m.state == "reading_document"


def test_emergency_from_every_lane_state_opens_both_and_ends_in_recovery():
    prefixes = [CLEARED[:i] for i in range(len(CLEARED))] + [["occupied"], ["recovered", "maintenance_on"]]
    for prefix in prefixes:
        m, _ = drive(*prefix, "emergency_on")
        assert m.state == "emergency" and m.doors == ("open", "open"), prefix
        m.send("emergency_off")
        assert m.state == "recovering"


def test_a_lost_device_takes_the_lane_out_of_service_and_its_return_brings_it_back():
    m, _ = drive("recovered", "device_lost", "taken_out_of_service")
    assert m.state == "out_of_service" and not m.healthy
    with pytest.raises(TransitionNotAllowed):
        m.send("back_in_service")  # not while a device is still lost
    m.send("devices_restored")
    m.send("back_in_service")
    assert m.state == "recovering" and m.healthy
    m.send("recovered")
    assert m.state == "idle"


def test_a_passage_that_loses_a_device_ends_out_of_service_after_the_traveller_is_out():
    m, _ = drive(*CLEARED[:5], "device_lost", "abort")
    assert m.state == "returning" and m.doors == ("open", "locked")
    m.send("returned")
    assert m.state == "out_of_service"
    m2, _ = drive("recovered", "document_presented", "device_lost", "abort")
    assert m2.state == "out_of_service"
    m3, _ = drive("device_lost", "recovered")
    assert m3.state == "out_of_service"


def test_timeouts_are_events_with_reason_codes_and_never_clear_anyone():
    m, _ = drive(*CLEARED[:7], "exit_timeout")
    assert m.state == "exit_attention" and m.doors == ("locked", "open")   # the exit stays open: never trapped
    m.send("exited")
    assert m.state == "exit_clear"
    for state, timeout in TIMEOUTS.items():
        assert state in DOORS and isinstance(timeout.reason, Reason)
    for prefix, event, target in ((CLEARED[:3], "entry_timeout", "returning"),
                                  (CLEARED[:4], "entry_not_closed", "returning"),
                                  (CLEARED[:7], "exit_timeout", "exit_attention"),
                                  (CLEARED[:8], "exit_not_closed", "out_of_service"),
                                  (["occupied"], "return_timeout", "entry_attention")):
        m, _ = drive(*prefix)
        assert TIMEOUTS[m.state].event == event
        m.send(event)
        assert m.state == target


def test_maintenance_only_from_idle_recovery_or_out_of_service():
    m, _ = drive("recovered", "maintenance_on")
    assert m.state == "maintenance"
    m.send("maintenance_off")
    assert m.state == "recovering"
    m2, _ = drive("recovered", "document_presented")
    with pytest.raises(TransitionNotAllowed):
        m2.send("maintenance_on")


def test_random_walks_never_break_the_mantrap_invariants():
    """Thousands of random events with random facts: the entry is entered only with the exit
    reported locked and the mantrap empty; the exit only with the entry locked and a positive
    decision; idle only with the mantrap empty; both leaves open only in emergency."""
    rng = random.Random(9303)
    facts = Facts()
    m = PassageMachine(facts)
    events = sorted({e.id for e in m.events})
    entered = 0
    for _ in range(30_000):
        for name in ("empty", "entry", "exit", "positive"):
            setattr(facts, name, rng.random() < 0.8)
        before, snapshot = m.state, (facts.empty, facts.entry, facts.exit, facts.positive)
        # Mostly an event the state has a transition for (its guards may still refuse it), sometimes any.
        allowed = [e.id for e in m.allowed_events if e.id != "emergency_on" or rng.random() < 0.1]
        try:
            m.send(rng.choice(allowed if allowed and rng.random() < 0.9 else events))
        except TransitionNotAllowed:
            assert m.state == before
            continue
        after = m.state
        empty, entry, exit_, positive = snapshot
        if after == "entering" and before != "entering":
            entered += 1
            assert exit_ and empty, (before, snapshot)
        if after == "exiting" and before != "exiting":
            assert entry and positive, (before, snapshot)
        if after == "idle" and before != "idle":
            assert empty, (before, snapshot)
        assert after == "emergency" or "locked" in DOORS[after]
    assert entered > 40, entered  # the walk did reach the interesting transitions


def test_docs_passage_embeds_the_current_diagram_and_door_table():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "passage.md").read_text()
    assert generated.section(doc, "gate.passage") == reference_markdown(), \
        "regenerate: python -m gate.passage --write docs/passage.md"
    assert diagram().strip() in doc and "stateDiagram-v2" in doc
