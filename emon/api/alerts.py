"""REST for alerts: list, detail (history + deliveries), acknowledge, resolve, annotate, suppress.

Mounted by the lead under /api/v1. Who acted is ``request.state.principal.name``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from emon.alerts.service import AlertService
from emon.api.auth import Principal, Role, require
from emon.errors import InvalidInput, NotFound

router = APIRouter()

Reader = Annotated[Principal, Depends(require(Role.PROBATION, Role.POLICE))]
Supervisor = Annotated[Principal, Depends(require(Role.PROBATION))]


class AckBody(BaseModel):
    note: str | None = Field(default=None, max_length=4000)


class ResolveBody(BaseModel):
    outcome: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=4000)


class NoteBody(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


class SuppressBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    until: datetime
    types: list[str] | None = None


def _service(request: Request) -> AlertService:
    service: AlertService = request.app.state.rt.alerts
    return service


async def _call(coro: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A refused state change (ack twice, resolve without a note) is a 409 here, not the app-wide 422."""
    try:
        result = await coro
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return result


@router.get("/alerts")
async def list_alerts(
    request: Request, _: Reader, case_id: str | None = None,
    state: Annotated[str | None, Query(pattern="^(open|acknowledged|resolved)$")] = None,
    type: str | None = None,  # the documented query parameter name
) -> list[dict[str, Any]]:
    return await _service(request).list_alerts(case_id=case_id, state=state, type_=type)


@router.get("/alerts/{alert_id}")
async def get_alert(request: Request, alert_id: str, _: Reader) -> dict[str, Any]:
    return await _call(_service(request).get_alert(alert_id))


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(request: Request, alert_id: str, who: Reader, body: AckBody | None = None) -> dict[str, Any]:
    note = None if body is None else body.note
    return await _call(_service(request).act(alert_id, "acknowledge", who.name, datetime.now(UTC), note=note))


@router.post("/alerts/{alert_id}/resolve")
async def resolve(request: Request, alert_id: str, who: Reader, body: ResolveBody) -> dict[str, Any]:
    return await _call(
        _service(request).act(alert_id, "resolve", who.name, datetime.now(UTC), note=body.note, outcome=body.outcome)
    )


@router.post("/alerts/{alert_id}/annotate")
async def annotate(request: Request, alert_id: str, who: Reader, body: NoteBody) -> dict[str, Any]:
    return await _call(_service(request).act(alert_id, "annotate", who.name, datetime.now(UTC), note=body.note))


@router.post("/cases/{case_id}/suppress", status_code=status.HTTP_201_CREATED)
async def suppress(request: Request, case_id: str, who: Supervisor, body: SuppressBody) -> dict[str, Any]:
    until = body.until if body.until.tzinfo else body.until.replace(tzinfo=UTC)
    return await _call(
        _service(request).suppress(case_id, body.reason, until, body.types, who.name, datetime.now(UTC))
    )
