"""Bounded waits that never swallow a cancellation.

On Python 3.11 ``asyncio.wait_for`` returns the inner result when the task is cancelled in the same
moment the awaited thing completes (CPython gh-86296, fixed in 3.12 by rewriting it on
``asyncio.timeout``): a service loop that waits that way can go on forever after it was told to stop,
and a clean stop hangs. emon's own code waits with the helpers below; the libraries it uses call
``asyncio.wait_for`` themselves (redis-py on every command sent with a socket timeout, psycopg-pool while
a client waits for a connection), so :func:`fix_wait_for` puts Python 3.12's implementation in its place
on 3.11. It is installed when :mod:`emon` is imported.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

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


async def _wait_for(fut: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109 (its signature)
    """``asyncio.wait_for`` as Python 3.12 has it (Lib/asyncio/tasks.py)."""
    if timeout is not None and timeout <= 0:
        task = asyncio.ensure_future(fut)
        if task.done():
            return task.result()
        task.cancel()
        await asyncio.wait([task])
        try:
            return task.result()
        except asyncio.CancelledError as exc:
            raise TimeoutError from exc
    async with asyncio.timeout(timeout):
        return await fut


def fix_wait_for() -> None:
    """On Python 3.11, replace ``asyncio.wait_for`` with :func:`_wait_for` (idempotent)."""
    if sys.version_info < (3, 12):
        module: Any = asyncio
        module.wait_for = _wait_for
        module.tasks.wait_for = _wait_for
