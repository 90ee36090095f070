"""Room tasks at the edges: created inside an alerting transaction, escalated by the tick, listed and
closed through the REST API, and published to the monitoring room's live stream as kind ``task``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from emon.errors import NotFound
from emon.hub import Hub
from emon.storage import tasks as store
from emon.storage.lease import Fence
from emon.storage.postgres import Database
from emon.tasks import model
from emon.tasks.model import Task


class TaskService:
    def __init__(self, db: Database, hub: Hub, *, escalate_s: float) -> None:
        self.db = db
        self.hub = hub
        self.escalate_s = escalate_s

    async def create(self, conn: store.Conn, task: Task, now: datetime) -> Task | None:
        """Store ``task`` in the caller's transaction; None when it already existed. Publish after commit
        with :meth:`published`."""
        return task if await store.insert(conn, task, now) else None

    def published(self, tasks: list[Task]) -> None:
        for task in tasks:
            self.hub.publish("task", task.to_json())

    async def tick(self, now: datetime, fence: Fence | None = None) -> list[Task]:
        """Escalate every open task past its deadline (one step per tick per task); ``fence``: the lease
        this duty runs under (several instances: the coordinator's), checked in the same transaction."""
        changed: list[Task] = []
        async with self.db.pool.connection() as conn, conn.transaction():
            if fence is not None:
                await fence.check(conn)
            for task in await store.due(conn, now):
                new = model.escalate(task, now, self.escalate_s)
                if new is None:
                    continue
                await store.update(
                    conn,
                    new,
                    "system",
                    "escalated",
                    {
                        "level": new.escalation_level,
                        "priority": new.priority.value,
                        "overdue_since": task.deadline.isoformat(),
                    },
                    now,
                )
                changed.append(new)
        self.published(changed)
        return changed

    async def list(
        self, *, state: str | None = None, case_id: str | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        async with self.db.pool.connection() as conn:
            return [t.to_json() for t in await store.search(conn, state=state, case_id=case_id, kind=kind)]

    async def get(self, task_id: str) -> dict[str, Any]:
        async with self.db.pool.connection() as conn:
            task = await store.get(conn, _uuid(task_id))
            if task is None:
                raise NotFound(f"task {task_id}")
            return {**task.to_json(), "history": await store.task_history(conn, task.task_id)}

    async def done(self, task_id: str, who: str, note: str, now: datetime) -> dict[str, Any]:
        async with self.db.pool.connection() as conn, conn.transaction():
            task = await store.get(conn, _uuid(task_id), lock=True)
            if task is None:
                raise NotFound(f"task {task_id}")
            new = model.done(task, who, note, now)
            await store.update(conn, new, who, "done", {"note": note}, now)
        self.published([new])
        return new.to_json()


def _uuid(task_id: str) -> str:
    try:
        return str(uuid.UUID(task_id))
    except ValueError as exc:
        raise NotFound(f"task {task_id}") from exc
