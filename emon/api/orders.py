"""REST for orders as legal objects: decisions on an order's end, the expiring list, the police lookup,
and violation reports to the prosecutor with their on-time overview. Every read is scoped by unit and
audited (emon/api/gate.py)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field

from emon.access import Role
from emon.api.deps import runtime
from emon.api.gate import Gate, gate
from emon.api.room import zones_geojson
from emon.case import Case, CaseStatus
from emon.casebook import DOCUMENTS_PER_TURN
from emon.errors import InvalidInput, InvalidOrder, NotFound
from emon.order import Decision, parse_model
from emon.orders.legal import flags
from emon.orders.lifecycle import DecisionKind, in_force, responsible
from emon.orders.plain import describe
from emon.storage import orders as store
from emon.tasks.model import TaskKind

router = APIRouter(tags=["orders"])
DECIDE = gate(Role.PROBATION, Role.PROSECUTOR)
READ = gate(Role.PROBATION, Role.POLICE, Role.PROSECUTOR)
LOOKUP = gate(Role.POLICE, Role.PROSECUTOR)
REPORT = gate(Role.PROBATION)
OVERVIEW = gate(Role.PROBATION, Role.PROSECUTOR)
RECENT = timedelta(days=30)


class DecisionBody(BaseModel):
    """``extended``: the new term (``valid_until``, optionally ``valid_from`` and the new ``decision``);
    ``replaced``: the new ``order`` document; ``let_expire``: only the reason."""

    decision: DecisionKind
    reason: str = Field(min_length=1, max_length=2000)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    order_decision: Decision | None = None
    order: dict[str, Any] | None = None


class ReportBody(BaseModel):
    assessment: str = Field(min_length=1, max_length=20_000)


def _within(raw: str) -> timedelta:
    m = re.fullmatch(r"(\d{1,4})([dh])", raw)
    if m is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "within: a number and d or h, e.g. 14d")
    n = int(m.group(1))
    return timedelta(days=n) if m.group(2) == "d" else timedelta(hours=n)


def _invalid(exc: InvalidOrder) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        {"error": "invalid_input", "field": exc.field, "message": exc.problem},
    )


def _new_case(case: Case, body: DecisionBody, now: datetime) -> Case:
    """The case with the decided new order; validated against the legal limits (422 naming the problem)."""
    doc = case.model_dump(mode="json", exclude_none=True)
    if body.decision is DecisionKind.EXTENDED:
        if body.valid_until is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "an extension needs the new valid_until"
            )
        old_until = case.order.valid_until
        start = body.valid_from or (old_until if old_until is not None and old_until > now else now)
        doc["order"].update(
            valid_from=start.isoformat(),
            valid_until=body.valid_until.isoformat(),
            extensions=case.order.extensions + 1,
        )
        if body.order_decision is not None:
            doc["order"]["decision"] = body.order_decision.model_dump(mode="json")
    elif body.decision is DecisionKind.REPLACED:
        if body.order is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a replacement needs the new order")
        doc["order"] = body.order
    try:
        return parse_model(Case, doc, where="case")
    except InvalidOrder as exc:
        raise _invalid(exc) from exc


@router.post("/cases/{case_id}/order/decisions", status_code=status.HTTP_201_CREATED)
async def decide(
    case_id: str, body: DecisionBody, request: Request, g: Gate = Depends(DECIDE)
) -> dict[str, Any]:
    """Record the decision about the end of the case's order: extended (a new order version with its own
    term), let expire, or replaced (a new order version). Closes the term's open reminders."""
    rt = runtime(request)
    case = await g.case(await rt.cases.get(case_id), case_id, "order.decision")
    now = datetime.now(UTC)
    version = await rt.cases.current_version(case_id)
    new_version: int | None = None
    new_case: Case | None = None
    if body.decision is not DecisionKind.LET_EXPIRE:
        new_case = _new_case(case, body, now)
        new_version = await rt.cases.replace(new_case, g.who.name, f"{body.decision.value}: {body.reason}")
    try:
        row = await rt.orders.decide(
            case,
            version or 1,
            body.decision,
            body.reason,
            g.who.name,
            now,
            new_version,
            None if new_case is None else new_case.order.valid_until,
        )
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if new_case is not None:
        await rt.case_changed(new_case, new_version)
    await g.log(
        "order.decision", case_id=case_id, detail={"decision": body.decision.value, "version": new_version}
    )
    return row


