"""One document used twice, through central: a gate's cleared records fill central's crossings,
and the gate's question (the agent's link, a short timeout) says whether the document's last
crossing is in the gate's own direction; without central the answer says the check was skipped."""
import msgpack
import pytest

from gate import screening
from sync import pki as sync_pki
from sync import record
from sync.agent import SyncAgent
from sync.config import SyncConfig
from sync.outbox import Outbox
from sync.receiver import protocol as P
from tests.receiver_helpers import SITE, Client, RunningAgent, ThreadedReceiver, wait_for, write_config

GATE = "SIM-LANE-01"
NUMBER = "312004871"


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return sync_pki.create(tmp_path_factory.mktemp("pki"), gates=[GATE], sites=[SITE])


def crossing(seq: int, direction: str, outcome: str = "cleared") -> dict:
    return {"passage_id": f"p-{seq}", "started": f"2026-11-30T08:00:0{seq}+00:00", "ended": f"2026-11-30T08:00:0{seq}.5+00:00",
            "outcome": outcome, "reasons": [], "reason_detail": {}, "scores": {}, "timings_s": {},
            "document": {"type": "P", "issuer": "TWN", "number": NUMBER, "direction": direction}}


def test_central_answers_whether_the_last_crossing_is_in_the_asked_direction(layout, tmp_path):
    cfg = write_config(tmp_path / "central.toml", layout, db_url=f"sqlite:{tmp_path}/central.sqlite")
    box = Outbox(tmp_path / "outbox.sqlite", GATE, record.load_signing_key(layout.signing_key(GATE)))
    with ThreadedReceiver(cfg) as central:
        client = Client.gate(central.port, layout, GATE)

        def ask(direction, doc=f"n:TWN:{NUMBER}"):
            status, body = client.request("POST", P.CROSSINGS_PATH,
                                          msgpack.packb({"document": doc, "direction": direction}))
            return status, body   # Client.request decodes the msgpack answer

        assert ask("departure") == (200, {"open": False, "last": None})    # never seen: not known
        sync = SyncConfig(central_url=f"https://127.0.0.1:{central.port}", ca_cert=layout.ca_cert,
                          client_cert=layout.gate_cert(GATE), client_key=layout.gate_key(GATE),
                          retry_initial_s=0.05, retry_max_s=0.2)
        agent = SyncAgent(sync, box, gate_status=lambda: {"state": "idle", "health": {}, "counters": {},
                                                          "in_service_s": 0.0})
        with RunningAgent(agent):
            box.finish(crossing(1, "arrival"))
            box.finish(crossing(2, "departure", outcome="refused_document"))   # not a crossing
            wait_for(lambda: box.depth() == 0, 20, what="records at central")
            answer = screening.central_crossing(agent, "TWN", NUMBER, "arrival", 2.0)
            assert answer["checked"] == "central" and answer["open"] is True          # arrived twice
            assert answer["last"]["direction"] == "arrival" and answer["last"]["gate"] == GATE
            assert screening.central_crossing(agent, "TWN", NUMBER, "departure", 2.0)["open"] is False
            box.finish(crossing(3, "departure"))
            wait_for(lambda: box.depth() == 0, 20, what="the departure at central")
            assert screening.central_crossing(agent, "TWN", NUMBER, "departure", 2.0)["open"] is True  # left twice
            assert screening.central_crossing(agent, "TWN", "999", "departure", 2.0)["open"] is False
            # The local check: this gate's outbox remembers what it cleared, not what it refused.
            assert box.recent_clearance("TWN", NUMBER, 3600) is not None
            assert box.recent_clearance("NLD", NUMBER, 3600) is None
        assert ask("sideways")[0] == 400
    # No central: the answer says the check was skipped, never that the crossing is open.
    lone = SyncAgent(SyncConfig(), box, gate_status=dict)
    assert screening.central_crossing(lone, "TWN", NUMBER, "departure", 0.2) == \
        {"checked": "skipped: the sync agent is not running", "open": False}
    box.stop()
