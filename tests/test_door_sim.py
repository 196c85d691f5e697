"""DoorController against DoorSimulator over real ptys: commands, safety rules, every fault, a killed host."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from drivers.door.driver import CommandFailed, DoorController, LeafFault, LinkDown, LinkUp
from drivers.door.protocol import (
    T, Beams, Emergency, Leaf, LeafState, Link, Open, Position, Power, PowerState, Reject, RejectReason, Status, Tamper,
    Watchdog,
)
from drivers.presence import Direction, PresenceTracker
from gate.reactor import Reactor
from simulators.door import DoorSimulator, Profile, Walker, beam_walk
from simulators.faults import FaultError, send_control
from tests.serial_helpers import Recorder, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[1]
CLOSED_LOCKED = (Position.CLOSED, True)


def leaf_is(state: LeafState | None, position: Position, locked: bool | None = None) -> bool:
    return state is not None and state.position == position and (locked is None or state.locked == locked)


@pytest.fixture
def sim():
    with DoorSimulator(profile="zero-latency", watchdog_ms=1000) as s:
        yield s


@pytest.fixture
def door(sim):
    events = Recorder()
    d = DoorController(sim.path, emit=events, watchdog_ms=1000, ack_timeout_s=0.1, travel_timeout_s=0.5)
    d.events = events
    d.start()
    wait_for(lambda: d.state.entry is not None and d.state.beams is not None, what="initial STATUS")
    yield d
    d.stop()


def of_type(events: Recorder, cls):
    return [e for e in events.snapshot() if isinstance(e, cls)]


def test_connect_resyncs_full_state(door):
    s = door.state
    assert s.link_up and isinstance(of_type(door.events, LinkUp)[0], LinkUp)
    assert leaf_is(s.entry, Position.CLOSED, True) and leaf_is(s.exit, Position.CLOSED, True)
    assert s.beams == Beams(8, 0, 0) and not s.emergency and s.power == Power.MAINS


def test_open_close_lock_each_leaf(door, sim):
    for leaf in Leaf:
        door.open(leaf)
        wait_for(lambda: leaf_is(door.state.leaf(leaf), Position.OPEN, False), what=f"{leaf.name} open")
        door.close(leaf)
        wait_for(lambda: leaf_is(door.state.leaf(leaf), Position.CLOSED, False), what=f"{leaf.name} closed")
        door.lock(leaf)
        wait_for(lambda: leaf_is(door.state.leaf(leaf), Position.CLOSED, True), what=f"{leaf.name} locked")
    exit_states = [(e.position, e.locked) for e in of_type(door.events, LeafState) if e.leaf == Leaf.EXIT]
    assert exit_states[-5:] == [(Position.OPENING, False), (Position.OPEN, False), (Position.CLOSING, False),
                                (Position.CLOSED, False), (Position.CLOSED, True)]
    assert sim.status().exit == LeafState(Leaf.EXIT, Position.CLOSED, True)
    assert door.stats()["crc"] == 0 and not of_type(door.events, LeafFault)


def test_realistic_travel_takes_1_to_1_5_s():
    with DoorSimulator(profile="realistic", seed=3) as sim:
        events = Recorder()
        d = DoorController(sim.path, emit=events)
        d.start()
        try:
            wait_for(lambda: d.state.entry is not None, what="status")
            d.open(Leaf.ENTRY)
            wait_for(lambda: leaf_is(d.state.entry, Position.OPENING), what="opening")
            started = time.monotonic()
            wait_for(lambda: leaf_is(d.state.entry, Position.OPEN), what="open")
            assert 0.95 <= time.monotonic() - started <= 1.65
        finally:
            d.stop()


def test_beams_tamper_power_reach_the_driver(door, sim):
    sim.set_beams(0b0011, 0b0001)
    sim.set_tamper(True)
    sim.set_power("battery")
    wait_for(lambda: door.state.power == Power.BATTERY, what="power event")
    assert door.state.beams == Beams(8, 0b0011, 0b0001) and door.state.tamper
    assert Tamper(True) in door.events.snapshot() and PowerState(Power.BATTERY) in door.events.snapshot()
    with pytest.raises(ValueError):
        sim.set_beams(1 << 8)


def test_emergency_opens_both_leaves_whatever_the_host_commands(door, sim):
    door.lock(Leaf.ENTRY)
    # The lock must land before the alarm, or it is one more (correct) rejection than counted below.
    wait_for(lambda: sim.status().entry.locked, what="entry locked")
    sim.set_emergency(True)
    wait_for(lambda: leaf_is(door.state.entry, Position.OPEN) and leaf_is(door.state.exit, Position.OPEN),
             what="both open")
    for leaf in Leaf:
        door.close(leaf)
        door.lock(leaf)
    wait_for(lambda: len(door.state.rejects) == 4, what="4 rejects")
    assert {r.reason for r in door.state.rejects} == {RejectReason.EMERGENCY}
    assert {r.command for r in door.state.rejects} == {T.CLOSE, T.LOCK}
    door.stop()  # the host goes silent: the watchdog must not close a fire exit
    wait_for(lambda: time.monotonic() - sim.last_keepalive > 1.2, timeout=3, what="watchdog period to pass")
    st = sim.status()
    assert st.emergency and st.entry.position == st.exit.position == Position.OPEN
    assert not sim.watchdog_trips and Emergency(True) in door.events.snapshot()


def test_watchdog_locks_when_host_stops_and_refuses_open_until_keepalive(sim):
    d = DoorController(sim.path, watchdog_ms=300)
    d.start()
    wait_for(lambda: d.state.entry is not None, what="status")
    d.open(Leaf.EXIT)
    wait_for(lambda: sim.status().exit.position == Position.OPEN, what="exit open")
    d.stop()
    stopped = time.monotonic()
    wait_for(lambda: sim.watchdog_trips, timeout=2, what="watchdog trip")
    assert sim.watchdog_trips[0] - sim.last_keepalive <= 0.3 + 0.1  # period plus scheduling jitter of the 10 ms tick
    wait_for(lambda: sim.status().exit == LeafState(Leaf.EXIT, Position.CLOSED, True), what="exit locked")
    assert time.monotonic() - stopped < 1.0
    events = Recorder()
    d2 = DoorController(sim.path, emit=events, watchdog_ms=300)
    d2.start()
    try:
        wait_for(lambda: Watchdog(False) in events.snapshot(), what="watchdog re-armed by keep-alive")
        d2.open(Leaf.EXIT)
        wait_for(lambda: leaf_is(d2.state.exit, Position.OPEN), what="open after re-arm")
    finally:
        d2.stop()


def test_open_refused_while_watchdog_tripped(sim):
    sim.watchdog_s = 0.05
    wait_for(lambda: sim.watchdog_trips, what="trip with no host")
    host, reply = Link(), Recorder()
    with serial.serial_for_url(sim.path, timeout=0.05) as port:
        port.write(b"".join(e.data for e in host.send(Open(Leaf.ENTRY))))
        def got_reject():
            for ev in host.feed(port.read(256)):
                reply(ev)
            return Reject(T.OPEN, RejectReason.WATCHDOG) in reply.snapshot()
        wait_for(got_reject, what="REJECT(WATCHDOG)")
    assert sim.status().entry.locked


def test_obstruction_reverses_a_closing_leaf_then_recloses():
    with DoorSimulator(profile=Profile(0.4, 0.4)) as sim:
        events = Recorder()
        d = DoorController(sim.path, emit=events, travel_timeout_s=5)
        d.start()
        try:
            wait_for(lambda: d.state.exit is not None, what="status")
            d.open(Leaf.EXIT)
            wait_for(lambda: leaf_is(d.state.exit, Position.OPEN), what="open")
            d.close(Leaf.EXIT)
            wait_for(lambda: leaf_is(d.state.exit, Position.CLOSING), what="closing")
            sim.set_obstruction("exit", True)
            wait_for(lambda: leaf_is(d.state.exit, Position.OPEN), what="reversed to open")
            seq = [e.position for e in of_type(events, LeafState) if e.leaf == Leaf.EXIT]
            i = seq.index(Position.OBSTRUCTED)
            assert seq[i - 1] == Position.CLOSING and seq[i + 1:i + 3] == [Position.OPENING, Position.OPEN]
            sim.set_obstruction("exit", False)
            wait_for(lambda: leaf_is(d.state.exit, Position.CLOSED), what="closed again once clear")
        finally:
            d.stop()


def test_killed_host_mid_passage_controller_locks_within_watchdog_period():
    watchdog_ms = 400
    with DoorSimulator(profile="zero-latency", watchdog_ms=watchdog_ms) as sim:
        host = subprocess.Popen(
            [sys.executable, "-m", "drivers.door", sim.path, "--watchdog-ms", str(watchdog_ms), "--open", "entry"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            wait_for(lambda: sim.status().entry.position == Position.OPEN, timeout=10, what="host opened entry")
            assert sim.status().exit.locked  # mid-passage: traveller let in, exit still locked
            trips_before = len(sim.watchdog_trips)  # a slow host start may have tripped it at power-up
            os.kill(host.pid, signal.SIGKILL)
            killed = time.monotonic()
            host.wait(5)
            wait_for(lambda: sim.status().entry == LeafState(Leaf.ENTRY, Position.CLOSED, True),
                     timeout=2, what="entry closed and locked by the controller")
            assert time.monotonic() - killed <= watchdog_ms / 1000 + 0.15
            assert len(sim.watchdog_trips) == trips_before + 1 and sim.status().watchdog_tripped
            assert sim.watchdog_trips[-1] - sim.last_keepalive <= watchdog_ms / 1000 + 0.1
        finally:
            host.kill()
            host.wait(5)
        first = json.loads(host.stdout.readline())
        assert first["type"] == "LinkUp"
        host.stdout.close()


# ------------------------------------------------------------------- faults

def test_fault_garbage_is_counted_and_survived(door, sim):
    for _ in range(5):
        sim.faults.inject("garbage", nbytes=50)
    wait_for(lambda: door.stats()["garbage_bytes"] > 0, what="garbage counted")
    door.open(Leaf.ENTRY)
    wait_for(lambda: leaf_is(door.state.entry, Position.OPEN), what="works after garbage")
    assert door.state.link_up


def test_fault_corrupt_crc_triggers_nak_and_retransmission(door, sim):
    sim.faults.inject("corrupt_crc", count=3)
    sim.set_tamper(True)
    wait_for(lambda: door.state.tamper, what="tamper delivered despite damaged frames")
    assert door.stats()["crc"] >= 1 and sim.faults.active("corrupt_crc") is None
    assert sim.wire.errors["nak_received"] >= 1


def test_fault_dropped_frames_are_retransmitted(door, sim):
    sim.faults.inject("drop", count=2)  # the controller's next two frames (ACKs/events) vanish
    door.open(Leaf.EXIT)
    wait_for(lambda: leaf_is(door.state.exit, Position.OPEN), what="open despite drops")
    assert sim.frames_dropped == 2
    assert door.stats()["retransmissions"] + sim.wire.errors["retransmissions"] >= 1


def test_fault_slow_responses_tolerated_then_timeouts_reported_without_hang(door, sim):
    sim.faults.inject("slow", delay_s=0.03)
    door.open(Leaf.ENTRY)
    wait_for(lambda: leaf_is(door.state.entry, Position.OPEN), what="open while slow")
    sim.faults.inject("slow", delay_s=0.8)  # longer than ack timeout x attempts (0.1 x 4)
    door.lock(Leaf.EXIT)
    wait_for(lambda: of_type(door.events, CommandFailed), timeout=5, what="command reported failed")
    sim.faults.clear("slow")
    wait_for(lambda: door.link.idle, timeout=10, what="queue drained")
    door.close(Leaf.ENTRY)
    wait_for(lambda: leaf_is(door.state.entry, Position.CLOSED), timeout=5, what="recovered")


def test_fault_stuck_leaf_reported_as_leaf_fault(door, sim):
    sim.faults.inject("stuck_leaf", leaf="exit")
    door.open(Leaf.EXIT)
    (fault,) = wait_for(lambda: of_type(door.events, LeafFault), what="leaf fault")
    assert fault == LeafFault(Leaf.EXIT, Position.OPEN, 0.5)
    assert sim.status().exit.position == Position.CLOSED
    sim.faults.clear("stuck_leaf")
    wait_for(lambda: leaf_is(door.state.exit, Position.OPEN), what="moves once freed")


def test_fault_unplug_reports_down_at_once_and_resyncs_on_return(door, sim):
    sim.faults.inject("unplug")
    (down,) = wait_for(lambda: of_type(door.events, LinkDown), timeout=0.5, what="link down reported at once")
    assert down.reason.startswith("read failed")
    assert not door.state.link_up
    with pytest.raises(Exception, match="link is down"):
        door.open(Leaf.ENTRY)
    sim.set_emergency(True)  # happens while the host cannot hear it
    wait_for(lambda: sim.status().entry.position == Position.OPEN, what="controller acts alone")
    sim.faults.clear("unplug")
    wait_for(lambda: door.state.emergency and leaf_is(door.state.entry, Position.OPEN), timeout=5,
             what="state resynchronised after replug")
    assert len(of_type(door.events, LinkUp)) == 2


def test_driver_refuses_a_watchdog_period_the_protocol_cannot_carry():
    with pytest.raises(ValueError, match="watchdog_ms"):
        DoorController("/dev/null", watchdog_ms=70_000)


def test_unknown_fault_is_a_typed_error(sim):
    with pytest.raises(FaultError):
        sim.faults.inject("meltdown")
    with pytest.raises(FaultError):
        sim.faults.inject("stuck_leaf", leaf="middle")


def test_simulator_cli_and_control_socket(tmp_path):
    link, sock = tmp_path / "door.tty", str(tmp_path / "door.sock")
    proc = subprocess.Popen([sys.executable, "-m", "simulators.door", "--link", str(link), "--control", sock,
                             "--profile", "zero-latency", "--fault", "slow:delay_s=0.01"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        where = json.loads(proc.stdout.readline())
        assert where == {"device": "door", "port": str(link), "control": sock}
        out = subprocess.run([sys.executable, "-m", "simulators.faults", sock, "do", "emergency", "on=true"],
                             cwd=ROOT, capture_output=True, text=True, timeout=20)
        assert json.loads(out.stdout)["ok"], out.stderr
        status = wait_for(lambda: (s := send_control(sock, {"do": "status"})["result"])["entry"]["position"] == "open"
                          and s, what="emergency via control socket")
        assert status["emergency"] is True
        assert send_control(sock, {"fault": "drop", "count": 2}) == {"ok": True, "active": {"count": 2}}
        assert send_control(sock, {"do": "walk", "walkers": [{"tall": False}, {"delay": 3}], "step_s": 0.01})["ok"]
        bad = send_control(sock, {"fault": "meltdown"})
        assert not bad["ok"] and "not supported" in bad["error"]
        assert not send_control(sock, {"do": "power", "state": "nuclear"})["ok"]
        assert not send_control(sock, {"do": "walk", "walkers": [{"legs": 3}]})["ok"]
        assert send_control(sock, {"do": "status"})["ok"]  # still serving after bad requests
    finally:
        stop_process(proc)
    assert not link.exists()


# ------------------------------------------------------- presence over the wire

def presence_of(walkers, step_s=0.01):
    """Walk people through the simulated mantrap; run the driver's BEAMS events through the tracker."""
    with DoorSimulator(profile="zero-latency") as sim:
        events = Recorder()
        d = DoorController(sim.path, emit=events)
        d.start()
        try:
            wait_for(lambda: d.state.beams is not None, what="status")
            states = beam_walk(walkers)
            changes = sum(a != b for a, b in zip([(0, 0)] + states, states))
            sim.walk(states, step_s)
            wait_for(lambda: len(of_type(events, Beams)) == changes, what="walk played")
            assert of_type(events, Beams)[-1] == Beams(8, 0, 0)
        finally:
            d.stop()
    tracker = PresenceTracker()
    return [tracker.update(i * step_s, b.low, b.high) for i, b in enumerate(of_type(events, Beams))]


