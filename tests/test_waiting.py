"""Bounded waits never swallow a cancellation (asyncio.wait_for on Python 3.11 does: CPython gh-86296).

A service loop that waits for its wake-up event with a timeout must stop when cancelled, even when the
event is set in the same moment; before, emon's feed, outbox and resync loops could run on forever and
a clean stop (or a test's teardown) hung.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

import emon
from emon.waiting import within, woken


async def _loop(event: asyncio.Event) -> None:
    while True:
        await woken(event, 0.2)
        event.clear()


async def _library_loop(event: asyncio.Event) -> None:
    """How redis-py and psycopg-pool wait: ``asyncio.wait_for`` itself (replaced when emon is imported)."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), 0.2)
        event.clear()


@pytest.mark.parametrize("loop", [_loop, _library_loop])
@pytest.mark.parametrize("steps", range(5))
async def test_a_loop_woken_as_it_is_cancelled_stops(
    loop: Callable[[asyncio.Event], Coroutine[Any, Any, None]], steps: int
) -> None:
    event = asyncio.Event()
    task = asyncio.create_task(loop(event))
    await asyncio.sleep(0.01)
    event.set()
    for _ in range(steps):  # the cancel lands at every point of the wake-up
        await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=1.0)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert done and task.cancelled(), f"cancel swallowed after {steps} steps"


async def test_woken_tells_a_wake_up_from_a_timeout() -> None:
    event = asyncio.Event()
    assert await woken(event, 0.01) is False
    event.set()
    assert await woken(event, 0.01) is True


async def test_within_bounds_a_wait_and_returns_its_result() -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    with pytest.raises(TimeoutError):
        await within(queue.get(), 0.01)
    queue.put_nowait(7)
    assert await within(queue.get(), 0.01) == 7


async def test_wait_for_keeps_its_contract() -> None:
    assert await asyncio.wait_for(asyncio.sleep(0, "done"), None) == "done"
    assert await asyncio.wait_for(asyncio.sleep(0, "done"), 1) == "done"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.sleep(1), 0.01)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.sleep(1), 0)
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(never, 0)
    assert never.cancelled()


def test_no_module_waits_with_asyncio_wait_for() -> None:
    root = pathlib.Path(emon.__file__).parent
    users = [str(p.relative_to(root)) for p in root.rglob("*.py") if "asyncio.wait_for(" in p.read_text()]
    assert users == []
