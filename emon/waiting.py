"""Bounded waits that never swallow a cancellation.

On Python 3.11 ``asyncio.wait_for`` returns the inner result when the task is cancelled in the same
moment the awaited thing completes (CPython gh-86296, fixed in 3.12): a service loop that waits on its
wake-up event that way can go on forever after it was cancelled, and a clean stop hangs. These helpers
use ``asyncio.timeout``, which tells its own timeout from a cancellation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def woken(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``event`` is set or ``timeout_s`` seconds pass; True if it was set."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def within(aw: Awaitable[T], timeout_s: float | None) -> T:
    """``await aw``, raising ``TimeoutError`` after ``timeout_s`` seconds (None: no bound)."""
    async with asyncio.timeout(timeout_s):
        return await aw
