"""The door controller's own safety, over real ptys (docs/protocols/door.md, controller rules 6-7 and
the host's keep-alive rules): the firmware interlock, a keep-alive that stops when the owner's control
loop is not alive, and no LeafFault for a leaf already where it was commanded."""
from __future__ import annotations

import threading
import time

import pytest
from structlog.testing import capture_logs

from drivers.door.driver import DoorController, LeafFault
from drivers.door.protocol import T, Leaf, LeafState, Position, Reject, RejectReason, Status, Watchdog
from simulators.door import DoorSimulator
from tests.serial_helpers import Recorder, wait_for

LOCKED = {leaf: LeafState(leaf, Position.CLOSED, True) for leaf in Leaf}


def of_type(events: Recorder, cls):
    return [e for e in events.snapshot() if isinstance(e, cls)]


def leaf_is(state: LeafState | None, position: Position, locked: bool | None = None) -> bool:
    return state is not None and state.position == position and (locked is None or state.locked == locked)


class BothUnlockedWatch:
    """Samples the controller's own view every 2 ms; records any moment with both leaves unlocked
    outside emergency (the interlock's invariant)."""

    def __init__(self, sim: DoorSimulator):
        self.sim, self.violations, self.samples = sim, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.002):
            st = self.sim.status()
            self.samples += 1
            if not st.emergency and not st.entry.locked and not st.exit.locked:
                self.violations.append(st)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2)


def start_door(sim: DoorSimulator, **kw) -> DoorController:
    events = Recorder()
    kw.setdefault("travel_timeout_s", 0.5)
    d = DoorController(sim.path, emit=events, **kw)
    d.events = events
    d.start()
    wait_for(lambda: d.state.entry is not None and d.state.exit is not None, what="initial STATUS")
    return d


@pytest.fixture
def sim():
    with DoorSimulator(profile="zero-latency", watchdog_ms=1000) as s:
        yield s


@pytest.fixture
def door(sim):
    d = start_door(sim)
    yield d
    d.stop()


def rejected(door, command: int, reason: RejectReason, n: int = 1):
    return wait_for(lambda: door.state.rejects.count(Reject(command, reason)) >= n,
                    what=f"REJECT {T(command).name} {reason.name}")


# ------------------------------------------------------------------ interlock

def test_open_exit_while_entry_open_is_refused_then_allowed_once_entry_is_locked(door, sim):
    with BothUnlockedWatch(sim) as watch:
        door.open(Leaf.ENTRY)
        wait_for(lambda: leaf_is(door.state.entry, Position.OPEN), what="entry open")
        assert not door.state.may_open(Leaf.EXIT)
        door.open(Leaf.EXIT)
        rejected(door, T.OPEN, RejectReason.INTERLOCK)
        time.sleep(0.1)  # a refused OPEN must not move the leaf at all
        assert sim.status().exit == LOCKED[Leaf.EXIT] and door.state.exit == LOCKED[Leaf.EXIT]
        door.lock(Leaf.ENTRY)
        wait_for(lambda: door.state.closed_and_locked(Leaf.ENTRY), what="entry locked")
        assert door.state.may_open(Leaf.EXIT)
        door.open(Leaf.EXIT)
        wait_for(lambda: leaf_is(door.state.exit, Position.OPEN, False), what="exit open")
        door.open(Leaf.ENTRY)  # and the other way round
        rejected(door, T.OPEN, RejectReason.INTERLOCK, n=2)
        time.sleep(0.1)
        assert sim.status().entry == LOCKED[Leaf.ENTRY]
    assert watch.samples > 50 and not watch.violations
    assert not of_type(door.events, LeafFault)  # a refused motion is not a stuck leaf
    assert [r.reason for r in door.state.rejects] == [RejectReason.INTERLOCK] * 2


def test_close_is_an_unlock_on_a_locked_leaf_and_is_refused_while_the_other_is_unlocked(door, sim):
    door.open(Leaf.ENTRY)
    wait_for(lambda: leaf_is(door.state.entry, Position.OPEN), what="entry open")
    door.close(Leaf.EXIT)  # the exit is locked: CLOSE would release its lock
    rejected(door, T.CLOSE, RejectReason.INTERLOCK)
    time.sleep(0.1)
    assert sim.status().exit == LOCKED[Leaf.EXIT]
    door.close(Leaf.ENTRY)  # closing an unlocked leaf is always allowed
    wait_for(lambda: leaf_is(door.state.entry, Position.CLOSED, False), what="entry closed, unlocked")
    door.open(Leaf.EXIT)  # closed is not enough: the entry's lock is released
    rejected(door, T.OPEN, RejectReason.INTERLOCK)
    door.lock(Leaf.ENTRY)
    wait_for(lambda: door.state.closed_and_locked(Leaf.ENTRY), what="entry locked")
    door.close(Leaf.EXIT)  # with the entry locked, releasing the exit's lock is fine
    wait_for(lambda: leaf_is(door.state.exit, Position.CLOSED, False), what="exit unlocked")
    assert len(door.state.rejects) == 2 and not of_type(door.events, LeafFault)