def test_single_traveller_walk_over_the_wire():
    out = presence_of([Walker()])
    assert max(p.occupancy for p in out) == 1 and not any(p.tailgating for p in out)
    assert Direction.TOWARD_EXIT in {b.direction for p in out for b in p.bodies}
    assert out[-1].occupancy == 0


def test_tailgater_over_the_wire():
    out = presence_of([Walker(), Walker(delay=3)])
    assert max(p.occupancy for p in out) == 2 and any(p.tailgating for p in out)


def test_child_over_the_wire():
    out = presence_of([Walker(tall=False)])
    assert max(p.children for p in out) == 1


def test_driver_events_reach_gate_logic_on_the_reactor_loop(sim):
    """In the gate, events cross from the reader thread to the event loop via reactor.call_from_thread."""
    reactor = Reactor()
    seen_in_loop = []

    async def main():
        opened = asyncio.Event()

        def on_event(ev):
            seen_in_loop.append(reactor.in_loop())
            if isinstance(ev, LeafState) and ev.leaf == Leaf.ENTRY and ev.position == Position.OPEN:
                opened.set()

        door = DoorController(sim.path, emit=lambda ev: reactor.call_from_thread(on_event, ev))
        door.start()
        try:
            while door.state.entry is None:
                await asyncio.sleep(0.01)
            door.open(Leaf.ENTRY)
            await asyncio.wait_for(opened.wait(), 5)
        finally:
            await reactor.run_blocking(door.stop)

    asyncio.run(reactor.run(main))
    assert seen_in_loop and all(seen_in_loop)


