"""A cloned chip in the simulated lane through the real gate: the traveller's passport carries the
genuine data and signatures (passive authentication passes) on a chip without the issuer's keys;
the gate runs PACE, Chip Authentication and Active Authentication and refuses it as
CHIP_AUTH_FAILED, never opening the exit."""
import pytest

from core.reasons import Reason
from gate import config
from simulators.lane import Lane
from tests.test_gate_lane import RunningGate, walk

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def lane(tmp_path_factory):
    with Lane(tmp_path_factory.mktemp("lane"), profile="zero-latency") as lane:
        yield lane


def test_clone_is_refused_chip_auth_failed(lane):
    cfg = config.load_gate(lane.config_path)
    assert cfg.eligibility.chip_authentication == "when_offered"
    with RunningGate(cfg) as app:
        t = walk(lane, "clone", patience_s=3.0)
        record = app.controller.records[-1]
    assert record.reasons == [Reason.CHIP_AUTH_FAILED.value], record.as_dict()
    assert "failed" not in set(record.document["passive_auth"].values())  # the data are genuine
    assert t.outcome == "gave_up"
    assert not any(e["event"] == "exit_open" for e in t.summary()["timeline"])