@router.get("/cases/{case_id}/order")
async def order_status(case_id: str, request: Request, g: Gate = Depends(READ)) -> dict[str, Any]:
    """The order in force or not ("no order in force" after its end), its flags and decisions."""
    rt = runtime(request)
    case = await g.case(await rt.cases.get(case_id), case_id, "order.read")
    now = datetime.now(UTC)
    watch = await rt.orders.watch(case_id)
    o = case.order
    await g.log("order.read", case_id=case_id)
    return {
        "case_id": case_id,
        "kind": o.kind.value,
        "in_force": in_force(o.valid_from, o.valid_until, now) and case.status is CaseStatus.OPEN,
        "valid_from": None if o.valid_from is None else o.valid_from.isoformat(),
        "valid_until": None if o.valid_until is None else o.valid_until.isoformat(),
        "flags": flags(o.kind, o.valid_until),
        "expired_without_decision": watch is not None
        and watch.expired_at is not None
        and watch.decision is None
        and watch.valid_until == o.valid_until,
        "decisions": await rt.orders.decisions(case_id),
    }


@router.get("/orders/tasks")
async def my_tasks(request: Request, g: Gate = Depends(READ)) -> list[dict[str, Any]]:
    """The open order tasks the caller must act on: reminders naming them (or, once escalated, naming them
    as a lead) and violation reports assigned to them, of their units' cases, by deadline."""
    rt = runtime(request)
    me = g.who.user_id or g.who.name
    out: list[dict[str, Any]] = []
    for kind in (TaskKind.ORDER_REMINDER, TaskKind.REPORT_PROSECUTOR):
        for t in await rt.alerts.tasks.list(state="open", kind=kind.value):
            case = rt.casebook.get(t["case_id"])
            detail = t["detail"]
            who = responsible(
                detail.get("assignees", []), detail.get("escalate_to", []), t["escalation_level"]
            )
            if case is not None and g.sees(case) and me in who:
                out.append(t)
    out.sort(key=lambda t: str(t["deadline"]))
    await g.log_cases("order.tasks", [t["case_id"] for t in out])
    return out


@router.get("/orders/expiring")
async def expiring(
    request: Request, g: Gate = Depends(READ), within: str = Query("14d", max_length=8)
) -> dict[str, Any]:
    """The caller's units' open cases whose order ends within ``within`` (``14d``, ``48h``), whose order
    is open-ended, and whose order ended without a decision."""
    rt = runtime(request)
    horizon = _within(within)
    now = datetime.now(UTC)
    async with rt.db.pool.connection() as conn:
        decided = await store.decided_terms(conn)
    out: dict[str, list[dict[str, Any]]] = {"expiring": [], "open_ended": [], "expired_without_decision": []}
    for n, case in enumerate(rt.casebook.documents(g.sees), 1):  # one document at a time; sorted below
        if n % DOCUMENTS_PER_TURN == 0:
            await asyncio.sleep(0)  # built as read: let fixes and alerts through now and then
        o = case.order
        item = {
            "case_id": case.case_id,
            "kind": o.kind.value,
            "risk": case.risk.value,
            "valid_until": None if o.valid_until is None else o.valid_until.isoformat(),
            "prosecutor": case.prosecutor,
            "probation_officer": case.probation_officer,
        }
        if o.valid_until is None:
            out["open_ended"].append(item)
        elif o.valid_until <= now:
            if (case.case_id, o.valid_until) not in decided:
                out["expired_without_decision"].append(item)
        elif o.valid_until <= now + horizon:
            out["expiring"].append(item)
    for items in out.values():
        items.sort(key=lambda i: str(i["case_id"]))
    out["expiring"].sort(key=lambda i: str(i["valid_until"]))  # stable: by case id within a time
    await g.log_cases("order.expiring", [i["case_id"] for v in out.values() for i in v])
    return {"within": within, **out}