def test_sequence_wraps_over_the_wire_and_config_builds_the_driver(sim):
    from drivers.door.config import DoorConfig

    events = Recorder()
    d = DoorController.from_config(DoorConfig(port=sim.path, watchdog_ms=2000), door_travel_s=3.0, emit=events)
    assert d.watchdog_ms == 2000 and d.travel_timeout_s == 3.0
    d.start()
    try:
        wait_for(lambda: d.state.entry is not None, what="status")
        for batch in range(6):  # 300 > 256 frames each way: both sequence counters wrap
            for _ in range(50):
                d.query_status()
            wait_for(lambda: len(of_type(events, Status)) >= 51 + 50 * batch, what=f"answers to batch {batch}")
        wait_for(lambda: d.link.idle and sim.wire.idle, what="both links idle")
        # One answer per query: retransmissions caused by late ACKs are recognised across the wrap.
        assert len(of_type(events, Status)) == 301 and d.stats()["send_failed"] == 0
    finally:
        d.stop()


@pytest.mark.parametrize("emergency", [False, True])
def test_a_gate_driver_locks_both_leaves_as_it_stops_unless_the_emergency_input_holds_them(sim, emergency):
    d = DoorController(sim.path, lock_on_stop=True, travel_timeout_s=0.5)
    d.start()
    wait_for(lambda: d.state.exit is not None, what="initial STATUS")
    d.open(Leaf.EXIT)
    wait_for(lambda: leaf_is(d.state.exit, Position.OPEN), what="exit open")
    if emergency:
        sim.set_emergency(True)
        wait_for(lambda: d.state.emergency, what="emergency seen")
    t0 = time.monotonic()
    d.stop()
    stopped_in = time.monotonic() - t0
    st = sim.status()
    if emergency:
        assert st.exit.position == st.entry.position == Position.OPEN and not d.state.rejects
    else:  # the LOCK commands were acknowledged before stop() returned, well before the watchdog
        wait_for(lambda: sim.status().exit.locked and sim.status().entry.locked, timeout=0.5, what="both locked")
        assert stopped_in < 1.0 and not sim.watchdog_trips  # locked by the driver, not by the watchdog
    status = d.status()
    assert status.name == "door" and status.stats["send_failed"] == 0


def test_component_contract_self_check_asks_the_controller(door, sim):
    check = door.self_check()
    assert check.ok and check.detail.endswith("link up"), check
    sim.faults.inject("unplug", duration_s=1.0)
    wait_for(lambda: not door.transport.connected, what="link down")
    check = door.self_check()
    assert not check.ok and "link is down" in check.detail
    assert not door.status().healthy and "link down" in door.status().detail
