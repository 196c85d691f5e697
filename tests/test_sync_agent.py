"""The sync agent against real receivers over mutual TLS: delivery, failover down the list,
failback with probes and dwell, re-sending what only a backup holds, heartbeats, no flapping,
and nothing lost or duplicated at central."""
from __future__ import annotations

import time

import pytest

from sync import pki as sync_pki
from sync.agent import SyncAgent
from sync.config import SyncConfig
from sync.outbox import Outbox
from sync.receiver.config import database_target
from sync.receiver.store import Store
from sync.record import load_signing_key
from tests.receiver_helpers import RunningAgent, SITE, ThreadedReceiver, free_port, wait_for, write_config

GATE = "SIM-LANE-01"


def status() -> dict:
    return {"state": "idle", "health": {"door": None}, "counters": {"cleared": 1}, "in_service_s": 12.5}


def passage(n: int) -> dict:
    return {"passage_id": f"p{n}", "started": "2026-11-30T02:00:00+00:00", "ended": "2026-11-30T02:00:09+00:00",
            "outcome": "cleared", "reasons": [], "reason_detail": {}, "document": {"number": f"{n:09d}"},
            "scores": {}, "timings_s": {"total": 9.0}}


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return sync_pki.create(tmp_path_factory.mktemp("pki"), gates=[GATE], sites=[SITE])


class Sites:
    """Central, the site's backup and the off-site backup on fixed ports, each startable and stoppable."""

    def __init__(self, tmp, layout):
        self.tmp, self.layout = tmp, layout
        self.ports = {"central": free_port(), "backup": free_port(), "offsite": free_port()}
        self.running: dict[str, ThreadedReceiver] = {}
        self.configs = {}
        for role in self.ports:
            central = role == "central"
            server = "central" if central else sync_pki._server_name(SITE if role == "backup" else "offsite")
            site = SITE if role != "offsite" else "offsite"
            self.configs[role] = write_config(
                tmp / f"{role}.toml", layout, role="central" if central else "backup", port=self.ports[role],
                db_url=f"sqlite:///{tmp / (role + '.sqlite')}", server=server, site=site,
                forward_port=None if central else self.ports["central"],
                forwarders=(sync_pki.forwarder_cn(SITE), sync_pki.forwarder_cn("offsite")))

    def start(self, role):
        self.running[role] = ThreadedReceiver(self.configs[role]).__enter__()

    def stop(self, role):
        self.running.pop(role).__exit__(None, None, None)

    def url(self, role):
        return f"https://127.0.0.1:{self.ports[role]}"

    def _store(self, role) -> Store:
        cfg = self.configs[role]
        return Store(database_target(cfg.database, config_path=self.tmp / f"{role}.toml"), create=False)

    def records(self, role) -> list[str]:
        store = self._store(role)
        try:
            return [r["id"] for r in store.records()]
        finally:
            store.close()

    def heartbeat(self, role) -> dict | None:
        store = self._store(role)
        try:
            return store.status()["gates"].get(GATE, {}).get("heartbeat")
        finally:
            store.close()

    def close(self):
        for role in list(self.running):
            self.stop(role)


def config(sites: Sites, layout, **kw) -> SyncConfig:
    base = dict(central_url=sites.url("central"), backup_url=sites.url("backup"), offsite_url=sites.url("offsite"),
                ca_cert=layout.ca_cert, client_cert=layout.gate_cert(GATE), client_key=layout.gate_key(GATE),
                batch_size=50, request_timeout_s=2.0, retry_initial_s=0.05, retry_max_s=0.3, failover_after=2,
                failover_timeout_s=5.0, failback_probe_s=0.2, failback_after=2, min_dwell_s=1.0, heartbeat_s=0.3)
    return SyncConfig(**{**base, **kw})


@pytest.fixture
def sites(tmp_path, layout):
    s = Sites(tmp_path, layout)
    yield s
    s.close()


def outbox(tmp_path, layout) -> Outbox:
    return Outbox(tmp_path / "outbox.sqlite", GATE, load_signing_key(layout.signing_key(GATE)))


