"""``POST /feasibility``: the enforceability check over HTTP (same JSON as ``emon check-ban --json``).

Invalid input answers 422 ``{"error": "invalid_input", "field": <dotted path>, "message": ...}``.
The caller mounts the router (under ``/api/v1``) and passes its auth check as the dependency, and
``record`` to put each check in the audit log (it is given what the dependency returned and a detail
without coordinates).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from emon.errors import InvalidOrder
from emon.feasibility.checker import check
from emon.feasibility.request import parse_request
from emon.feasibility.settings import FeasibilitySettings


def _utc_now() -> datetime:
    return datetime.now(UTC)


def make_router(
    dependency: Callable[..., Any],
    *,
    settings: FeasibilitySettings | None = None,
    clock: Callable[[], datetime] = _utc_now,
    record: Callable[[Any, dict[str, Any]], Awaitable[None]] | None = None,
) -> APIRouter:
    """A router with ``POST /feasibility`` guarded by ``dependency`` (e.g. a role check).

    ``settings`` defaults to the documented thresholds (the service passes ``Settings.feasibility``); ``clock`` gives
    the (UTC) time used to judge the order's end date.
    """
    resolved = settings if settings is not None else FeasibilitySettings()
    router = APIRouter()

    @router.post("/feasibility", summary="Check whether a proposed location/contact ban is enforceable")
    async def feasibility(request: Request, caller: Any = Depends(dependency)) -> JSONResponse:
        """Body: ``{"residence", "order", "protected_places", "mandatory_places", "victim_device"}``
        (docs/enforceability.md). 200 with the report, also when the order is not enforceable."""
        raw = await request.body()
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _invalid("body", f"not valid JSON: {exc}")
        try:
            parsed = parse_request(document)
        except InvalidOrder as exc:
            return _invalid(exc.field, exc.problem)
        # Geodesy and polygon clipping take milliseconds of CPU: keep them off the event loop.
        report = await run_in_threadpool(check, parsed, resolved, clock())
        if record is not None:  # before the report leaves: no unrecorded check
            await record(
                caller,
                {
                    "enforceable": report.enforceable,
                    "findings": sorted({f.code.value for f in report.findings}),
                },
            )
        return JSONResponse(report.to_dict())

    return router


def _invalid(field: str, message: str) -> JSONResponse:
    body = {"error": "invalid_input", "field": field, "message": " ".join(message.split())}
    return JSONResponse(body, status_code=422)
