"""The real gate process with the page scanner as its only MRZ source, on the simulated lane: the
passport's data page lies on the glass at a random angle, the two-engine pipeline reads it, the
chip opens with its key (a conflict's keys tried in rank order) and the traveller is cleared."""
import dataclasses

import pytest

from drivers.mrz_reader.driver import MrzRead
from gate import config
from icao9303 import mrz
from simulators.lane import Lane, person
from tests.test_gate_lane import RunningGate, wait_for, walk


@pytest.fixture(scope="module")
def lane(tmp_path_factory):
    lane = Lane(tmp_path_factory.mktemp("page-lane"), profile="zero-latency", seed=3)
    lane.mrz_source = "page"
    with lane:
        yield lane


def test_a_genuine_traveller_is_cleared_by_a_page_read_a_lost_scanner_recovers_and_a_conflict_tries_both_keys(lane):
    cfg = config.load_gate(lane.config_path)
    assert cfg.devices.mrz_reader is None and cfg.devices.page_scanner is not None
    with RunningGate(cfg) as app:
        assert app.mrz is None and app.page_scanner in app.controller.dev.required
        t = walk(lane, "genuine", "lin")
        assert wait_for(lambda: app.controller.records, 20)
        record = app.controller.records[-1]
        reads = app.page_scanner.stats()
        assert record.outcome == "cleared", (record.as_dict(), t.summary(), reads)
        assert record.document["number"] == person("lin").document_number
        assert reads.get("read_agree", 0) + reads.get("read_single", 0) >= 1
        # The scanner's stream is cut: the lane goes out of service, comes back by itself, and the
        # next traveller is cleared.
        lane.page_scanner.faults.inject("unplug", duration_s=3.0)
        assert wait_for(lambda: app.controller.machine.state == "out_of_service", 15), app.controller.machine.state
        assert wait_for(lambda: app.controller.machine.state == "idle", 30), app.controller.machine.state
        walk(lane, "genuine", "devries")
        assert wait_for(lambda: len(app.controller.records) >= 2, 20)
        assert app.controller.records[-1].outcome == "cleared", app.controller.records[-1].as_dict()
        # A conflict: the wrong key ranked first is refused by the chip, the second opens it.
        # The chip's DG1 is then compared with the printed MRZ only as advisory. (The lane is in
        # maintenance meanwhile, so the gate itself ignores the page and leaves the chip to us.)
        assert wait_for(lambda: app.controller.machine.state == "idle", 20)
        app.reactor.call_from_thread(app.controller.set_maintenance, True, "test")
        assert wait_for(lambda: app.controller.machine.state == "maintenance", 10)
        doc = lane.passport("chen")
        right = mrz.parse(doc.mrz_lines)
        wrong = dataclasses.replace(right, document_number=right.document_number[:-1] + "9")
        lane.present_passport(doc)
        try:
            read = MrzRead(right.lines, wrong, None, agreement="conflict", alternatives=(right,))
            outcome = app.controller.dev.chip.read_page(read)
        finally:
            lane.take_passport()
    assert outcome.error is None and outcome.passive_auth is not None and outcome.passive_auth.passed
    assert outcome.passive_auth.check("dg1_mrz").advisory
