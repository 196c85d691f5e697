"""Screening: what the gate asks beyond the document (docs/decisions.md).

`build(cfg, outbox, agent, enrolment)` gives the `gate.decision.Services` a `Decider` uses, and the
components whose health decides whether the lane may serve (the control list):

    control_list       controllist.ListCache over the installed `controllist` + `controllist-delta` bundles
    residents          a ListCache over the `residents` bundle (the resident register), not required
    recent_clearance   sync.outbox.Outbox.recent_clearance: this gate's clearances, indexed
    central_crossing   sync.agent.SyncAgent.open_crossing, from a worker thread with a short timeout
    enrolled           the enrolment store (a sealed template for the traveller id)
"""
from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

from core import logs
from core.component import Component
from gate.config import GateConfig
from gate.decision import Services
from gate.screening.controllist import DELTA_KIND, SNAPSHOT_KIND, ListCache

log = logs.get("screening")

RESIDENTS_KIND = "residents"


def bundles_dir(cfg: GateConfig) -> Path:
    return cfg.sync.bundles.dir or cfg.storage.data_dir / "bundles"


def _publisher_key(cfg: GateConfig):
    from sync.downstream import load_public_key

    return load_public_key(cfg.sync.bundles.publisher_key)


def build(cfg: GateConfig, *, outbox=None, agent=None, enrolment=None) -> tuple[Services, list[Component]]:
    sc = cfg.screening
    services = Services()
    required: list[Component] = []
    if sc.control_list.enabled:
        services.control_list = ListCache("control_list", bundles_dir(cfg), _publisher_key(cfg),
                                          max_age_s=sc.control_list.max_age_s, snapshot_kind=SNAPSHOT_KIND,
                                          delta_kind=DELTA_KIND)
        services.control_list.refresh()
        required.append(services.control_list)
    if sc.residents.enabled:
        services.residents = ListCache("resident_register", bundles_dir(cfg), _publisher_key(cfg),
                                       max_age_s=sc.residents.max_age_s, snapshot_kind=RESIDENTS_KIND, delta_kind=None)
        services.residents.refresh()
    if outbox is not None and sc.reuse.window_s:
        services.recent_clearance = outbox.recent_clearance
    if agent is not None and sc.reuse.central and agent.urls:
        services.central_crossing = lambda issuer, number, direction, timeout_s: central_crossing(
            agent, issuer, number, direction, timeout_s)
    if enrolment is not None:
        services.enrolled = lambda traveller_id: enrolment.lookup(traveller_id) is not None
    return services, required


def central_crossing(agent, issuer: str, number: str, direction: str, timeout_s: float) -> dict:
    """The agent's question to central, asked from a worker thread on the agent's loop."""
    loop = getattr(agent, "_loop", None)
    if loop is None or loop.is_closed():
        return {"checked": "skipped: the sync agent is not running", "open": False}
    future = asyncio.run_coroutine_threadsafe(agent.open_crossing(issuer, number, direction, timeout_s), loop)
    try:
        return future.result(timeout_s + 0.5)
    except (concurrent.futures.TimeoutError, TimeoutError):
        future.cancel()
        return {"checked": "skipped: central did not answer in time", "open": False}
    except Exception as exc:  # noqa: BLE001 - never a reason to fail the passage: the local check stands
        log.warning("central_crossing_failed", error=f"{type(exc).__name__}: {exc}")
        return {"checked": f"skipped: {type(exc).__name__}", "open": False}
