"""Room tasks and their history in PostgreSQL: functions over a connection the caller holds a
transaction on, so a task is created in the same transaction as the alert change that asks for it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from emon.alerts.types import Priority
from emon.tasks.model import Task, TaskKind, TaskState

Conn = AsyncConnection[tuple[object, ...]]
Sent = AsyncCursor[tuple[object, ...]]
# Every column of a row, with its type as a JSON document row carries it (:func:`jsonb_to_recordset`).
_TYPES = {
    "task_id": "uuid",
    "kind": "text",
    "case_id": "text",
    "alert_id": "uuid",
    "title": "text",
    "priority": "text",
    "state": "text",
    "created_at": "timestamptz",
    "deadline": "timestamptz",
    "escalation_level": "integer",
    "escalated_at": "timestamptz",
    "done_at": "timestamptz",
    "done_by": "text",
    "note": "text",
    "detail": "jsonb",
}
_COLUMNS = tuple(_TYPES)


def _fields(t: Task) -> dict[str, Any]:
    """A task's columns, as Python values."""
    return {
        "task_id": t.task_id,
        "kind": t.kind.value,
        "case_id": t.case_id,
        "alert_id": t.alert_id,
        "title": t.title,
        "priority": t.priority.value,
        "state": t.state.value,
        "created_at": t.created_at,
        "deadline": t.deadline,
        "escalation_level": t.escalation_level,
        "escalated_at": t.escalated_at,
        "done_at": t.done_at,
        "done_by": t.done_by,
        "note": t.note,
        "detail": t.detail,
    }


def _params(t: Task) -> dict[str, Any]:
    return {**_fields(t), "detail": Jsonb(t.detail)}


def _task(r: dict[str, Any]) -> Task:
    return Task(
        task_id=str(r["task_id"]),
        kind=TaskKind(r["kind"]),
        case_id=r["case_id"],
        alert_id=None if r["alert_id"] is None else str(r["alert_id"]),
        title=r["title"],
        priority=Priority(r["priority"]),
        state=TaskState(r["state"]),
        created_at=r["created_at"],
        deadline=r["deadline"],
        escalation_level=r["escalation_level"],
        escalated_at=r["escalated_at"],
        done_at=r["done_at"],
        done_by=r["done_by"],
        note=r["note"],
        detail=r["detail"],
    )


async def insert(conn: Conn, task: Task, now: datetime) -> bool:
    """Create a task unless one with its id exists (a replay), with its "created" history row; True when
    created. One statement."""
    return bool(await created(await send_insert(conn, [task], now)))


# The tasks and the history rows of those created, in the given order, in one statement of fixed text
# (parsed and planned once per connection); the rows travel as one JSON document.
_INSERT = (
    "WITH t AS (SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS t ("
    + ", ".join(f"{c} {t}" for c, t in _TYPES.items())
    + ", n integer)),"
    " created AS (INSERT INTO room_tasks ("
    + ", ".join(_COLUMNS)
    + ") SELECT "
    + ", ".join(_COLUMNS)
    + " FROM t ORDER BY n ON CONFLICT (task_id) DO NOTHING RETURNING task_id),"
    " logged AS (INSERT INTO room_task_history (task_id, at, actor, action, detail)"
    " SELECT t.task_id, %(now)s, 'system', 'created', t.detail FROM t JOIN created USING (task_id) ORDER BY t.n)"
    " SELECT task_id FROM created"
).encode()


def _row(t: Task, n: int) -> dict[str, Any]:
    """A task as a row of :data:`_INSERT`'s document: :func:`_params` in JSON."""
    row = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in _fields(t).items()}
    row["n"] = n
    return row


async def send_insert(conn: Conn, tasks: Sequence[Task], now: datetime) -> Sent:
    """:func:`insert` of several tasks in one statement, in order, sent (a later task with the id of an
    earlier one is left out: inserted after it, it would have been a replay); in pipeline mode the ids
    of those created (:func:`created`) are read later."""
    first: dict[str, Task] = {}
    for t in tasks:
        first.setdefault(t.task_id, t)
    rows = [_row(t, n) for n, t in enumerate(first.values())]
    return await conn.execute(_INSERT, {"rows": json.dumps(rows), "now": now})


async def created(cur: Sent) -> set[str]:
    """The ids of the tasks a sent :func:`send_insert` created."""
    return {str(r[0]) for r in await cur.fetchall()}


async def update(
    conn: Conn, task: Task, actor: str, action: str, detail: dict[str, Any], now: datetime
) -> None:
    sets = ", ".join(f"{c} = %({c})s" for c in _COLUMNS if c != "task_id")
    await conn.execute(f"UPDATE room_tasks SET {sets} WHERE task_id = %(task_id)s".encode(), _params(task))
    await history(conn, task, actor, action, detail, now)


async def history(
    conn: Conn, task: Task, actor: str, action: str, detail: dict[str, Any], now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO room_task_history (task_id, at, actor, action, detail) VALUES (%s, %s, %s, %s, %s)",
        (task.task_id, now, actor, action, Jsonb(detail)),
    )


async def _tasks(conn: Conn, where: str, params: list[Any], tail: str = "") -> list[Task]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT * FROM room_tasks WHERE {where} {tail}".encode(), params)
        return [_task(r) for r in await cur.fetchall()]


async def get(conn: Conn, task_id: str, *, lock: bool = False) -> Task | None:
    found = await _tasks(conn, "task_id = %s", [task_id], "FOR UPDATE" if lock else "")
    return found[0] if found else None


async def due(conn: Conn, now: datetime) -> list[Task]:
    """Open tasks past their deadline, locked (other ticks skip them)."""
    return await _tasks(
        conn, "state = 'open' AND deadline <= %s", [now], "ORDER BY deadline FOR UPDATE SKIP LOCKED"
    )


async def search(
    conn: Conn,
    *,
    state: str | None = None,
    case_id: str | None = None,
    kind: str | None = None,
    limit: int = 500,
) -> list[Task]:
    where, params = ["TRUE"], []
    for column, value in (("state", state), ("case_id", case_id), ("kind", kind)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    return await _tasks(conn, " AND ".join(where), params, f"ORDER BY deadline LIMIT {int(limit)}")


async def task_history(conn: Conn, task_id: str) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT at, actor, action, detail FROM room_task_history WHERE task_id = %s ORDER BY id",
            (task_id,),
        )
        return [{**r, "at": r["at"].isoformat()} for r in await cur.fetchall()]
