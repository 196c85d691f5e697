"""What the console asks of the passage controller, on the gate's loop: take the lane out between
passages (maintenance, an officer's closure), give it back, release a refused traveller, test a leaf,
read the sensors. The passage machine (gate/passage.py) stays the authority: every change here is
one of its events, and what it refuses is refused here (`Refused`), with the reason.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from drivers.door.protocol import Leaf, Position
from statemachine.exceptions import TransitionNotAllowed

POLL_S = 0.05
# A passage is under way in these lane states: taking the lane out waits for it to end.
IN_PASSAGE = ("reading_document", "entering", "confirming_occupancy", "face", "finger", "deciding", "exiting",
              "exit_clear", "returning", "entry_attention", "exit_attention", "releasing")
OUT_OF_USE = ("idle", "out_of_service", "recovering")   # where the lane may be taken out at once


class Refused(Exception):
    """The lane (its machine, its guards, the interlock) refuses what was asked; the message says why."""


Progress = Callable[[str], Awaitable[None]]


class LaneOps:
    def __init__(self, controller, *, wait_s: float):
        self.c = controller
        self.wait_s = wait_s

    @property
    def state(self) -> str:
        return self.c.machine.state

    async def _between_passages(self, take: Callable[[], bool], what: str, progress: Progress) -> None:
        """Run `take` (which changes the lane and says whether it could) once no passage is in
        progress; meanwhile no new document is taken. Refused when the lane is in another mode, or
        still busy after `wait_s`."""
        if take():
            return
        if self.state not in IN_PASSAGE:
            raise Refused(f"not from lane state {self.state}")
        await progress(f"waiting for the passage in progress to end ({self.state}); no new traveller is taken")
        self.c.hold_documents += 1
        try:
            deadline = time.monotonic() + self.wait_s
            while not take():
                if self.state not in IN_PASSAGE:
                    raise Refused(f"{what}: not from lane state {self.state}")
                if time.monotonic() > deadline:
                    raise Refused(f"{what}: the lane is still busy ({self.state}) after {self.wait_s:g} s; nothing changed")
                await asyncio.sleep(POLL_S)
        finally:
            self.c.hold_documents -= 1

    # -- technician ------------------------------------------------------------------------
    async def maintenance(self, on: bool, actor: str, progress: Progress) -> dict:
        if on:
            if self.state == "maintenance":
                raise Refused("already in maintenance")
            await self._between_passages(lambda: self.c.set_maintenance(True, actor), "maintenance", progress)
        elif not self.c.set_maintenance(False, actor):
            raise Refused(f"not in maintenance (lane state {self.state})")
        return {"state": self.state}

    async def test_door(self, leaf: Leaf) -> dict:
        """Open one leaf and lock it again, timing both, as the door controller reports them. The
        other leaf must be reported closed and locked first (the interlock, which the door
        controller's firmware enforces too)."""
        other = Leaf.EXIT if leaf == Leaf.ENTRY else Leaf.ENTRY
        name, other_name = leaf.name.lower(), other.name.lower()
        if self.state != "maintenance":
            raise Refused("only in maintenance")
        if self.c.door_test is not None:
            raise Refused(f"the {self.c.door_test.name.lower()} leaf is being tested")
        if not (self.c.exit_secured() if other == Leaf.EXIT else self.c.entry_secured()):
            raise Refused(f"interlock: the {other_name} leaf is not reported closed and locked")
        travel = 2 * self.c.cfg.timeouts.door_travel_s

        def reported(position: Position, locked: bool) -> bool:
            s = self.c.leaves[leaf]
            return s is not None and s.position == position and s.locked == locked

        t0 = time.monotonic()
        self.c.set_door_test(leaf)
        try:
            opened = await _until(lambda: reported(Position.OPEN, False) or self.state != "maintenance", travel)
            opened = opened and self.state == "maintenance"
            t_open = time.monotonic() - t0
        finally:
            self.c.set_door_test(None)
        t1 = time.monotonic()
        locked = await _until(lambda: reported(Position.CLOSED, True), travel)
        result = {"leaf": name, "opened": opened, "open_s": round(t_open, 2) if opened else None,
                  "locked": locked, "lock_s": round(time.monotonic() - t1, 2) if locked else None,
                  "interlock": f"{other_name} leaf reported locked"}
        result["passed"] = opened and locked
        return result

    def sensors(self) -> dict:
        door = self.c.dev.door.state
        beams = door.beams
        p = self.c.last_presence

        def leaf(s) -> str:
            return "unknown" if s is None else f"{s.position.name.lower()} {'locked' if s.locked else 'unlocked'}"

        return {"entry": leaf(self.c.leaves[Leaf.ENTRY]), "exit": leaf(self.c.leaves[Leaf.EXIT]),
                "beams": None if beams is None else {"count": beams.count, "low": beams.low, "high": beams.high},
                "occupancy": None if p is None else p.occupancy,
                "objects": None if p is None else len(p.objects_left),
                "emergency": door.emergency, "tamper": door.tamper, "power": door.power.name.lower(),
                "link": "up" if door.link_up else "down"}

    # -- officer -----------------------------------------------------------------------------
    async def close(self, progress: Progress) -> dict:
        def take() -> bool:
            if self.state not in OUT_OF_USE:
                return False
            self.c.machine.send("lane_closed")
            return True

        if self.state == "closed":
            raise Refused("the lane is closed already")
        await self._between_passages(take, "lane close", progress)
        return {"state": self.state}

    def open(self) -> dict:
        if self.state != "closed":
            raise Refused(f"the lane is not closed by an officer (lane state {self.state})")
        self.c.machine.send("lane_opened")
        return {"state": self.state}

    def release(self) -> dict:
        """Open the exit for the traveller refused in the mantrap, whom an officer cleared by hand."""
        passage = self.c.refused_inside
        if passage is None or self.state not in ("returning", "entry_attention"):
            raise Refused(f"no refused traveller waiting in the mantrap (lane state {self.state})")
        if self.c.occupancy() != 1:
            raise Refused(f"{self.c.occupancy()} persons in the mantrap: one traveller is released at a time")
        try:
            self.c.officer_release()
        except TransitionNotAllowed as exc:
            raise Refused(f"the passage machine refuses: {exc}") from None
        return {"passage_id": passage, "state": self.state}


async def _until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True
