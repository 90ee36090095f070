"""Leases and fencing on the real PostgreSQL: who may write for the cases, and what a thawed owner can do."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest

from emon.storage.cases import CaseRecords
from emon.storage.lease import EVALUATION, Fence, Fenced, Lease
from emon.storage.postgres import Database, drop_schema
from emon.storage.records import Records
from tests.harness import PG_URL

pytestmark = pytest.mark.integration
TTL_S = 0.5


@contextlib.asynccontextmanager
async def database() -> AsyncIterator[Database]:
    db = Database(PG_URL, f"t_cl_{uuid.uuid4().hex[:10]}")
    await db.open()
    await db.migrate()
    try:
        yield db
    finally:
        await db.close()
        await drop_schema(PG_URL, db.schema)


async def scalar(db: Database, query: str) -> object:
    async with db.pool.connection() as conn:
        cur = await conn.execute(query.encode())
        row = await cur.fetchone()
        return None if row is None else row[0]


async def test_a_lease_is_taken_over_only_once_expired_and_every_takeover_raises_the_epoch() -> None:
    async with database() as db:
        a, b = Lease(db, EVALUATION, "a", TTL_S), Lease(db, EVALUATION, "b", TTL_S)
        assert await a.try_hold() and a.epoch == 1
        assert not await b.try_hold() and b.epoch is None
        assert await a.try_hold() and a.epoch == 1  # renewing keeps the epoch
        await asyncio.sleep(TTL_S + 0.1)
        assert await b.try_hold() and b.epoch == 2
        assert not await a.try_hold() and a.epoch is None
        await b.release()
        assert await a.try_hold() and a.epoch == 3  # a clean release hands over at once


async def test_an_owner_frozen_past_its_lease_has_every_evaluation_write_refused() -> None:
    async with database() as db:
        a, b = Lease(db, EVALUATION, "a", TTL_S), Lease(db, EVALUATION, "b", TTL_S)
        cases_a, cases_b = CaseRecords(db), CaseRecords(db)
        cases_a.fence, cases_b.fence = Fence(a), Fence(b)
        assert await a.try_hold()
        await cases_a.save_evaluation({"case-1": {"by": "a"}}, [])
        await asyncio.sleep(TTL_S + 0.1)  # "a" is frozen: it does not renew
        assert await b.try_hold()
        await cases_b.save_evaluation({"case-1": {"by": "b"}}, [])
        # "a" thaws still believing it holds epoch 1: its writes are refused, nothing of them is stored.
        assert a.epoch == 1
        with pytest.raises(Fenced):
            await cases_a.save_evaluation({"case-1": {"by": "a-thawed"}}, [], watermark=datetime.now(UTC))
        assert await scalar(db, "SELECT state->>'by' FROM eval_state WHERE case_id = 'case-1'") == "b"
        # An expired lease nobody took over does not let a thawed owner write either.
        await asyncio.sleep(TTL_S + 0.1)
        with pytest.raises(Fenced):
            await cases_b.save_evaluation({"case-1": {"by": "b-late"}}, [])
        assert await scalar(db, "SELECT state->>'by' FROM eval_state WHERE case_id = 'case-1'") == "b"


async def test_a_takeover_waits_for_the_fenced_write_in_progress() -> None:
    async with database() as db:
        a, b = Lease(db, EVALUATION, "a", TTL_S), Lease(db, EVALUATION, "b", TTL_S)
        assert await a.try_hold()
        async with db.pool.connection() as conn, conn.transaction():
            await Fence(a).check(conn)
            # A write that passed its fence and is still working when the lease expires.
            writing = asyncio.create_task(conn.execute("SELECT pg_sleep(%s)", (TTL_S + 0.6,)))
            await asyncio.sleep(TTL_S + 0.1)
            takeover = asyncio.create_task(b.try_hold())
            await asyncio.sleep(0.3)
            assert not takeover.done()  # blocked by the write that passed its fence
            await writing
        assert await takeover and b.epoch == 2


async def test_a_cutoff_waits_for_open_storing_transactions() -> None:
    async with database() as db:
        records = Records(db)
        async with db.pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock_shared(hashtext('emon-store:' || current_schema()))"
            )
            cut = asyncio.create_task(records.cutoff())
            await asyncio.sleep(0.3)
            assert not cut.done()
            cur = await conn.execute("SELECT clock_timestamp()")
            row = await cur.fetchone()
            assert row is not None
            stamped = row[0]
        assert await cut > stamped


async def test_an_owner_frozen_inside_a_fenced_write_holds_a_takeover_back_for_at_most_a_lease() -> None:
    async with database() as db:
        a, b = Lease(db, EVALUATION, "a", TTL_S), Lease(db, EVALUATION, "b", TTL_S)
        assert await a.try_hold()
        async with db.pool.connection() as conn:
            await conn.execute("BEGIN")
            await Fence(a).check(conn)  # "a" passed its fence, then froze: its transaction stays open, idle
            started = asyncio.get_running_loop().time()
            await asyncio.sleep(TTL_S + 0.1)
            assert await asyncio.wait_for(b.try_hold(), 5) and b.epoch == 2
            assert asyncio.get_running_loop().time() - started < 3 * TTL_S
            with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):  # ended, not committed
                await conn.execute("SELECT 1")


async def test_a_thawed_coordinator_cannot_escalate_a_room_task() -> None:
    from emon.alerts.types import Priority
    from emon.cluster.coordinator import COORDINATOR
    from emon.hub import Hub
    from emon.storage import tasks as task_store
    from emon.tasks.model import TaskKind, new_task
    from emon.tasks.service import TaskService

    async with database() as db:
        now = datetime.now(UTC)
        task = new_task(TaskKind.INFORM_VICTIM, "case-1", None, Priority.HIGH, now, deadline_s=-60)
        async with db.pool.connection() as conn, conn.transaction():
            assert await task_store.insert(conn, task, now)
        tasks = TaskService(db, Hub(), escalate_s=60)
        frozen, other = Lease(db, COORDINATOR, "a", TTL_S), Lease(db, COORDINATOR, "b", TTL_S)
        assert await frozen.try_hold()
        await asyncio.sleep(TTL_S + 0.1)  # "a" is frozen past its lease; "b" becomes the coordinator
        assert await other.try_hold()
        with pytest.raises(Fenced):
            await tasks.tick(now, Fence(frozen))
        assert await scalar(db, "SELECT escalation_level FROM room_tasks") == 0
        assert [t.escalation_level for t in await tasks.tick(now, Fence(other))] == [1]
