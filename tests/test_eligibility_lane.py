"""The decisions' new paths through the real gate process on the simulated lane (one lane, one gate
run): a control-list hit is a silent referral with the officer alerted, a foreigner on an arrival
gate that does not serve them, a resident with a registered permit, the same passport twice; then
the control list going stale, failing its signature, and a good one bringing the lane back."""
import datetime as dt

import pytest

from core.reasons import Reason
from gate import config
from simulators import lists
from simulators.lane import Lane
from tests.test_gate_lane import RunningGate, walk, wait_for


@pytest.fixture(scope="module")
def lane(tmp_path_factory):
    with Lane(tmp_path_factory.mktemp("lane"), profile="zero-latency") as lane:
        lists.screen_lane(lane, direction="arrival", reuse_window_s=3600, central_check=True, max_age_s=3600)
        yield lane


def last_record(app, before):
    assert wait_for(lambda: len(app.controller.records) > before, 20)
    return app.controller.records[-1]


def test_screening_and_eligibility_paths_through_the_gate(lane):
    cfg = config.load_gate(lane.config_path)
    assert cfg.gate.direction == "arrival" and cfg.eligibility.foreigners_on == ("departure",)
    with RunningGate(cfg) as app:
        c = app.controller
        status = c.status_snapshot()
        assert status["control_list"]["state"] == "ok" and status["control_list"]["version"] == "1"
        assert status["control_list"]["age_s"] is not None

        # A control-list hit: the screen says what any referral says; the officer gets the entry.
        n = len(c.records)
        walk(lane, "watchlisted", patience_s=1.0)
        r = last_record(app, n)
        assert r.outcome == "refused_document" and r.reasons == [Reason.CONTROL_LIST_HIT.value], r.as_dict()
        assert r.document["control_list"]["hits"][0]["entry"] == "CL-0001"
        shown = app.screen.ids()
        assert shown[shown.index("document.reading") + 1] == "passage.see_officer"
        alerts = [a for a in c.alerts if a.passage_id == r.passage_id]
        assert [a.reason for a in alerts] == [Reason.CONTROL_LIST_HIT.value], alerts
        assert "CL-0001" in alerts[0].detail and "detain" in alerts[0].detail and "name_birth_date" in alerts[0].detail

        # A foreigner on an arrival gate that serves foreigners on departure only.
        n = len(c.records)
        walk(lane, "foreigner", patience_s=1.0)
        r = last_record(app, n)
        assert r.outcome == "refused_document" and r.reasons == [Reason.FOREIGNER_NOT_SERVED.value], r.as_dict()

        # A resident (a foreign passport with a registered permit) is served on arrival.
        n = len(c.records)
        t = walk(lane, "resident")
        r = last_record(app, n)
        assert r.document["traveller_class"] == "resident" and r.document["resident_permit"] == "ARC-2026-0001"
        assert r.outcome == "cleared" and t.outcome == "passed", (r.reasons, r.scores, t.summary())

        # The same passport twice: cleared, then refused; without central the record says the check was skipped.
        n = len(c.records)
        walk(lane, "genuine", "lin")
        first = last_record(app, n)
        assert first.outcome == "cleared", first.as_dict()
        walk(lane, "repeat", patience_s=1.0)
        again = last_record(app, n + 1)
        assert again.outcome == "refused_document" and again.reasons == [Reason.DOC_ALREADY_USED.value]
        assert again.document["reuse"]["central"] == "skipped: no central link"
        assert again.document["reuse"]["local"].startswith("cleared")

        # The list goes stale: out of service with that reason, back when a fresh one arrives.
        bundles = cfg.storage.data_dir / "bundles"
        key = lists.publisher_key(lane.workdir)
        old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
        lists.publish_control_list(bundles, key, serial=2, created=old)
        assert wait_for(lambda: c.machine.state == "out_of_service", 10), c.machine.state
        assert "stale" in c.last_health["control_list"]
        assert c.status_snapshot()["control_list"]["state"] == "stale"
        lists.publish_control_list(bundles, key, serial=3)
        assert wait_for(lambda: c.machine.state == "idle", 10), c.machine.state
        assert c.status_snapshot()["control_list"]["version"] == "3"

        # The installed list altered on disk: its signature fails, out of service; a good one again: back.
        env = bundles / "controllist" / "v3.bundle"
        raw = bytearray(env.read_bytes())
        raw[-5] ^= 0x40
        env.write_bytes(bytes(raw))
        assert wait_for(lambda: c.machine.state == "out_of_service", 10), c.machine.state
        assert "bad_signature" in c.last_health["control_list"]
        lists.publish_control_list(bundles, key, serial=4)
        assert wait_for(lambda: c.machine.state == "idle", 10), c.machine.state


def test_issuing_states_residents_per_direction_and_enrolment_per_category(lane, tmp_path):
    """The same lane as a departure gate that serves TWN documents only, residents on arrival only,
    and foreigners only once enrolled."""
    text = lane.config_path.read_text().replace('direction = "arrival"', 'direction = "departure"')
    text = text.replace("[eligibility]\n", '[eligibility]\nissuing_states = ["TWN"]\nresidents_on = ["arrival"]\n'
                                           'enrolment_required = ["foreigner"]\n', 1)
    (tmp_path / "gate.toml").write_text(text)
    cfg = config.load_gate(tmp_path / "gate.toml")
    with RunningGate(cfg) as app:
        c = app.controller
        n = len(c.records)
        walk(lane, "resident", patience_s=1.0)
        r = last_record(app, n)
        assert {Reason.ISSUER_NOT_ACCEPTED.value, Reason.RESIDENT_NOT_SERVED.value} <= set(r.reasons), r.as_dict()
        assert r.document["traveller_class"] == "resident"
        walk(lane, "genuine", "devries", patience_s=1.0)
        r = last_record(app, n + 1)
        assert {Reason.ISSUER_NOT_ACCEPTED.value, Reason.NOT_ENROLLED.value} <= set(r.reasons), r.as_dict()
        # Neither refers the traveller to an officer by itself; the issuing state does.
        alerted = [a.reason for a in c.alerts if a.passage_id == r.passage_id]
        assert len(alerted) == 1 and alerted[0] != Reason.NOT_ENROLLED.value, alerted
