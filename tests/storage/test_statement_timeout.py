"""A wedged statement is cut off (and retried by its caller), while migrations and maintenance are not."""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest

from emon.storage.postgres import _LOCK_ID, Database, drop_schema, unbounded
from tests.harness import PG_URL

pytestmark = pytest.mark.integration


async def test_a_statement_longer_than_the_timeout_is_cut_off_and_maintenance_may_run_long() -> None:
    schema = f"t_stmt_{uuid.uuid4().hex[:10]}"
    db = Database(PG_URL, schema, statement_timeout_s=0.3)
    await db.open()
    try:
        # Migrations run without the bound: they wait for another instance's migrations (the advisory lock,
        # held here for longer than the timeout) and build indexes.
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as other:
            await other.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
            migrating = asyncio.create_task(db.migrate())
            await asyncio.sleep(0.6)
            await other.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
        assert await migrating
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            async with db.pool.connection() as conn:
                await conn.execute("SELECT pg_sleep(5)")
        assert time.monotonic() - started < 2.0
        async with db.pool.connection() as conn, conn.transaction():
            await unbounded(conn)
            await conn.execute("SELECT pg_sleep(0.6)")
        async with db.pool.connection() as conn:  # the lift ended with its transaction
            cur = await conn.execute("SHOW statement_timeout")
            assert (await cur.fetchone()) == ("300ms",)
    finally:
        await db.close()
        await drop_schema(PG_URL, schema)


async def test_the_service_pool_is_bounded_by_default() -> None:
    from emon.runtime import Runtime
    from emon.settings import Settings

    rt = Runtime(Settings.from_env({}, db_schema="t_unused", pg_statement_timeout_s=12.5))
    kwargs = rt.db.pool.kwargs
    assert isinstance(kwargs, dict) and "statement_timeout=12500" in kwargs["options"]
