"""REST for room tasks: list (and one with its history), mark done with a note. Who acted is the token's name.

Scoped like alerts: a caller sees (and closes) only the tasks of their units' cases; a task of another
unit's case is a 403 ``out_of_scope``. Every read and every "done" is recorded in the audit log.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from emon.access import Role
from emon.api.deps import runtime
from emon.api.gate import Gate, gate
from emon.case import Case
from emon.errors import InvalidInput, NotFound
from emon.tasks.service import TaskService

router = APIRouter()

READ = gate(Role.PROBATION, Role.POLICE)


class DoneBody(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


def _service(request: Request) -> TaskService:
    service: TaskService = request.app.state.rt.alerts.tasks
    return service


async def _case_of(request: Request, case_id: str) -> Case | None:
    rt = runtime(request)
    return rt.casebook.document(case_id) or await rt.cases.get(case_id)


async def _call(coro: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return await coro
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


async def _sees(request: Request, g: Gate, case_id: str) -> bool:
    case = await _case_of(request, case_id)
    return g.who.unscoped or (case is not None and g.sees(case))


async def _task(request: Request, g: Gate, task_id: str, action: str) -> dict[str, Any]:
    """The task (with its history) if its case is one of the caller's units' (403, recorded)."""
    task = await _call(_service(request).get(task_id))
    if not await _sees(request, g, task["case_id"]):
        await g.refuse(
            status.HTTP_403_FORBIDDEN,
            "out_of_scope",
            "this task's case is not one of your units'",
            action,
            case_id=task["case_id"],
            detail={"task_id": task_id},
        )
    return task


@router.get("/tasks")
async def list_tasks(
    request: Request,
    g: Gate = Depends(READ),
    case_id: str | None = None,
    state: Annotated[str | None, Query(pattern="^(open|done)$")] = None,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """The tasks of the caller's units' cases (a task of another unit's case is left out)."""
    found = await _service(request).list(state=state, case_id=case_id, kind=kind)
    visible = {c for c in {t["case_id"] for t in found} if await _sees(request, g, c)}
    out = [t for t in found if t["case_id"] in visible]
    await g.log_cases("task.list", [t["case_id"] for t in out], detail={"count": len(out)})
    return out


@router.get("/tasks/{task_id}")
async def get_task(request: Request, task_id: str, g: Gate = Depends(READ)) -> dict[str, Any]:
    task = await _task(request, g, task_id, "task.read")
    await g.log(
        "task.read", case_id=task["case_id"], alert_id=task.get("alert_id"), detail={"task_id": task_id}
    )
    return task


@router.post("/tasks/{task_id}/done")
async def task_done(
    request: Request, task_id: str, body: DoneBody, g: Gate = Depends(READ)
) -> dict[str, Any]:
    task = await _task(request, g, task_id, "task.done")
    out = await _call(_service(request).done(task_id, g.who.name, body.note, datetime.now(UTC)))
    await g.log(
        "task.done", case_id=task["case_id"], alert_id=task.get("alert_id"), detail={"task_id": task_id}
    )
    return out
