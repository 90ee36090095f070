"""Cases and their orders: create, read, replace, close (roles admin, probation)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from emon.api.auth import Principal, Role, require
from emon.api.deps import runtime
from emon.case import Case, CaseStatus
from emon.errors import InvalidOrder
from emon.order import parse_model
from emon.runtime import Runtime
from emon.storage.cases import case_document

router = APIRouter(tags=["cases"])
WRITE = require(Role.PROBATION)
READ = require(Role.PROBATION, Role.POLICE)


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


async def _existing(rt: Runtime, case_id: str) -> Case:
    case = await rt.cases.get(case_id)
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    return case


@router.post("/cases", status_code=status.HTTP_201_CREATED)
async def create_case(
    request: Request, who: Principal = Depends(WRITE), reason: str | None = Query(None, max_length=2000)
) -> dict[str, Any]:
    rt = runtime(request)
    case = await _valid_case(rt, request)
    version = await rt.cases.add(case, who.name, reason)
    if not version:
        raise HTTPException(status.HTTP_409_CONFLICT, "case_id exists")
    await rt.case_changed(case, version)
    return case_document(case)


@router.get("/cases")
async def list_cases(request: Request, _: Principal = Depends(READ)) -> list[dict[str, Any]]:
    rt = runtime(request)
    return [case_document(c) for c in await rt.cases.all()]


@router.get("/cases/{case_id}")
async def get_case(case_id: str, request: Request, _: Principal = Depends(READ)) -> dict[str, Any]:
    return case_document(await _existing(runtime(request), case_id))


@router.put("/cases/{case_id}")
async def replace_case(
    case_id: str, request: Request, who: Principal = Depends(WRITE), reason: str | None = Query(None, max_length=2000)
) -> dict[str, Any]:
    """Replace the case's document: a new order version, recorded with who, when and ``reason``."""
    rt = runtime(request)
    case = await _valid_case(rt, request)
    if case.case_id != case_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "case_id in the body differs from the path"
        )
    version = await rt.cases.replace(case, who.name, reason)
    if not version:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    await rt.case_changed(case, version)
    return case_document(case)


@router.post("/cases/{case_id}/close")
async def close_case(
    case_id: str, request: Request, who: Principal = Depends(WRITE), reason: str | None = Query(None, max_length=2000)
) -> dict[str, Any]:
    rt = runtime(request)
    case = await _existing(rt, case_id)
    closed = case.model_copy(update={"status": CaseStatus.CLOSED})
    version = await rt.cases.replace(closed, who.name, reason)
    await rt.case_changed(closed, version)
    return case_document(closed)


@router.get("/cases/{case_id}/evaluations")
async def evaluations(case_id: str, request: Request, _: Principal = Depends(READ)) -> list[dict[str, Any]]:
    """Every evaluation decision of the case with its explanation, in fix-time order."""
    rt = runtime(request)
    return await rt.cases.eval_events(case_id)


async def _json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "body must be JSON") from exc