def test_a_stuck_leaf_with_its_lock_released_blocks_the_other(door, sim):
    sim.faults.inject("stuck_leaf", leaf="exit")
    door.open(Leaf.EXIT)
    wait_for(lambda: leaf_is(door.state.exit, Position.CLOSED, False), what="exit unlocked but not moving")
    door.open(Leaf.ENTRY)
    rejected(door, T.OPEN, RejectReason.INTERLOCK)
    time.sleep(0.1)
    assert sim.status().entry == LOCKED[Leaf.ENTRY]


def test_under_the_emergency_input_both_open_and_after_it_open_waits_for_a_lock(door, sim):
    door.open(Leaf.ENTRY)
    wait_for(lambda: leaf_is(door.state.entry, Position.OPEN), what="entry open")
    sim.set_emergency(True)
    wait_for(lambda: leaf_is(door.state.entry, Position.OPEN) and leaf_is(door.state.exit, Position.OPEN),
             what="both open under emergency")
    for leaf in Leaf:
        door.open(leaf)  # accepted (and confirmed): the interlock is suspended
    time.sleep(0.2)
    assert not door.state.rejects and not of_type(door.events, LeafFault)
    sim.set_emergency(False)
    wait_for(lambda: not door.state.emergency, what="emergency off")
    st = sim.status()
    assert st.entry.position == st.exit.position == Position.OPEN  # left as they were
    door.open(Leaf.ENTRY)
    rejected(door, T.OPEN, RejectReason.INTERLOCK)
    door.lock(Leaf.EXIT)  # locking is never refused
    wait_for(lambda: door.state.closed_and_locked(Leaf.EXIT), what="exit locked")
    door.open(Leaf.ENTRY)
    time.sleep(0.2)
    assert len(door.state.rejects) == 1 and leaf_is(door.state.entry, Position.OPEN)


def test_entry_open_while_the_exit_is_still_locking_is_refused_realistic_travel():
    """The race of issue 9: after a traveller leaves, the exit takes 1.0-1.5 s to lock; the next
    document is accepted within that time and the entry commanded open at once."""
    with DoorSimulator(profile="realistic", seed=5) as sim:
        d = start_door(sim, travel_timeout_s=3.0)
        try:
            with BothUnlockedWatch(sim) as watch:
                d.open(Leaf.EXIT)
                wait_for(lambda: leaf_is(d.state.exit, Position.OPEN), timeout=3, what="exit open")
                d.lock(Leaf.EXIT)
                wait_for(lambda: leaf_is(d.state.exit, Position.CLOSING), what="exit closing")
                commanded = time.monotonic()
                d.open(Leaf.ENTRY)  # the next document, accepted while the exit travels
                rejected(d, T.OPEN, RejectReason.INTERLOCK)
                assert time.monotonic() - commanded < 0.9  # refused at once, long before the exit locks
                assert sim.status().exit.position == Position.CLOSING
                wait_for(lambda: d.state.closed_and_locked(Leaf.EXIT), timeout=3, what="exit locked")
                assert sim.status().entry == LOCKED[Leaf.ENTRY]  # never moved
                assert not [e for e in of_type(d.events, LeafState) if e.leaf == Leaf.ENTRY and not e.locked]
                d.open(Leaf.ENTRY)  # now the exit is confirmed locked
                wait_for(lambda: leaf_is(d.state.entry, Position.OPEN), timeout=3, what="entry open")
            assert not watch.violations
            assert not of_type(d.events, LeafFault)
        finally:
            d.stop()


# ------------------------------------------------------- keep-alive and alive()

