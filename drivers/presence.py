"""Presence sensing from the mantrap's beam array (rules: docs/presence.md).

Input: successive beam states (the door controller's BEAMS events): two rows
of N beams, beam 0 at the entry leaf, beam N-1 at the exit leaf; `low` at knee
height, `high` at 120 cm.  Output after every state: a `Presence` with the
occupancy count, each tracked body with its walking direction and height
class, tailgating, and objects left behind.

Sans-IO and deterministic: `PresenceTracker.update(t, low, high)` with the
time in seconds; no threads, no clock.
"""
from __future__ import annotations

import enum
import itertools
import math
from dataclasses import dataclass, field


class Direction(enum.Enum):
    TOWARD_EXIT = "toward_exit"
    TOWARD_ENTRY = "toward_entry"
    STILL = "still"


class HeightClass(enum.Enum):
    ADULT = "adult"  # broke the 120 cm row at least once
    CHILD = "child"  # moved through the mantrap without ever breaking the 120 cm row
    OBJECT = "object"  # low, never moved, appeared away from both leaves, stayed


@dataclass(frozen=True)
class PresenceConfig:
    beams: int = 8
    max_body_beams: int = 3  # one person spans at most this many adjacent beams
    tailgate_gap_beams: int = 1  # bodies this close (clear beams between them) are "close together"
    object_still_s: float = 3.0


@dataclass(frozen=True)
class Body:
    track: int
    first: int  # span of interrupted beams, inclusive
    last: int
    persons: int  # bodies in this blob: a blob wider than max_body_beams is two people pressed together
    direction: Direction
    height: HeightClass
    origin: float  # the beam (centre of the span) where this body first appeared: 0 entry side, N-1 exit side


@dataclass(frozen=True)
class Presence:
    t: float
    occupancy: int  # persons in the mantrap (objects not counted)
    bodies: tuple[Body, ...]
    tailgating: bool
    objects_left: tuple[Body, ...]

    @property
    def children(self) -> int:
        return sum(b.persons for b in self.bodies if b.height == HeightClass.CHILD)


def segments(mask: int, count: int) -> list[tuple[int, int]]:
    """Maximal runs of set bits: 0b0110_0111 -> [(0, 2), (5, 6)]."""
    runs, start = [], None
    for i in range(count + 1):
        on = i < count and bool(mask >> i & 1)
        if on and start is None:
            start = i
        elif not on and start is not None:
            runs.append((start, i - 1))
            start = None
    return runs


def persons_in(first: int, last: int, max_body_beams: int) -> int:
    return math.ceil((last - first + 1) / max_body_beams)


@dataclass
class _Track:
    id: int
    born_t: float
    born_centre: float
    born_at_leaf: bool
    first: int
    last: int
    high_seen: bool
    moved: bool = False
    still_since: float = 0.0
    history: list[float] = field(default_factory=list)

    @property
    def centre(self) -> float:
        return (self.first + self.last) / 2


class PresenceTracker:
    def __init__(self, config: PresenceConfig = PresenceConfig()):
        self.config = config
        self._tracks: list[_Track] = []
        self._ids = itertools.count(1)

    def reset(self) -> None:
        self._tracks.clear()

    def update(self, t: float, low: int, high: int) -> Presence:
        n = self.config.beams
        if (low | high) >> n or low < 0 or high < 0:
            raise ValueError(f"beam masks use bits beyond {n} beams")
        blobs = segments(low | high, n)
        self._tracks = self._associate(t, blobs, high)
        bodies = [self._body(tr, t) for tr in self._tracks]
        persons = [b for b in bodies if b.height != HeightClass.OBJECT]
        objects = tuple(b for b in bodies if b.height == HeightClass.OBJECT)
        return Presence(t, sum(b.persons for b in persons), tuple(persons), self._tailgating(persons), objects)

    # -- rules ---------------------------------------------------------------
    def _associate(self, t: float, blobs: list[tuple[int, int]], high: int) -> list[_Track]:
        """Each blob continues the track it overlaps (touching counts: one beam per step).

        A track split into several blobs continues with the blob that breaks the
        high row (the person), else the widest; the rest are new tracks born where
        they are (an object put down, a second person stepping apart). Blobs that
        merge keep the oldest track.
        """
        n = self.config.beams
        claims: dict[int, list[tuple[int, int]]] = {}
        owner: dict[tuple[int, int], _Track] = {}
        for blob in blobs:
            near = [tr for tr in self._tracks if tr.first - 1 <= blob[1] and blob[0] <= tr.last + 1]
            if near:
                tr = min(near, key=lambda x: x.id)
                claims.setdefault(tr.id, []).append(blob)
        for tr in self._tracks:
            mine = claims.get(tr.id, [])
            if mine:
                best = max(mine, key=lambda b: (_has_high(b, high), b[1] - b[0]))
                owner[best] = tr
        out = []
        for blob in blobs:
            has_high = _has_high(blob, high)
            tr = owner.get(blob)
            if tr is None:
                centre = (blob[0] + blob[1]) / 2
                tr = _Track(next(self._ids), t, centre, blob[0] == 0 or blob[1] == n - 1, *blob, has_high,
                            still_since=t)
            elif (tr.first, tr.last) != blob:
                tr.first, tr.last = blob
                tr.still_since = t
                tr.moved = tr.moved or abs(tr.centre - tr.born_centre) >= 1
            tr.high_seen = tr.high_seen or has_high
            tr.history = (tr.history + [tr.centre])[-4:]
            out.append(tr)
        return out

    def _body(self, tr: _Track, t: float) -> Body:
        c = self.config
        if tr.high_seen:
            height = HeightClass.ADULT
        elif not tr.moved and not tr.born_at_leaf and t - tr.still_since >= c.object_still_s:
            height = HeightClass.OBJECT
        else:
            height = HeightClass.CHILD
        return Body(tr.id, tr.first, tr.last, persons_in(tr.first, tr.last, c.max_body_beams),
                    _direction(tr), height, tr.born_centre)

    def _tailgating(self, persons: list[Body]) -> bool:
        if any(b.persons > 1 for b in persons):
            return True
        spans = sorted((b.first, b.last) for b in persons)
        return any(nxt[0] - prev[1] - 1 <= self.config.tailgate_gap_beams for prev, nxt in zip(spans, spans[1:]))


def _has_high(blob: tuple[int, int], high: int) -> bool:
    return any(high >> i & 1 for i in range(blob[0], blob[1] + 1))


def _direction(tr: _Track) -> Direction:
    # Net movement over the track's last four states, so turning back shows at once.
    delta = tr.history[-1] - tr.history[0]
    if delta >= 0.5:
        return Direction.TOWARD_EXIT
    if delta <= -0.5:
        return Direction.TOWARD_ENTRY
    return Direction.STILL


def run(states, config: PresenceConfig = PresenceConfig()) -> list[Presence]:
    """Pure helper: apply a whole sequence of (t, low, high) states."""
    tracker = PresenceTracker(config)
    return [tracker.update(t, low, high) for t, low, high in states]


__all__ = ["Body", "Direction", "HeightClass", "Presence", "PresenceConfig", "PresenceTracker", "persons_in",
           "run", "segments"]