def test_records_reach_central_and_leave_the_outbox_and_heartbeats_are_stored(tmp_path, layout, sites):
    sites.start("central")
    box = outbox(tmp_path, layout)
    for i in range(1, 121):
        box.finish(passage(i))
    with RunningAgent(SyncAgent(config(sites, layout), box, gate_status=status)) as ra:
        wait_for(lambda: box.depth() == 0, 30, what="outbox drained")
        assert ra.agent.machine.active == "central" and ra.agent.sent["central"] == 120
        wait_for(lambda: box.agent_status() and box.agent_status()["last_ack_at"], 5, what="status published")
    assert sites.records("central") == [f"{GATE}:{i}" for i in range(1, 121)]
    beat = sites.heartbeat("central")
    assert beat["state"] == "idle" and beat["in_service_s"] == 12.5 and beat["counters"] == {"cleared": 1}


def test_failover_down_the_list_then_failback_with_nothing_lost_or_duplicated(tmp_path, layout, sites):
    """Central is down from the start: the agent moves to the site's backup after `failover_after`
    failures; with the backup down too, to the off-site one. When central returns, probes bring
    the agent back after `failback_after` good probes and `min_dwell_s`; what only a backup held is
    sent to central, oldest first; the backups also forward; central ends with each record once."""
    sites.start("offsite")
    box = outbox(tmp_path, layout)
    for i in range(1, 31):
        box.finish(passage(i))
    agent = SyncAgent(config(sites, layout), box, gate_status=status)
    with RunningAgent(agent):
        wait_for(lambda: agent.machine.active == "offsite", 20, what="fail over to the off-site backup")
        assert [s.to for s in agent.switches] == ["backup", "offsite"]
        assert all(s.detection_s is not None and s.detection_s <= 2.0 for s in agent.switches)
        wait_for(lambda: box.backlog()["acked_by_backup_only"] == 30, 20, what="the off-site backup holds all")
        assert box.depth() == 30  # only central's acknowledgement removes a record
        for i in range(31, 41):
            box.finish(passage(i))
        sites.start("central")
        t0 = time.monotonic()
        wait_for(lambda: agent.machine.active == "central", 20, what="fail back to central")
        assert time.monotonic() - t0 >= 0.2  # probes and dwell, not at the first sign of life
        wait_for(lambda: box.depth() == 0, 30, what="everything at central")
    expected = [f"{GATE}:{i}" for i in range(1, 41)]
    wait_for(lambda: sites.records("central") == expected, 20, what="central has every record once")
    assert sites.records("offsite") == expected  # 31-40 were written while the agent was still there
    assert agent.refused == {}


def test_no_flapping_a_central_that_comes_and_goes_does_not_pull_the_agent_back_each_time(tmp_path, layout, sites):
    sites.start("backup")
    box = outbox(tmp_path, layout)
    agent = SyncAgent(config(sites, layout, min_dwell_s=3.0, failback_after=3), box, gate_status=status)
    with RunningAgent(agent):
        box.finish(passage(1))
        agent.nudge()
        wait_for(lambda: agent.machine.active == "backup", 20, what="on the backup")
        for _ in range(3):  # central up for less than the probes need, then down again
            sites.start("central")
            time.sleep(0.3)
            sites.stop("central")
            time.sleep(0.3)
        assert agent.machine.active == "backup"
        assert [s.to for s in agent.switches] == ["backup"]
        sites.start("central")
        wait_for(lambda: agent.machine.active == "central", 20, what="fail back once central stays up")
        assert [s.to for s in agent.switches] == ["backup", "central"]


def test_with_no_endpoint_reachable_nothing_is_lost_and_the_agent_keeps_trying(tmp_path, layout, sites):
    box = outbox(tmp_path, layout)
    for i in range(1, 6):
        box.finish(passage(i))
    agent = SyncAgent(config(sites, layout), box, gate_status=status)
    with RunningAgent(agent):
        wait_for(lambda: agent.machine.active == "offsite" and len(agent.errors) >= 5, 20, what="all down")
        assert box.depth() == 5
        sites.start("central")
        wait_for(lambda: box.depth() == 0, 30, what="delivered once central is back")
    assert sites.records("central") == [f"{GATE}:{i}" for i in range(1, 6)]