def test_keepalive_withheld_while_not_alive_trips_the_watchdog_and_resumes():
    watchdog_ms = 300
    with DoorSimulator(profile="zero-latency", watchdog_ms=watchdog_ms) as sim:
        alive = threading.Event()
        alive.set()
        d = start_door(sim, watchdog_ms=watchdog_ms, alive=alive.is_set)
        try:
            d.open(Leaf.EXIT)
            wait_for(lambda: leaf_is(d.state.exit, Position.OPEN), what="exit open")
            with capture_logs() as logs:
                alive.clear()  # the gate's event loop hangs, or its controller task died
                stopped = time.monotonic()
                wait_for(lambda: sim.watchdog_trips, timeout=2, what="watchdog trip")
                assert sim.watchdog_trips[0] - stopped <= watchdog_ms / 1000 + 0.1
                wait_for(lambda: sim.status().exit == LOCKED[Leaf.EXIT], timeout=1, what="exit locked")
                assert time.monotonic() - stopped <= watchdog_ms / 1000 + 0.3
                assert sim.status().entry == LOCKED[Leaf.ENTRY]
                wait_for(lambda: d.state.watchdog_tripped and d.state.closed_and_locked(Leaf.EXIT),
                         what="the driver hears the trip")
                time.sleep(0.2)  # still withheld: the watchdog stays tripped
                assert len(sim.watchdog_trips) == 1 and sim.watchdog_tripped
                assert d.stats()["keepalive_withheld"] == 1
                status = d.status()
                assert not status.healthy and "keep-alive withheld" in status.detail
                d.open(Leaf.EXIT)  # the controller refuses while tripped
                rejected(d, T.OPEN, RejectReason.WATCHDOG)
                statuses = len(of_type(d.events, Status))
                alive.set()
                wait_for(lambda: Watchdog(False) in d.events.snapshot(), what="re-armed by the resumed keep-alive")
                wait_for(lambda: len(of_type(d.events, Status)) > statuses and not d.state.watchdog_tripped,
                         what="state re-queried after resuming")
            withheld = [e for e in logs if e["event"] == "door_keepalive_withheld"]
            assert len(withheld) == 1 and withheld[0]["log_level"] == "error"  # logged once, not every tick
            assert [e["event"] for e in logs].count("door_keepalive_resumed") == 1
            d.open(Leaf.EXIT)
            wait_for(lambda: leaf_is(d.state.exit, Position.OPEN), what="OPEN accepted again")
            time.sleep(2 * watchdog_ms / 1000)
            assert len(sim.watchdog_trips) == 1 and d.status().healthy  # keep-alives flow again
            assert d.stats()["keepalive_withheld"] == 1
        finally:
            d.stop()


def test_a_failing_alive_check_counts_as_not_alive_and_so_does_one_at_connection():
    def broken():
        raise RuntimeError("heartbeat file unreadable")

    with DoorSimulator(profile="zero-latency", watchdog_ms=300) as sim:
        state = {"check": broken}
        d = start_door(sim, watchdog_ms=300, alive=lambda: state["check"]())
        try:
            wait_for(lambda: sim.watchdog_trips, timeout=2, what="trip: never fed from the start")
            assert d.keepalive_withheld and d.stats()["keepalive_withheld"] == 1
            state["check"] = lambda: True
            wait_for(lambda: not sim.watchdog_tripped and not d.state.watchdog_tripped, what="re-armed")
            d.open(Leaf.ENTRY)
            wait_for(lambda: leaf_is(d.state.entry, Position.OPEN), what="entry open")
        finally:
            d.stop()


def test_default_alive_keeps_feeding(door, sim):
    time.sleep(1.5)
    assert not sim.watchdog_trips and door.stats()["keepalive_withheld"] == 0 and door.status().healthy


# ------------------------------------------- no LeafFault for a leaf in position

def test_locking_a_locked_leaf_is_confirmed_not_a_leaf_fault(door, sim):
    before = len(of_type(door.events, LeafState))
    for _ in range(5):
        door.lock(Leaf.ENTRY)
        door.lock(Leaf.EXIT)
    wait_for(lambda: len(of_type(door.events, LeafState)) - before >= 10, what="10 confirmations")
    time.sleep(door.travel_timeout_s + 0.2)
    assert not of_type(door.events, LeafFault) and not door.state.rejects
    assert set(of_type(door.events, LeafState)[before:]) == {LOCKED[Leaf.ENTRY], LOCKED[Leaf.EXIT]}
    door.open(Leaf.ENTRY)
    wait_for(lambda: leaf_is(door.state.entry, Position.OPEN), what="entry open")
    for _ in range(3):  # the same for OPEN of an open leaf
        door.open(Leaf.ENTRY)
    door.lock(Leaf.ENTRY)
    wait_for(lambda: door.state.closed_and_locked(Leaf.ENTRY), what="entry locked")
    for _ in range(5):  # OPEN then LOCK at once: the leaf moves, or the controller sees no change at all
        door.open(Leaf.EXIT)
        door.lock(Leaf.EXIT)
    wait_for(lambda: door.link.idle, what="commands delivered")
    time.sleep(door.travel_timeout_s + 0.2)
    assert not of_type(door.events, LeafFault) and not door.state.rejects
    assert sim.status().exit == LOCKED[Leaf.EXIT] and door.state.closed_and_locked(Leaf.EXIT)


def test_a_stuck_leaf_still_raises_a_leaf_fault(door, sim):
    sim.faults.inject("stuck_leaf", leaf="exit")
    door.lock(Leaf.EXIT)  # already in position: confirmed, even though the motor is jammed
    door.open(Leaf.EXIT)  # but it cannot move
    (fault,) = wait_for(lambda: of_type(door.events, LeafFault), what="leaf fault")
    assert fault == LeafFault(Leaf.EXIT, Position.OPEN, 0.5)
    door.lock(Leaf.EXIT)  # locks again in place (its lock engages without travel): confirmed
    time.sleep(door.travel_timeout_s + 0.2)
    assert len(of_type(door.events, LeafFault)) == 1 and door.state.closed_and_locked(Leaf.EXIT)
    door.open(Leaf.EXIT)
    time.sleep(door.travel_timeout_s + 0.2)
    assert len(of_type(door.events, LeafFault)) == 2  # every passage's stuck leaf is reported