@router.get("/orders/lookup")
async def lookup(
    request: Request,
    g: Gate = Depends(LOOKUP),
    person_ref: str | None = Query(None, max_length=64),
    device: str | None = Query(None, max_length=64),
    case_id: str | None = Query(None, max_length=64),
    lang: Literal["nl", "en"] = "nl",
) -> dict[str, Any]:
    """The orders of a person (by ``person_ref``, ``device`` or ``case_id``) in plain language: what is
    forbidden or required, where, since and until when, under which decision, recently violated or not.
    Police and prosecutors of the case's units only; every lookup is in the audit log."""
    given = {k: v for k, v in (("person_ref", person_ref), ("device", device), ("case_id", case_id)) if v}
    if len(given) != 1:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "give exactly one of person_ref, device, case_id"
        )
    rt = runtime(request)
    ((by, value),) = given.items()
    found = [
        c
        for c in rt.casebook.all()  # the open cases, in memory
        if (by == "person_ref" and c.person_ref == value)
        or (by == "device" and c.offender_device == value)
        or (by == "case_id" and c.case_id == value)
    ]
    visible = [c for c in found if g.sees(c)]
    if found and not visible:
        await g.refuse(
            status.HTTP_403_FORBIDDEN,
            "out_of_scope",
            "this person's orders are not your units'",
            "order.lookup",
            detail={"by": by},
        )
    now = datetime.now(UTC)
    async with rt.db.pool.connection() as conn:
        recent = await store.recent_violations(conn, [c.case_id for c in visible], now - RECENT)
    docs = [d for c in visible if (d := rt.casebook.document(c.case_id)) is not None]
    orders = [describe(c, now, lang, recent.get(c.case_id, (0, None)), zones_geojson(c)) for c in docs]
    await g.log_cases("order.lookup", [c.case_id for c in visible], detail={"by": by, "found": len(orders)})
    return {"by": by, "orders": orders}


@router.post("/orders/reports/{task_id}")
async def report(
    task_id: str, body: ReportBody, request: Request, g: Gate = Depends(REPORT)
) -> dict[str, Any]:
    """Send the violation report of a "report to the prosecutor" task (the alert's signed evidence pack with
    the officer's assessment) and close the task."""
    rt = runtime(request)
    try:
        result = await rt.orders.report(task_id, g.who.name, body.assessment, datetime.now(UTC))
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    await g.log("order.report", case_id=result["case_id"], alert_id=result["alert_id"])
    return result


@router.get("/orders/reports/overview")
async def reports_overview(
    request: Request,
    g: Gate = Depends(OVERVIEW),
    since: datetime = Query(...),
    until: datetime = Query(...),
    unit: Annotated[str | None, Query(max_length=63)] = None,
) -> dict[str, Any]:
    """How many violations opened in [since, until) were reported within their term, late, or are still
    open within it, and how long reporting took (hours); per unit (default: all of the caller's)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since and until need a UTC offset")
    rt = runtime(request)
    units: list[str] | None = None if g.who.unscoped else sorted(g.who.units)
    if unit is not None:
        if units is not None and unit not in units:
            await g.refuse(
                status.HTTP_403_FORBIDDEN, "out_of_scope", "not one of your units", "order.overview"
            )
        units = [unit]
    await g.log("order.overview", detail={"units": units})
    return await rt.orders.overview(since, until, units, datetime.now(UTC))
