"""DoorController: the host side of the door controller (docs/protocols/door.md).

Gate logic calls open/close/lock per leaf and receives typed events through its
`EventSink` (`core.component`): the protocol's own events (LeafState, Beams,
Emergency, Tamper, PowerState, Watchdog, Status, Reject) plus LinkUp, LinkDown,
CommandFailed and LeafFault.

The reader thread that owns the port decodes frames and writes their ACKs at
once; keep-alives go out every quarter of the watchdog period from a ticker
thread that also drives retransmission, so no acknowledgement waits on the
event loop.  If this process dies, the keep-alives stop and the controller
closes and locks both leaves on its own.  A keep-alive proves more than the
ticker thread: it goes out only while the `alive()` callable the owner passes
(the gate: its event loop's heartbeat is fresh and its controller task runs)
says so; while it says no, the keep-alives are withheld and the controller
locks both leaves within its watchdog period.
On every (re)connection the driver sends HELLO (answered by STATUS) and KEEPALIVE,
so its view of the door is rebuilt from the controller, never assumed.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.door.protocol import (
    Beams, Close, Emergency, Hello, KeepAlive, Leaf, LeafState, Link, Lock, Message, Open, Position, Power,
    PowerState, QueryStatus, Reject, SendFailed, Status, Tamper, Transmit, Undecodable, Watchdog,
    encode_message,
)
from core import logs
from core.component import CheckResult, Component, ComponentStatus, EventSink, LinkDown, LinkUp, discard
from core.errors import DeviceError
from drivers.transport import SerialTransport

log = logs.get("door")


@dataclass(frozen=True)
class CommandFailed:
    """The controller never acknowledged a command (after all retries)."""
    command: Message
    attempts: int


@dataclass(frozen=True)
class LeafFault:
    """A leaf did not reach the commanded position in time (stuck, jammed, motor fault)."""
    leaf: Leaf
    expected: Position
    timeout_s: float


@dataclass
class DoorState:
    link_up: bool = False
    entry: LeafState | None = None
    exit: LeafState | None = None
    beams: Beams | None = None
    emergency: bool = False
    tamper: bool = False
    power: Power = Power.MAINS
    watchdog_tripped: bool = False
    rejects: list[Reject] = field(default_factory=list)

    def leaf(self, leaf: Leaf) -> LeafState | None:
        return self.entry if leaf == Leaf.ENTRY else self.exit

    def closed_and_locked(self, leaf: Leaf) -> bool:
        """The controller last reported this leaf closed, still and locked (what it reported, not
        what the host commanded)."""
        s = self.leaf(leaf)
        return s is not None and s.position == Position.CLOSED and s.locked

    def may_open(self, leaf: Leaf) -> bool:
        """The controller's interlock would accept OPEN of `leaf` now, by the last reports: the other
        leaf is closed and locked, or the emergency input is on."""
        return self.emergency or self.closed_and_locked(Leaf.EXIT if leaf == Leaf.ENTRY else Leaf.ENTRY)


class DoorController(Component):
    name = "door"

    def __init__(self, url: str, *, emit: EventSink = discard, watchdog_ms: int = 1000,
                 baudrate: int = 115200, ack_timeout_s: float = 0.1, max_retries: int = 3,
                 travel_timeout_s: float = 3.0, tick_s: float = 0.01, lock_on_stop: bool = False,
                 alive: Callable[[], bool] | None = None):
        """`alive`: asked by the ticker thread before each keep-alive (and every tick while it says no);
        keep-alives go out only while it returns true. It must be quick and thread-safe; an exception
        counts as "not alive". Default: always alive (the keep-alive then proves only that this process
        and its ticker thread run)."""
        if not 1 <= watchdog_ms <= 0xFFFF:
            raise ValueError(f"watchdog_ms {watchdog_ms} out of the protocol's range 1..65535")
        self.emit = emit
        self.watchdog_ms = watchdog_ms
        self.travel_timeout_s = travel_timeout_s
        self.tick_s = tick_s
        self.lock_on_stop = lock_on_stop
        self.alive = alive
        self.keepalive_withheld = False  # True while alive() says no and the watchdog is left to starve
        self._withheld_since = 0.0
        self._alive_lock = threading.Lock()
        self.state = DoorState()
        self.link = Link(ack_timeout_s=ack_timeout_s, max_retries=max_retries)  # thread-safe: reader, ticker, callers
        self._status_seen = threading.Event()
        self.transport = SerialTransport(url, self.link, self._on_link_events, self._on_port,
                                         baudrate=baudrate, name="door")
        self.counters: Counter[str] = Counter()
        self._expect: dict[Leaf, tuple[Position, bool, float, int]] = {}  # leaf -> (position, locked, deadline, command)
        self._expect_lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    @classmethod
    def from_config(cls, cfg, door_travel_s: float, **kw) -> DoorController:
        """From `devices.door` (drivers.door.config.DoorConfig) and `timeouts.door_travel_s`."""
        return cls(cfg.port, watchdog_ms=cfg.watchdog_ms, baudrate=cfg.baudrate, travel_timeout_s=door_travel_s, **kw)

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self.transport.start()
        self._ticker = threading.Thread(target=self._tick_loop, name="door-ticker", daemon=True)
        self._ticker.start()

    def stop(self) -> None:
        if self.lock_on_stop:
            self._lock_both()
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        self.transport.stop()

    def _lock_both(self, timeout_s: float = 1.0) -> None:
        """Leave both leaves closed and locked (the controller's watchdog would, a period later),
        unless the emergency input holds them open."""
        if self.state.emergency:
            return
        for leaf in (Leaf.ENTRY, Leaf.EXIT):
            try:
                self.lock(leaf)
            except DeviceError as exc:  # link down: the controller's watchdog locks on its own
                log.warning("door_lock_on_stop_failed", leaf=leaf.name, error=str(exc))
                return
        deadline = time.monotonic() + timeout_s
        while not self.link.idle and time.monotonic() < deadline:
            time.sleep(self.tick_s)

    def stats(self) -> Counter[str]:
        """Wire errors (garbage, CRC, retransmissions, ...) plus driver-level ones."""
        return self.link.errors + self.counters + Counter(port_losses=self.transport.stats.losses)

    def status(self) -> ComponentStatus:
        s = self.state
        problems = [p for p, on in (("link down", not s.link_up), ("emergency", s.emergency),
                                    ("tamper", s.tamper), ("watchdog tripped", s.watchdog_tripped),
                                    ("keep-alive withheld", self.keepalive_withheld)) if on]
        return ComponentStatus(self.name, not problems, f"{self.transport.url}: {', '.join(problems) or 'link up'}",
                               self.stats())

    def self_check(self, timeout_s: float = 2.0) -> CheckResult:
        """Ask the controller for its full status and wait for the answer."""
        self._status_seen.clear()
        try:
            self.query_status()
        except DeviceError as exc:
            return CheckResult(self.name, False, str(exc))
        if not self._status_seen.wait(timeout_s):
            return CheckResult(self.name, False, f"{self.transport.url}: no STATUS within {timeout_s}s")
        status = self.status()
        return CheckResult(self.name, status.healthy, status.detail)

    # -- commands --------------------------------------------------------------------
    def open(self, leaf: Leaf) -> None:
        self._command(Open(Leaf(leaf)), expect=(Position.OPEN, False))

    def close(self, leaf: Leaf) -> None:
        self._command(Close(Leaf(leaf)), expect=(Position.CLOSED, False))

    def lock(self, leaf: Leaf) -> None:
        """Close the leaf and engage its lock."""
        self._command(Lock(Leaf(leaf)), expect=(Position.CLOSED, True))

    def query_status(self) -> None:
        self._command(QueryStatus())

    def _command(self, msg: Message, expect: tuple[Position, bool] | None = None) -> None:
        if not self.transport.connected:
            raise DeviceError(f"door controller link is down ({self.transport.url}); cannot send {type(msg).__name__}")
        if expect is not None:
            with self._expect_lock:
                self._expect[msg.leaf] = (*expect, time.monotonic() + self.travel_timeout_s, encode_message(msg)[0])
        self._write(self.link.send(msg))

    # -- wire -> state -----------------------------------------------------------------
    def _write(self, events) -> None:
        """Write Transmit events now; hand everything else to gate logic."""
        rest = []
        for ev in events:
            if isinstance(ev, Transmit):
                try:
                    self.transport.write(ev.data)
                except DeviceError as exc:
                    self.counters["write_failed"] += 1
                    log.warning("door_write_failed", error=str(exc))
            else:
                rest.append(ev)
        if rest:
            self._on_link_events(rest)

    def _on_port(self, up: bool, reason: str) -> None:
        self.state.link_up = up
        if up:  # the transport has already reset the link's decoder and duplicate filter
            self._emit(LinkUp())
            self._write(self.link.send(Hello()))  # answered with a full STATUS
            self._feed_watchdog()
        else:
            self.link.abandon()
            with self._expect_lock:
                self._expect.clear()
            self._emit(LinkDown(reason))

    def _on_link_events(self, events) -> None:
        for ev in events:
            match ev:
                case Transmit():
                    self._write([ev])
                    continue
                case Undecodable(error=error):
                    self.counters["undecodable"] += 1
                    log.warning("door_undecodable", error=error)
                    continue
                case SendFailed(message=msg, attempts=n):
                    log.error("door_command_failed", command=type(msg).__name__, attempts=n)
                    ev = CommandFailed(msg, n)
                case LeafState():
                    self._set_leaf(ev)
                case Status():
                    self._set_leaf(ev.entry)
                    self._set_leaf(ev.exit)
                    s = self.state
                    s.beams, s.emergency, s.tamper, s.power, s.watchdog_tripped = (
                        ev.beams, ev.emergency, ev.tamper, ev.power, ev.watchdog_tripped)
                    self._status_seen.set()
                case Beams():
                    self.state.beams = ev
                case Emergency(active=a):
                    self.state.emergency = a
                case Tamper(active=a):
                    self.state.tamper = a
                case PowerState(state=p):
                    self.state.power = p
                case Watchdog(tripped=t):
                    self.state.watchdog_tripped = t
                    if t:
                        log.warning("door_watchdog_tripped")
                case Reject():
                    self.state.rejects.append(ev)
                    with self._expect_lock:  # a refused motion will not happen: no LeafFault for it
                        for leaf in [k for k, want in self._expect.items() if want[3] == ev.command]:
                            del self._expect[leaf]
                    log.warning("door_command_rejected", command=ev.command, reason=ev.reason.name)
            self._emit(ev)

    def _set_leaf(self, s: LeafState) -> None:
        if s.leaf == Leaf.ENTRY:
            self.state.entry = s
        else:
            self.state.exit = s
        with self._expect_lock:
            want = self._expect.get(s.leaf)
            if want is not None and (s.position, s.locked) == want[:2]:
                del self._expect[s.leaf]

    def _emit(self, ev) -> None:
        try:
            self.emit(ev)
        except Exception as exc:  # a consumer's bug must not stop the door driver
            self.counters["handler_errors"] += 1
            log.error("door_event_handler_failed", event=type(ev).__name__, error=f"{type(exc).__name__}: {exc}")

    # -- ticker thread -------------------------------------------------------------------
    def _tick_loop(self) -> None:
        next_keepalive = 0.0
        while not self._stop.wait(self.tick_s):
            try:
                next_keepalive = self._tick(next_keepalive)
            except Exception as exc:  # the keep-alive thread must outlive any bug in one tick
                self.counters["tick_errors"] += 1
                log.error("door_tick_failed", error=f"{type(exc).__name__}: {exc}")

    def _feed_watchdog(self) -> bool:
        """Send KEEPALIVE if `alive()` says the owner's control loop is alive; else withhold it.
        A change between the two is logged once and counted (`keepalive_withheld`, per episode). On
        the way back the controller's status is queried after the KEEPALIVE: its watchdog may have
        tripped and locked the leaves meanwhile, and the view is rebuilt from its answer."""
        error = None
        try:
            ok = True if self.alive is None else bool(self.alive())
        except Exception as exc:  # a broken liveness check proves nothing: treat it as not alive
            ok, error = False, f"{type(exc).__name__}: {exc}"
        with self._alive_lock:  # the reader thread (link up) and the ticker both get here
            resumed = ok and self.keepalive_withheld
            if not ok and not self.keepalive_withheld:
                self._withheld_since = time.monotonic()
                self.counters["keepalive_withheld"] += 1
                log.error("door_keepalive_withheld", watchdog_ms=self.watchdog_ms, error=error)
            elif resumed:
                log.warning("door_keepalive_resumed", withheld_s=round(time.monotonic() - self._withheld_since, 3))
            self.keepalive_withheld = not ok
        if ok:
            self._write(self.link.send(KeepAlive(self.watchdog_ms)))
        if resumed:
            self._write(self.link.send(QueryStatus()))
        return ok

    def _tick(self, next_keepalive: float) -> float:
        now = time.monotonic()
        if not self.transport.connected:
            return next_keepalive
        self._write(self.link.tick())
        if now >= next_keepalive and self._feed_watchdog():  # while withheld, asked again every tick
            next_keepalive = now + self.watchdog_ms / 4000
        with self._expect_lock:
            late = [(leaf, want[0]) for leaf, want in self._expect.items() if now > want[2]]
            for leaf, _ in late:
                del self._expect[leaf]
        for leaf, pos in late:
            self.counters["leaf_faults"] += 1
            self._emit(LeafFault(leaf, pos, self.travel_timeout_s))
        return next_keepalive
