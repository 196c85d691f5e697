"""Presence rules (docs/presence.md) on beam sequences.

A frame is written one character per beam, beam 0 (entry leaf) first:
'.' clear, 'l' low row only (below 120 cm), 'X' both rows.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.presence import (
    Direction, HeightClass, PresenceConfig, PresenceTracker, persons_in, run, segments,
)


def masks(frame: str) -> tuple[int, int]:
    low = sum(1 << i for i, c in enumerate(frame) if c in "lX")
    high = sum(1 << i for i, c in enumerate(frame) if c in "X")
    return low, high


def play(frames: list[str], dt: float = 0.2, config=PresenceConfig()):
    return run([(i * dt, *masks(f)) for i, f in enumerate(frames)], config)


ADULT_WALKS_IN = ["X.......", "XX......", ".XX.....", "..XX....", "...XX...", "....XX..", ".....XX.", "......XX",
                  ".......X", "........"]


def test_segments_and_persons():
    assert segments(0b0110_0111, 8) == [(0, 2), (5, 6)]
    assert segments(0, 8) == [] and segments(0xFF, 8) == [(0, 7)]
    assert persons_in(2, 4, 3) == 1 and persons_in(2, 5, 3) == 2


def test_single_adult_walking_to_exit():
    out = play(ADULT_WALKS_IN)
    assert [p.occupancy for p in out] == [1] * 9 + [0]
    assert not any(p.tailgating for p in out)
    mid = out[5].bodies[0]
    assert mid.direction == Direction.TOWARD_EXIT and mid.height == HeightClass.ADULT
    assert len({b.track for p in out for b in p.bodies}) == 1  # one track all the way


def test_walking_back_toward_entry():
    out = play(list(reversed(ADULT_WALKS_IN[:-1])) + ["........"])
    assert out[4].bodies[0].direction == Direction.TOWARD_ENTRY


def test_turning_back_shows_quickly():
    out = play(["X.......", "XX......", ".XX.....", "..XX....", ".XX.....", "XX......"])
    assert out[3].bodies[0].direction == Direction.TOWARD_EXIT
    assert out[5].bodies[0].direction == Direction.TOWARD_ENTRY


def test_tailgater_two_bodies_close_together():
    frames = ["X.......", "XX......", ".XX.....", "X.XX....", "XX.XX...", ".XX.XX..", "..XX.XX."]
    out = play(frames)
    assert out[2].tailgating is False
    assert out[3].tailgating and out[3].occupancy == 2
    assert all(p.tailgating for p in out[3:])


def test_tailgater_pressed_against_traveller_is_one_wide_blob():
    out = play(["XX......", "XXX.....", "XXXX....", ".XXXX..."])
    assert out[1].occupancy == 1 and not out[1].tailgating
    assert out[2].occupancy == 2 and out[2].tailgating


def test_two_people_far_apart_counted_but_not_tailgating():
    out = play(["XX....XX"])
    assert out[0].occupancy == 2 and not out[0].tailgating


def test_child_under_120_cm():
    frames = ["l.......", "ll......", ".ll.....", "..ll....", "...ll..."]
    out = play(frames)
    body = out[-1].bodies[0]
    assert body.height == HeightClass.CHILD and out[-1].children == 1 and out[-1].occupancy == 1


def test_adult_with_child_is_tailgating_and_one_child():
    out = play(["X.......", "XX......", "lXX.....", "llXX....", ".ll.XX.."])
    assert out[-1].occupancy == 2 and out[-1].children == 1
    assert {b.height for b in out[-1].bodies} == {HeightClass.ADULT, HeightClass.CHILD}


def test_object_left_behind():
    # The traveller carries a bag (low beams under the body), puts it down at beams 3-4, walks on.
    frames = ["XX......", ".XX.....", "..XXX...", "...lXX..", "...l.XX.", "...l..XX", "...l...X", "...l....",
              "...l....", "...l....", "...l...."]
    out = play(frames, dt=0.5)
    last = out[-1]
    assert last.occupancy == 0 and len(last.objects_left) == 1
    assert (last.objects_left[0].first, last.objects_left[0].last) == (3, 3)
    assert not out[5].objects_left  # not yet: still for less than object_still_s


def test_child_standing_still_at_the_entry_is_not_an_object():
    out = play(["l......."] * 30, dt=0.5)
    assert out[-1].objects_left == () and out[-1].occupancy == 1


def test_empty_and_reset():
    tracker = PresenceTracker()
    tracker.update(0, *masks("XX......"))
    tracker.reset()
    p = tracker.update(1, 0, 0)
    assert p.occupancy == 0 and p.bodies == ()


def test_rejects_masks_beyond_the_array():
    with pytest.raises(ValueError):
        PresenceTracker(PresenceConfig(beams=4)).update(0, 1 << 4, 0)


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), max_size=40))
def test_any_sequence_gives_consistent_counts(states):
    out = run([(i * 0.1, low, high) for i, (low, high) in enumerate(states)])
    for p in out:
        assert p.occupancy == sum(b.persons for b in p.bodies) >= len(p.bodies)
        assert len({b.track for b in p.bodies + p.objects_left}) == len(p.bodies) + len(p.objects_left)
