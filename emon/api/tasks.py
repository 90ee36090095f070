"""REST for room tasks: list (and one with its history), mark done with a note. Who acted is the token's name."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from emon.api.auth import Principal, Role, require
from emon.errors import InvalidInput, NotFound
from emon.tasks.service import TaskService

router = APIRouter()

Reader = Annotated[Principal, Depends(require(Role.PROBATION, Role.POLICE))]


class DoneBody(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


def _service(request: Request) -> TaskService:
    service: TaskService = request.app.state.rt.alerts.tasks
    return service


async def _call(coro: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    try:
        return await coro
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


@router.get("/tasks")
async def list_tasks(
    request: Request, _: Reader, case_id: str | None = None,
    state: Annotated[str | None, Query(pattern="^(open|done)$")] = None, kind: str | None = None,
) -> list[dict[str, Any]]:
    return await _service(request).list(state=state, case_id=case_id, kind=kind)


@router.get("/tasks/{task_id}")
async def get_task(request: Request, task_id: str, _: Reader) -> dict[str, Any]:
    return await _call(_service(request).get(task_id))


@router.post("/tasks/{task_id}/done")
async def task_done(request: Request, task_id: str, who: Reader, body: DoneBody) -> dict[str, Any]:
    return await _call(_service(request).done(task_id, who.name, body.note, datetime.now(UTC)))
