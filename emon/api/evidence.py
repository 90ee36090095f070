"""Order versions, legal hold and evidence packs of cases and alerts (issue 12 items 4–6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from emon.api.auth import Principal, Role, require
from emon.api.deps import runtime
from emon.errors import NotFound
from emon.evidence.errors import EvidenceError
from emon.storage.evidence import evidence_pack

router = APIRouter(tags=["evidence"])
Reader = Annotated[Principal, Depends(require(Role.PROBATION, Role.POLICE, Role.PROSECUTOR))]
Packer = Annotated[Principal, Depends(require(Role.PROSECUTOR, Role.PROBATION))]


class HoldBody(BaseModel):
    hold: bool
    reason: str | None = Field(default=None, max_length=2000)


@router.get("/cases/{case_id}/versions")
async def versions(case_id: str, request: Request, _: Reader) -> list[dict[str, Any]]:
    """Every version of the case's order document: number, who, when (UTC), action, reason, document."""
    found = await runtime(request).cases.versions(case_id)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    return [v.to_json() for v in found]


@router.get("/cases/{case_id}/legal-hold")
async def get_hold(case_id: str, request: Request, _: Reader) -> dict[str, Any]:
    hold = await runtime(request).cases.legal_hold(case_id)
    if hold is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    return hold


@router.put("/cases/{case_id}/legal-hold")
async def set_hold(case_id: str, body: HoldBody, request: Request, who: Packer) -> dict[str, Any]:
    """Mark (or release) a case as evidence in proceedings: retention keeps its positions while held."""
    if body.hold and not body.reason:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a legal hold needs a reason")
    cases = runtime(request).cases
    if not await cases.set_legal_hold(case_id, body.hold, who.name, body.reason):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    hold = await cases.legal_hold(case_id)
    assert hold is not None
    return hold


@router.get("/alerts/{alert_id}/evidence", response_class=Response)
async def evidence(alert_id: str, request: Request, _: Packer) -> Response:
    """The signed evidence pack of an alert (``application/zip``); see docs/evidence.md."""
    rt = runtime(request)
    s = rt.settings
    try:
        blob = await evidence_pack(rt.db, alert_id, datetime.now(UTC), key_file=s.signing_key_file,
                                   before_s=s.evidence_before_s, after_s=s.evidence_after_s)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except EvidenceError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    return Response(blob, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="evidence-{alert_id}.zip"'})
