"""The pool's checkout check: no round trip for a live idle connection, a fresh one for a dead one."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from emon.storage import postgres
from emon.storage.postgres import Database, drop_schema
from tests.harness import PG_URL

pytestmark = pytest.mark.integration


async def test_a_live_idle_connection_is_handed_out_without_a_round_trip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    round_trips = 0
    real = AsyncConnectionPool.check_connection

    async def counted(conn: psycopg.AsyncConnection[object]) -> None:
        nonlocal round_trips
        round_trips += 1
        await real(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counted))
    channel = f"t_check_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(PG_URL) as conn:
        await conn.execute(f"LISTEN {channel}")
        await conn.commit()
        await postgres.check_on_checkout(conn)
        assert round_trips == 0
        # Something waiting on an idle connection's socket (here a notification; a server's goodbye
        # alike): checked the full way.
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as other:
            await other.execute(f"NOTIFY {channel}")
        await asyncio.sleep(0.2)
        await postgres.check_on_checkout(conn)
        assert round_trips == 1


async def test_a_connection_the_server_ended_is_replaced_on_checkout() -> None:
    schema = f"t_check_{uuid.uuid4().hex[:10]}"
    db = Database(PG_URL, schema, min_size=1, max_size=1)
    await db.open()
    try:
        async with db.pool.connection() as conn:
            cur = await conn.execute("SELECT pg_backend_pid()")
            row = await cur.fetchone()
            assert row is not None
            first = row[0]
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as admin:
            await admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        await asyncio.sleep(0.2)  # the server's goodbye reaches the idle connection's socket
        async with db.pool.connection() as conn:  # not the dead one: no error for the caller
            cur = await conn.execute("SELECT pg_backend_pid()")
            row = await cur.fetchone()
            assert row is not None and row[0] != first
    finally:
        await db.close()
        await drop_schema(PG_URL, schema)
