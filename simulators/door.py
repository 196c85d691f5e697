"""Door controller simulator: the controller end of docs/protocols/door.md on a pty.

It models what the real controller board does on its own, whatever the host says:
- leaves travel between closed and open (realistic profile: 1.0-1.5 s per full
  travel, drawn per motion; zero-latency profile: instantaneous);
- watchdog: no KEEPALIVE within the period -> both leaves close and lock;
- interlock: a leaf is opened (or unlocked by CLOSE) only while the other leaf is
  closed and locked, else the command is refused with REJECT(INTERLOCK);
- emergency input (fire alarm): both leaves open and stay open, close/lock
  commands are refused and the watchdog is suspended (fail-safe egress);
- obstruction while closing: report OBSTRUCTED, reverse to open, close again
  once the obstruction is gone if the leaf is still meant to be closed.

Start it from Python (`DoorSimulator(...).start()`, `.path`, `.faults`,
`.set_emergency()`, ...) or as a process:
  python -m simulators.door --link /tmp/door.tty --control /tmp/door.sock --profile realistic
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass

from drivers.door.protocol import (
    T, Beams, Close, Emergency, Hello, KeepAlive, Leaf, LeafState, Link, Lock, Open, Position, Power,
    PowerState, QueryStatus, Reject, RejectReason, SendFailed, Status, Tamper, Transmit, Undecodable, Watchdog,
    encode_message,
)
from simulators.faults import add_simulator_args, run_simulator_cli
from simulators.pty_link import SerialSimulator


@dataclass(frozen=True)
class Profile:
    travel_min_s: float
    travel_max_s: float


PROFILES = {"realistic": Profile(1.0, 1.5), "zero-latency": Profile(0.0, 0.0)}


@dataclass(frozen=True)
class Walker:
    """Someone walking through the mantrap from the entry leaf to the exit leaf."""
    tall: bool = True  # breaks the 120 cm beam row (a child under 120 cm does not)
    width: int = 2  # beams one body covers
    delay: int = 0  # beam steps behind the first walker (a tailgater right behind: width + 1)


def beam_state(walkers: list[Walker], lead_front: int, beams: int) -> tuple[int, int]:
    """(low, high) beam masks with the leading walker's front at beam `lead_front` (beam 0 at the
    entry leaf; negative: still outside; >= beams: gone through the exit). Each walker covers
    `width` beams ending at its front and is `delay` beams behind the leader."""
    low = high = 0
    for w in walkers:
        front = lead_front - w.delay
        for b in range(max(0, front - w.width + 1), min(beams, front + 1)):
            low |= 1 << b
            high |= (1 << b) if w.tall else 0
    return low, high


def beam_walk(walkers: list[Walker], beams: int = 8) -> list[tuple[int, int]]:
    """Beam states (low, high) for people walking in, one beam step per state; the last is all clear."""
    return [beam_state(walkers, step, beams) for step in range(beams + max(w.width + w.delay for w in walkers))]


class SimLeaf:
    def __init__(self, leaf: Leaf):
        self.leaf = leaf
        self.fraction = 0.0  # 0 closed .. 1 open
        self.motion = 0  # +1 opening, -1 closing, 0 still
        self.travel_s = 0.0
        self.want_open = False
        self.want_lock = True  # a controller powers up closed and locked
        self.reported: LeafState | None = None

    @property
    def locked(self) -> bool:
        return self.want_lock and self.fraction == 0.0 and self.motion == 0

    def state(self) -> LeafState:
        if self.motion > 0:
            pos = Position.OPENING
        elif self.motion < 0:
            pos = Position.CLOSING
        else:
            pos = Position.OPEN if self.fraction >= 1.0 else Position.CLOSED if self.fraction <= 0.0 else Position.OBSTRUCTED
        return LeafState(self.leaf, pos, self.locked)


class DoorSimulator(SerialSimulator):
    name = "door"

    def __init__(self, link_path=None, *, beams: int = 8, profile: str | Profile = "realistic",
                 watchdog_ms: int = 1000, ack_timeout_s: float = 0.1, seed: int = 0):
        super().__init__(link_path, seed=seed)
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        self.wire = Link(ack_timeout_s=ack_timeout_s)
        self.leaves = {leaf: SimLeaf(leaf) for leaf in Leaf}
        self.beam_count = beams
        self.beams = Beams(beams, 0, 0)
        self.obstructed = {leaf: False for leaf in Leaf}
        self.emergency = False
        self.tamper = False
        self.power = Power.MAINS
        self.watchdog_s = watchdog_ms / 1000
        self.watchdog_tripped = False
        self.last_keepalive = time.monotonic()
        self.watchdog_trips: list[float] = []  # monotonic times of each trip (tests measure them)
        self.unacknowledged_events = 0
        self._beam_script: list[tuple[float, Beams]] = []
        self._last_tick = time.monotonic()
        self._state_lock = threading.Lock()

    # -- inputs a lane or a test drives ---------------------------------------
    def set_emergency(self, on: bool = True) -> None:
        self.run_in_sim_thread(lambda: self._set_emergency(bool(on)))

    def set_obstruction(self, leaf: str | Leaf, on: bool = True) -> None:
        leaf = _leaf(leaf)
        self.run_in_sim_thread(lambda: self.obstructed.__setitem__(leaf, bool(on)))

    def set_beams(self, low: int, high: int = 0) -> None:
        beams = Beams(self.beam_count, low, high)
        if (low | high) >> self.beam_count or low < 0 or high < 0:
            raise ValueError(f"beam masks must fit {self.beam_count} beams")
        self.run_in_sim_thread(lambda: self._set_beams(beams))

    def walk(self, states: list[tuple[int, int]], step_s: float = 0.15) -> None:
        """Play beam states (e.g. from `beam_walk`) one every `step_s` (1-2 s for a walk through)."""
        for low, high in states:
            if (low | high) >> self.beam_count:
                raise ValueError(f"beam masks must fit {self.beam_count} beams")
        start = time.monotonic()
        script = [(start + i * step_s, Beams(self.beam_count, low, high)) for i, (low, high) in enumerate(states)]
        self.run_in_sim_thread(lambda: self._beam_script.extend(script))

    def set_tamper(self, on: bool = True) -> None:
        self.run_in_sim_thread(lambda: self._set_input("tamper", bool(on), Tamper(bool(on))))

    def set_power(self, state: str | Power) -> None:
        state = Power[state.upper()] if isinstance(state, str) else Power(state)
        self.run_in_sim_thread(lambda: self._set_input("power", state, PowerState(state)))

    def status(self) -> Status:
        """Snapshot of the controller's own view (what STATUS would say now)."""
        with self._state_lock:
            return Status(self.leaves[Leaf.ENTRY].state(), self.leaves[Leaf.EXIT].state(), self.beams,
                          self.emergency, self.tamper, self.power, self.watchdog_tripped)

    def command_table(self):
        return {
            "emergency": lambda on=True: self.set_emergency(on),
            "obstruct": lambda leaf="exit", on=True: self.set_obstruction(leaf, on),
            "beams": lambda low=0, high=0: self.set_beams(low, high),
            "walk": lambda walkers=({},), step_s=0.15: self.walk(
                beam_walk([Walker(**w) for w in walkers], self.beam_count), step_s),
            "tamper": lambda on=True: self.set_tamper(on),
            "power": lambda state="mains": self.set_power(state),
            "status": lambda: _status_dict(self.status()),
        }

    # -- protocol ------------------------------------------------------------------
    def on_bytes(self, data: bytes) -> None:
        self._handle(self.wire.feed(data))

    def corrupt(self, frame: bytes) -> bytes:
        return frame[:-1] + bytes([frame[-1] ^ 0x5A])

    def garbage(self, nbytes: int) -> bytes:
        # Line noise that looks like frame starts, the hard case for resynchronisation.
        noise = bytearray(super().garbage(nbytes))
        for i in range(0, len(noise), 7):
            noise[i] = 0xA5
        return bytes(noise)

    def _emit(self, msg) -> None:
        self._handle(self.wire.send(msg))

    def _handle(self, events) -> None:
        for ev in events:
            match ev:
                case Transmit(data=data):
                    self.send(data)
                case SendFailed():
                    self.unacknowledged_events += 1
                case Undecodable(type=t):
                    reason = RejectReason.BAD_PAYLOAD if t in T._value2member_map_ else RejectReason.UNKNOWN_COMMAND
                    self._emit(Reject(t, reason))
                case _:
                    self._command(ev)

    def _command(self, msg) -> None:
        match msg:
            case Hello() | QueryStatus():
                self._emit(self.status())
            case KeepAlive(period_ms=p):
                self.watchdog_s = p / 1000
                self.last_keepalive = time.monotonic()
                if self.watchdog_tripped:
                    self.watchdog_tripped = False
                    self._emit(Watchdog(False))
            case Open(leaf=leaf):
                if self.watchdog_tripped and not self.emergency:
                    self._emit(Reject(T.OPEN, RejectReason.WATCHDOG))
                    return
                if not self.emergency and not self._closed_and_locked(_other(leaf)):
                    self._emit(Reject(T.OPEN, RejectReason.INTERLOCK))
                    return
                self.leaves[leaf].want_open, self.leaves[leaf].want_lock = True, False
                self._confirm(leaf, Position.OPEN, False)
            case Close(leaf=leaf) | Lock(leaf=leaf):
                command = T.CLOSE if isinstance(msg, Close) else T.LOCK
                if self.emergency:
                    self._emit(Reject(command, RejectReason.EMERGENCY))
                    return
                if command == T.CLOSE and self.leaves[leaf].want_lock and not self._closed_and_locked(_other(leaf)):
                    # CLOSE leaves the lock released: on a locked (or locking) leaf that is an unlock.
                    self._emit(Reject(T.CLOSE, RejectReason.INTERLOCK))
                    return
                self.leaves[leaf].want_open, self.leaves[leaf].want_lock = False, command == T.LOCK
                self._confirm(leaf, Position.CLOSED, command == T.LOCK)
            case _:  # an event type sent to the controller
                self._emit(Reject(encode_message(msg)[0], RejectReason.UNKNOWN_COMMAND))

    def _closed_and_locked(self, leaf: Leaf) -> bool:
        """The interlock's condition, from the leaf's sensors: closed, still, lock engaged (a leaf
        still travelling towards its lock does not count)."""
        return self.leaves[leaf].state() == LeafState(leaf, Position.CLOSED, True)

    def _confirm(self, leaf: Leaf, position: Position, locked: bool) -> None:
        """An accepted command that finds the leaf already where it was commanded changes nothing, so no
        LEAF would follow: report the leaf's state now, so the host's expectation is met by the
        controller's word, not by the host's memory."""
        sim_leaf = self.leaves[leaf]
        state = sim_leaf.state()
        if (state.position, state.locked) == (position, locked):
            sim_leaf.reported = state
            self._emit(state)

    # -- physics and safety ----------------------------------------------------
    def on_tick(self, now: float) -> None:
        dt, self._last_tick = now - self._last_tick, now
        self._handle(self.wire.tick())
        while self._beam_script and self._beam_script[0][0] <= now:
            self._set_beams(self._beam_script.pop(0)[1])
        if not self.emergency and not self.watchdog_tripped and now - self.last_keepalive > self.watchdog_s:
            self._trip_watchdog(now)
        with self._state_lock:
            changes = [self._move(leaf, dt) for leaf in self.leaves.values()]
        for msgs in changes:
            for msg in msgs:
                self._emit(msg)

    def _trip_watchdog(self, now: float) -> None:
        self.watchdog_tripped = True
        self.watchdog_trips.append(now)
        for leaf in self.leaves.values():
            leaf.want_open, leaf.want_lock = False, True
        self._emit(Watchdog(True))

    def _move(self, leaf: SimLeaf, dt: float) -> list:
        out = []
        stuck = self.faults.active("stuck_leaf")
        if stuck is None or stuck["leaf"] != leaf.leaf.name.lower():
            if leaf.motion < 0 and self.obstructed[leaf.leaf]:
                out.append(LeafState(leaf.leaf, Position.OBSTRUCTED, False))
                leaf.motion = +1  # reverse: never push against a person
            elif leaf.motion == 0:
                if leaf.want_open and leaf.fraction < 1.0:
                    self._start(leaf, +1)
                elif not leaf.want_open and leaf.fraction > 0.0 and not self.obstructed[leaf.leaf]:
                    self._start(leaf, -1)
            if leaf.motion:
                step = 1.0 if leaf.travel_s <= 0 else dt / leaf.travel_s
                leaf.fraction = min(1.0, max(0.0, leaf.fraction + leaf.motion * step))
                if leaf.fraction in (0.0, 1.0):
                    self._report(leaf, out)  # the motion itself, even if it took no time
                    leaf.motion = 0
        self._report(leaf, out)
        return out

    def _start(self, leaf: SimLeaf, direction: int) -> None:
        leaf.motion = direction
        leaf.travel_s = self.rng.uniform(self.profile.travel_min_s, self.profile.travel_max_s)

    def _report(self, leaf: SimLeaf, out: list) -> None:
        state = leaf.state()
        if state != leaf.reported:
            leaf.reported = state
            out.append(state)

    def _set_emergency(self, on: bool) -> None:
        if on == self.emergency:
            return
        self.emergency = on
        if on:
            for leaf in self.leaves.values():
                leaf.want_open, leaf.want_lock = True, False
        self._emit(Emergency(on))

    def _set_beams(self, beams: Beams) -> None:
        if beams != self.beams:
            with self._state_lock:
                self.beams = beams
            self._emit(beams)

    def _set_input(self, attr: str, value, msg) -> None:
        if getattr(self, attr) != value:
            setattr(self, attr, value)
            self._emit(msg)


def _other(leaf: Leaf) -> Leaf:
    return Leaf.EXIT if leaf == Leaf.ENTRY else Leaf.ENTRY


def _leaf(leaf: str | Leaf) -> Leaf:
    return Leaf[leaf.upper()] if isinstance(leaf, str) else Leaf(leaf)


def _status_dict(s: Status) -> dict:
    return {
        "entry": {"position": s.entry.position.name.lower(), "locked": s.entry.locked},
        "exit": {"position": s.exit.position.name.lower(), "locked": s.exit.locked},
        "beams": {"count": s.beams.count, "low": s.beams.low, "high": s.beams.high},
        "emergency": s.emergency, "tamper": s.tamper, "power": s.power.name.lower(),
        "watchdog_tripped": s.watchdog_tripped,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.door", description="simulated door controller on a pty")
    add_simulator_args(parser)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="realistic")
    parser.add_argument("--beams", type=int, default=8)
    parser.add_argument("--watchdog-ms", type=int, default=1000)
    args = parser.parse_args(argv)
    sim = DoorSimulator(args.link, beams=args.beams, profile=args.profile, watchdog_ms=args.watchdog_ms, seed=args.seed)
    return run_simulator_cli(sim, args)


if __name__ == "__main__":
    sys.exit(main())
