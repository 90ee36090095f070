"""Two ordered stages that take what waits for them together (emon.lanes), on their own."""

from __future__ import annotations

import asyncio

import pytest

from emon.lanes import Lanes


class Recorder:
    """Stages that record each group, the first one waiting at ``gate`` and failing on ``bad`` items."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.first: list[list[int]] = []
        self.second: list[list[int]] = []
        self.bad: set[int] = set()

    async def one(self, group: list[int]) -> None:
        await self.gate.wait()
        self.first.append(list(group))
        if self.bad & set(group):
            raise RuntimeError("refused")

    async def two(self, group: list[int]) -> None:
        await asyncio.sleep(0)
        self.second.append(list(group))


async def _spin() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_items_go_through_both_stages_in_order_and_those_that_waited_go_together() -> None:
    r = Recorder()
    lanes: Lanes[int] = Lanes(r.one, r.two, limit=10)
    r.gate.clear()
    lanes.put(0)
    await _spin()  # the first stage has taken 0 and waits at the gate
    for i in range(1, 5):
        lanes.put(i)
    await _spin()
    assert r.first == [] and lanes.unfinished == 5
    r.gate.set()
    await lanes.settle()
    assert [i for g in r.first for i in g] == list(range(5))
    assert [i for g in r.second for i in g] == list(range(5))
    assert r.first[0] == [0] and r.first[1] == [1, 2, 3, 4]  # the four that waited: one group
    assert lanes.unfinished == 0
    await lanes.close()


async def test_a_group_that_fails_the_first_stage_skips_the_second_and_the_rest_go_on() -> None:
    r = Recorder()
    r.bad = {1}
    lanes: Lanes[int] = Lanes(r.one, r.two, limit=10)
    for i in range(3):
        lanes.put(i)
        await _spin()
    await lanes.settle()
    assert r.first == [[0], [1], [2]] and r.second == [[0], [2]]
    await lanes.close()


async def test_room_waits_while_more_than_limit_are_unfinished() -> None:
    r = Recorder()
    lanes: Lanes[int] = Lanes(r.one, r.two, limit=2)
    r.gate.clear()
    for i in range(3):
        lanes.put(i)
    waiting = asyncio.create_task(lanes.room())
    await _spin()
    assert not waiting.done()
    r.gate.set()
    await asyncio.wait_for(waiting, 1.0)
    await lanes.close()


async def test_groups_are_capped() -> None:
    r = Recorder()
    lanes: Lanes[int] = Lanes(r.one, r.two, limit=100, group=3)
    r.gate.clear()
    lanes.put(0)
    await _spin()
    for i in range(1, 8):
        lanes.put(i)
    r.gate.set()
    await lanes.settle()
    assert [len(g) for g in r.first] == [1, 3, 3, 1]
    await lanes.close()


async def test_closing_drops_what_does_not_finish_in_time() -> None:
    r = Recorder()
    lanes: Lanes[int] = Lanes(r.one, r.two, limit=10)
    r.gate.clear()
    lanes.put(1)
    await lanes.close(within_s=0.05)
    assert lanes.unfinished == 0 and r.second == []
    await lanes.settle()  # returns at once


async def test_a_stage_cancelled_from_within_fails_its_group_only() -> None:
    r = Recorder()

    async def one(group: list[int]) -> None:
        if group == [1]:
            raise asyncio.CancelledError  # e.g. an inner timeout's cancellation escaping the stage
        await r.one(group)

    lanes: Lanes[int] = Lanes(one, r.two, limit=10)
    for i in range(3):
        lanes.put(i)
        await _spin()
    await lanes.settle()
    assert r.second == [[0], [2]] and lanes.dead is None
    await lanes.close()


async def test_a_loop_that_dies_is_reported_to_whoever_waits_not_waited_for_for_ever() -> None:
    r = Recorder()
    lanes: Lanes[int] = Lanes(r.one, r.two, limit=1)
    r.gate.clear()
    lanes.put(0)
    await _spin()
    lanes._loops[0].cancel()  # not by close(): the lane is gone with an item in it
    await _spin()
    with pytest.raises(RuntimeError, match="ended"):
        await asyncio.wait_for(lanes.settle(), 1.0)
    with pytest.raises(RuntimeError, match="ended"):
        lanes.put(1)
    await lanes.close()  # still closes


async def test_a_first_stage_may_pass_on_part_of_its_group() -> None:
    r = Recorder()

    async def odd_only(group: list[int]) -> list[int]:
        return [i for i in group if i % 2]

    lanes: Lanes[int] = Lanes(odd_only, r.two, limit=10)
    for i in range(5):
        lanes.put(i)
    await lanes.settle()
    assert [i for g in r.second for i in g] == [1, 3] and lanes.unfinished == 0
    await lanes.close()


def test_limit_and_group_are_positive() -> None:
    r = Recorder()
    with pytest.raises(ValueError, match="at least 1"):
        Lanes(r.one, r.two, limit=0)
