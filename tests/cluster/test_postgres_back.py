"""Storing resumes within 2 s of PostgreSQL coming back (a private server, stopped and started)."""

from __future__ import annotations

import asyncio
import time

import pytest

from emon.storage.postgres import Database
from tests.storage.private_pg import PrivatePostgres

pytestmark = pytest.mark.integration
OUTAGE_S = 8.0  # the pool's own doubling delay (1, 2, 4, 8 s) would resume ~7 s late after this


async def usable(db: Database) -> bool:
    try:
        async with db.pool.connection(timeout=0.5) as conn:
            await conn.execute("SELECT 1")
        return True
    except Exception:
        return False


async def usable_waiting(db: Database) -> bool:
    async with db.pool.connection() as conn:
        await conn.execute("SELECT 1")
    return True


@pytest.mark.timeout(60)
async def test_the_pool_is_usable_again_within_two_seconds_of_postgresql_coming_back() -> None:
    with PrivatePostgres() as pg:
        db = Database(pg.url, "t_back")
        await db.open()
        try:
            assert await usable(db)
            pg.stop()
            started = time.monotonic()
            while time.monotonic() - started < OUTAGE_S:  # the service keeps trying, as the pipeline does
                assert not await usable(db)
                await asyncio.sleep(0.2)
            # As the pipeline does: one request that waits for a connection (the pool's own timeout).
            waiting = asyncio.create_task(usable_waiting(db))
            await asyncio.sleep(0.5)
            pg.start()
            back = time.monotonic()
            assert await waiting
            assert time.monotonic() - back < 2.0, "storing did not resume within 2 s"
        finally:
            await db.close()
