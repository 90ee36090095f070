"""REST for alerts: list, detail (history + deliveries), acknowledge, resolve, annotate, suppress.

Mounted under /api/v1. Who acted is the principal's name. Scoped by the units of the alert's case;
every read and action is audited.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from emon.access import VICTIM_POSITION_PURPOSES, Role
from emon.alerts.service import AlertService
from emon.api.deps import runtime
from emon.api.gate import Gate, gate
from emon.case import Case
from emon.errors import InvalidInput, NotFound
from emon.privacy import alert_for_viewer

router = APIRouter()

READ = gate(Role.PROBATION, Role.POLICE, Role.PROSECUTOR)  # prosecutors: the alerts of their own cases
ACT = gate(Role.PROBATION, Role.POLICE)
SUPERVISOR = gate(Role.PROBATION)


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


async def _case_of(request: Request, case_id: str) -> Case | None:
    rt = runtime(request)
    return rt.casebook.document(case_id) or await rt.cases.get(case_id)


async def _call(coro: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A refused state change (ack twice, resolve without a note) is a 409 here, not the app-wide 422."""
    try:
        result = await coro
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return result


def _show_victim(g: Gate) -> bool:
    return g.purpose in VICTIM_POSITION_PURPOSES


async def _alert(request: Request, g: Gate, alert_id: str, action: str) -> tuple[dict[str, Any], Case | None]:
    """The alert (with history and deliveries) if its case is one of the caller's units' (403, audited)."""
    alert = await _call(_service(request).get_alert(alert_id))
    case = await _case_of(request, alert["case_id"])
    if not (g.who.unscoped or (case is not None and g.sees(case))):
        await g.refuse(
            status.HTTP_403_FORBIDDEN,
            "out_of_scope",
            "this alert's case is not one of your units'",
            action,
            case_id=alert["case_id"],
            alert_id=alert_id,
        )
    return alert, case


@router.get("/alerts")
async def list_alerts(
    request: Request,
    g: Gate = Depends(READ),
    case_id: str | None = None,
    state: Annotated[str | None, Query(pattern="^(open|acknowledged|resolved)$")] = None,
    type: str | None = None,  # the documented query parameter name
) -> list[dict[str, Any]]:
    """The alerts of the caller's units' cases. A victim's position in them only with a purpose and
    only in alerts that open it (emon/privacy.py)."""
    alerts = await _service(request).list_alerts(case_id=case_id, state=state, type_=type)
    cases = {c: await _case_of(request, c) for c in {a["case_id"] for a in alerts}}
    out = [
        alert_for_viewer(a, cases[a["case_id"]], _show_victim(g))
        for a in alerts
        if g.who.unscoped or ((case := cases[a["case_id"]]) is not None and g.sees(case))
    ]
    await g.log_cases("alert.list", [a["case_id"] for a in out], detail={"count": len(out)})
    return out


@router.get("/alerts/{alert_id}")
async def get_alert(request: Request, alert_id: str, g: Gate = Depends(READ)) -> dict[str, Any]:
    alert, case = await _alert(request, g, alert_id, "alert.read")
    await g.log("alert.read", case_id=alert["case_id"], alert_id=alert_id)
    return alert_for_viewer(alert, case, _show_victim(g))


async def _act(request: Request, g: Gate, alert_id: str, action: str, **kw: Any) -> dict[str, Any]:
    alert, case = await _alert(request, g, alert_id, f"alert.{action}")
    out = await _call(_service(request).act(alert_id, action, g.who.name, datetime.now(UTC), **kw))
    await g.log(f"alert.{action}", case_id=alert["case_id"], alert_id=alert_id)
    return alert_for_viewer(out, case, _show_victim(g))


@router.post("/alerts/{alert_id}/ack")
async def acknowledge(
    request: Request, alert_id: str, g: Gate = Depends(ACT), body: AckBody | None = None
) -> dict[str, Any]:
    return await _act(request, g, alert_id, "acknowledge", note=None if body is None else body.note)


@router.post("/alerts/{alert_id}/resolve")
async def resolve(
    request: Request, alert_id: str, body: ResolveBody, g: Gate = Depends(ACT)
) -> dict[str, Any]:
    return await _act(request, g, alert_id, "resolve", note=body.note, outcome=body.outcome)


@router.post("/alerts/{alert_id}/annotate")
async def annotate(request: Request, alert_id: str, body: NoteBody, g: Gate = Depends(ACT)) -> dict[str, Any]:
    return await _act(request, g, alert_id, "annotate", note=body.note)


@router.post("/cases/{case_id}/suppress", status_code=status.HTTP_201_CREATED)
async def suppress(
    request: Request, case_id: str, body: SuppressBody, g: Gate = Depends(SUPERVISOR)
) -> dict[str, Any]:
    await g.case(await _case_of(request, case_id), case_id, "case.suppress")
    until = body.until if body.until.tzinfo else body.until.replace(tzinfo=UTC)
    out = await _call(
        _service(request).suppress(case_id, body.reason, until, body.types, g.who.name, datetime.now(UTC))
    )
    await g.log("case.suppress", case_id=case_id, detail={"until": until.isoformat(), "types": body.types})
    return out
