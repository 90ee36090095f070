"""A task cancelled while it takes a connection from emon's pool is cancelled — never carries on.

psycopg-pool before 3.3.1 caught ``CancelledError`` in the connection check it runs on every checkout
(emon's pool checks, so that a connection that died with the server is not handed out), put the
connection back and tried again (psycopg issue 1401): the cancel was lost, and a service loop that was
told to stop went on — a cluster test's teardown hung in CI. Cancelled at every moment of a checkout,
each task must end cancelled.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from emon.storage.live import LiveState
from emon.storage.postgres import Database, drop_schema
from tests.harness import PG_URL
from tests.storage.helpers import REDIS_URL

pytestmark = pytest.mark.integration


async def _checkout(db: Database) -> None:
    async with db.pool.connection() as conn:
        await conn.execute("SELECT 1")


async def test_a_cancel_during_a_checkout_is_never_swallowed() -> None:
    schema = f"t_cancel_{uuid.uuid4().hex[:10]}"
    db = Database(PG_URL, schema)
    await db.open()
    try:
        # The cancel lands at every step of the checkout.
        cancelled, swallowed = await _cancel_at_every_step(lambda: _checkout(db), 300, 0.0001)
        assert cancelled > 20  # the cancels did land while checking out
        assert swallowed == 0
        await _checkout(db)  # and the pool still serves
    finally:
        await db.close()
        await drop_schema(PG_URL, schema)


async def test_a_cancel_during_a_redis_command_is_never_swallowed() -> None:
    """redis-py sends every command under ``asyncio.wait_for`` (emon sets a socket timeout): on Python
    3.11 that lost cancels too, until emon put 3.12's ``wait_for`` in its place."""
    live = LiveState.from_url(REDIS_URL, f"t-cancel-{uuid.uuid4().hex[:10]}")
    try:
        cancelled, swallowed = await _cancel_at_every_step(lambda: live.latest("tag-1"), 600, 0.00005)
        assert cancelled > 20
        assert swallowed == 0
        assert await live.latest("tag-1") is None
    finally:
        await live.close()


async def _cancel_at_every_step(
    make: Callable[[], Coroutine[Any, Any, object]], rounds: int, step_s: float
) -> tuple[int, int]:
    """Start ``make()`` ``rounds`` times and cancel it after 0, 1, … 29 ``step_s``; (cancelled, swallowed):
    how often the task ended cancelled, and how often it ran on to its end although cancelled."""
    swallowed = cancelled = 0
    for i in range(rounds):
        task = asyncio.create_task(make())
        await asyncio.sleep((i % 30) * step_s)
        if task.done():
            continue
        task.cancel()
        try:
            await task
            swallowed += 1
        except asyncio.CancelledError:
            cancelled += 1
    return cancelled, swallowed
