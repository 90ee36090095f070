"""Room tasks written in one statement on the real PostgreSQL: in order, each with its "created" history
row, a replay (or a second task with the same id in the same statement) creating nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emon.alerts.types import Priority
from emon.storage import tasks as store
from emon.storage.postgres import Database
from emon.tasks.model import Task, TaskKind, new_task

pytestmark = pytest.mark.integration
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALERTS = [f"00000000-0000-5000-8000-{n:012d}" for n in (1, 2, 3)]


def _task(alert_id: str, round_: int) -> Task:
    return new_task(
        TaskKind.INFORM_VICTIM,
        "case-1",
        alert_id,
        Priority.HIGH,
        T,
        300.0,
        {"round": round_},
        subject=alert_id,
    )


async def test_tasks_in_one_statement_are_created_once_in_order_with_their_history(db: Database) -> None:
    first, second, third = (_task(a, 1) for a in ALERTS)
    again = _task(ALERTS[0], 2)  # the same id as ``first``: after it, a replay
    async with db.pool.connection() as conn, conn.transaction():
        assert await store.insert(conn, second, T)  # stored before: the batch replays it
        sent = await store.send_insert(conn, [third, first, second, again], T)
        assert await store.created(sent) == {third.task_id, first.task_id}
        assert not await store.insert(conn, first, T)
    async with db.pool.connection() as conn:
        cur = await conn.execute("SELECT task_id::text, action, detail FROM room_task_history ORDER BY id")
        assert await cur.fetchall() == [
            (second.task_id, "created", {"round": 1}),
            (third.task_id, "created", {"round": 1}),
            (first.task_id, "created", {"round": 1}),
        ]
        stored = {t.task_id: t for t in await store.search(conn)}
    assert stored == {t.task_id: t for t in (first, second, third)}
