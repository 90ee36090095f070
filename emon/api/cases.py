"""Cases and their orders: create, read, replace, close; scoped by unit and audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from emon.access import Role
from emon.api.deps import runtime
from emon.api.gate import Gate, gate
from emon.case import Case, CaseStatus
from emon.errors import InvalidOrder
from emon.order import parse_model
from emon.privacy import redact_victim
from emon.runtime import Runtime
from emon.storage.cases import case_document

router = APIRouter(tags=["cases"])
WRITE = gate(Role.PROBATION)
# Prosecutors see the orders (and alerts) of their own units' cases.
READ = gate(Role.PROBATION, Role.POLICE, Role.PROSECUTOR)


def _parse(body: Any) -> Case:
    try:
        return parse_model(Case, body, where="case")
    except InvalidOrder as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {"error": "invalid_input", "field": exc.field, "message": exc.problem},
        ) from exc


async def _check_devices(rt: Runtime, case: Case) -> None:
    for field, device_id in (
        ("offender_device", case.offender_device),
        ("victim_device", case.victim_device),
    ):
        if device_id is not None and device_id not in rt.registry:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                {
                    "error": "unknown_device",
                    "field": f"case.{field}",
                    "message": f"{device_id} is not registered",
                },
            )
    offender = rt.registry.by_id[case.offender_device]
    if offender.kind.value != "ankle_tag":
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            {"error": "invalid_input", "field": "case.offender_device", "message": "must be an ankle_tag"},
        )


async def _valid_case(rt: Runtime, request: Request) -> Case:
    """The request body as a case whose devices are registered (an offender tag and a victim device)."""
    case = _parse(await _json(request))
    await _check_devices(rt, case)
    return case


async def _writable(g: Gate, case: Case, action: str) -> None:
    """A scoped writer must keep the case within their units (else they would lose sight of it)."""
    if not g.sees(case):
        await g.refuse(
            status.HTTP_403_FORBIDDEN,
            "out_of_scope",
            "name at least one of your units in 'units'",
            action,
            case_id=case.case_id,
        )


@router.post("/cases", status_code=status.HTTP_201_CREATED)
async def create_case(
    request: Request, g: Gate = Depends(WRITE), reason: str | None = Query(None, max_length=2000)
) -> dict[str, Any]:
    rt = runtime(request)
    case = await _valid_case(rt, request)
    await _writable(g, case, "case.create")
    version = await rt.cases.add(case, g.who.name, reason)
    if not version:
        raise HTTPException(status.HTTP_409_CONFLICT, "case_id exists")
    await g.log("case.create", case_id=case.case_id)
    await rt.case_changed(case, version)
    return case_document(case)


@router.get("/cases")
async def list_cases(request: Request, g: Gate = Depends(READ)) -> list[dict[str, Any]]:
    """The cases of the caller's units (every case for an unscoped caller)."""
    rt = runtime(request)
    units = None if g.who.unscoped else g.who.units
    cases = [c for c in await rt.cases.all(units=units) if g.sees(c)]
    await g.log_cases("case.list", [c.case_id for c in cases])
    return [case_document(c) for c in cases]


@router.get("/cases/{case_id}")
async def get_case(case_id: str, request: Request, g: Gate = Depends(READ)) -> dict[str, Any]:
    case = await g.case(await runtime(request).cases.get(case_id), case_id, "case.read")
    await g.log("case.read", case_id=case_id)
    return case_document(case)


@router.put("/cases/{case_id}")
async def replace_case(
    case_id: str,
    request: Request,
    g: Gate = Depends(WRITE),
    reason: str | None = Query(None, max_length=2000),
) -> dict[str, Any]:
    """Replace the case's document: a new order version, recorded with who, when and ``reason``."""
    rt = runtime(request)
    await g.case(await rt.cases.get(case_id), case_id, "case.update")
    case = await _valid_case(rt, request)
    if case.case_id != case_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "case_id in the body differs from the path"
        )
    await _writable(g, case, "case.update")
    version = await rt.cases.replace(case, g.who.name, reason)
    if not version:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    await g.log("case.update", case_id=case_id)
    await rt.case_changed(case, version)
    return case_document(case)


@router.post("/cases/{case_id}/close")
async def close_case(
    case_id: str,
    request: Request,
    g: Gate = Depends(WRITE),
    reason: str | None = Query(None, max_length=2000),
) -> dict[str, Any]:
    rt = runtime(request)
    case = await g.case(await rt.cases.get(case_id), case_id, "case.close")
    closed = case.model_copy(update={"status": CaseStatus.CLOSED})
    version = await rt.cases.replace(closed, g.who.name, reason)
    await g.log("case.close", case_id=case_id)
    await rt.case_changed(closed, version)
    return case_document(closed)


@router.get("/cases/{case_id}/evaluations")
async def evaluations(case_id: str, request: Request, g: Gate = Depends(READ)) -> list[dict[str, Any]]:
    """Every evaluation decision of the case with its explanation, in fix-time order. They are history:
    the victim's coordinates are removed from them."""
    rt = runtime(request)
    case = await g.case(await rt.cases.get(case_id), case_id, "case.evaluations")
    events = await rt.cases.eval_events(case_id)
    await g.log("case.evaluations", case_id=case_id, detail={"count": len(events)})
    if case.victim_device is None:
        return events
    return [redact_victim(e, case.victim_device) for e in events]


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body must be JSON") from exc
