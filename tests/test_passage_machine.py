"""PassageMachine: strict transitions, door requirements per state, recovery on boot."""
import pytest
from statemachine.exceptions import TransitionNotAllowed

from gate.passage import DOORS, PassageMachine


def drive(*events):
    seen = []
    m = PassageMachine(on_state=seen.append)
    for e in events:
        m.send(e)
    return m, seen


def test_boots_into_recovering_with_both_leaves_locked():
    m = PassageMachine()
    assert m.state == "recovering" and m.doors == ("locked", "locked")


def test_cleared_passage_opens_entry_then_exit_never_both():
    m, seen = drive("recovered", "document_presented", "document_accepted", "entered", "verified", "exited")
    assert seen == ["idle", "checking_document", "entering", "verifying", "exiting", "idle"]
    assert [DOORS[s] for s in seen[2:5]] == [("open", "locked"), ("locked", "locked"), ("locked", "open")]
    for state, (entry, exit_) in DOORS.items():
        if state != "emergency":
            assert "locked" in (entry, exit_), f"{state}: a mantrap never has both leaves open"


def test_refused_traveller_goes_back_through_the_entry():
    m, seen = drive("recovered", "document_presented", "document_accepted", "entered", "refused")
    assert m.state == "returning" and m.doors == ("open", "locked")
    m.send("returned")
    assert m.state == "idle"


@pytest.mark.parametrize("event", ["verified", "entered", "exited", "recovered"])
def test_events_out_of_order_are_errors_not_ignored(event):
    m, _ = drive("recovered", "document_presented")
    with pytest.raises(TransitionNotAllowed):
        m.send(event)
    assert m.state == "checking_document"


def test_emergency_from_anywhere_opens_both_and_ends_in_recovery():
    for prefix in ([], ["recovered"], ["recovered", "document_presented", "document_accepted", "entered"]):
        m, _ = drive(*prefix, "emergency_on")
        assert m.state == "emergency" and m.doors == ("open", "open")
        m.send("emergency_off")
        assert m.state == "recovering"


def test_maintenance_only_from_idle_or_recovery():
    m, _ = drive("recovered", "maintenance_on")
    assert m.state == "out_of_service"
    m2, _ = drive("recovered", "document_presented")
    with pytest.raises(TransitionNotAllowed):
        m2.send("maintenance_on")


def test_every_state_has_a_door_requirement():
    assert set(DOORS) == {s.id for s in PassageMachine().states}
