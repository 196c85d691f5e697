"""The component contract: what the gate's event loop knows of a device driver or a store.

Every driver implements it: `start` spawns the threads that own its port (non-blocking), `stop`
leaves the device safe within bounded time, `self_check` may block for a few seconds (the reactor
runs it in a worker thread) and `status` is a cheap snapshot (health, one line of detail and the
driver's counters) for diagnostics and the monitoring platform.

Drivers reach gate logic through one path: an `EventSink`, called from the driver's own thread
with a typed event (a frozen dataclass). In the gate the sink is `reactor.call_from_thread`
bound to the controller's handler; in tests it is often a list's `append`. Blocking operations
(capture a fingerprint, wait for a frame, read a chip) are ordinary bounded calls made from
worker threads (`reactor.run_blocking`), never from the loop.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

EventSink = Callable[[Any], None]  # thread-safe, never blocks: hands one typed event to gate logic


def discard(event: Any) -> None:
    """The sink of a driver nobody listens to (tools, benchmarks)."""


@dataclass(frozen=True)
class LinkUp:
    """A driver's event: its device is (re)connected."""


@dataclass(frozen=True)
class LinkDown:
    """A driver's event: its device is gone, and why."""
    reason: str


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ComponentStatus:
    """A snapshot: is the device usable, one line saying why, and its counters."""
    name: str
    healthy: bool
    detail: str
    stats: dict[str, int] = field(default_factory=dict)


class Component:
    """Start, stop, self-check and status; see the module docstring for the threading rules."""

    name = "component"

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def self_check(self) -> CheckResult:
        status = self.status()
        return CheckResult(self.name, status.healthy, status.detail)

    def status(self) -> ComponentStatus:
        return ComponentStatus(self.name, True, "no status defined")

    def stats(self) -> dict[str, int]:
        """Counters, one flat name -> count mapping per driver (errors, retries, losses, ...);
        drivers that count with a Counter return it, so a count never seen reads as 0."""
        return {}
