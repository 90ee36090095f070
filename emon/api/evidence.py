"""Order versions, legal hold and evidence packs of cases and alerts (issue 12 items 4–6).

Scoped by unit like every case route: a caller sees the versions, hold and packs of their units' cases
only (403 ``out_of_scope``, recorded); every read, hold change and pack download is in the audit log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from emon.access import Role
from emon.api.deps import runtime
from emon.api.gate import Gate, gate
from emon.errors import NotFound
from emon.evidence.errors import EvidenceError
from emon.storage.evidence import evidence_pack

router = APIRouter(tags=["evidence"])
READ = gate(Role.PROBATION, Role.POLICE, Role.PROSECUTOR)
PACK = gate(Role.PROSECUTOR, Role.PROBATION)


class HoldBody(BaseModel):
    hold: bool
    reason: str | None = Field(default=None, max_length=2000)


@router.get("/cases/{case_id}/versions")
async def versions(case_id: str, request: Request, g: Gate = Depends(READ)) -> list[dict[str, Any]]:
    """Every version of the case's order document: number, who, when (UTC), action, reason, document."""
    rt = runtime(request)
    await g.case(await rt.cases.get(case_id), case_id, "case.versions")
    found = await rt.cases.versions(case_id)
    await g.log("case.versions", case_id=case_id, detail={"count": len(found)})
    return [v.to_json() for v in found]


@router.get("/cases/{case_id}/legal-hold")
async def get_hold(case_id: str, request: Request, g: Gate = Depends(READ)) -> dict[str, Any]:
    rt = runtime(request)
    await g.case(await rt.cases.get(case_id), case_id, "case.legal_hold.read")
    hold = await rt.cases.legal_hold(case_id)
    if hold is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    await g.log("case.legal_hold.read", case_id=case_id)
    return hold


@router.put("/cases/{case_id}/legal-hold")
async def set_hold(case_id: str, body: HoldBody, request: Request, g: Gate = Depends(PACK)) -> dict[str, Any]:
    """Mark (or release) a case as evidence in proceedings: retention keeps its positions while held."""
    if body.hold and not body.reason:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a legal hold needs a reason")
    cases = runtime(request).cases
    await g.case(await cases.get(case_id), case_id, "case.legal_hold")
    if not await cases.set_legal_hold(case_id, body.hold, g.who.name, body.reason):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such case")
    await g.log("case.legal_hold", case_id=case_id, detail={"hold": body.hold, "reason": body.reason})
    hold = await cases.legal_hold(case_id)
    assert hold is not None
    return hold


@router.get("/alerts/{alert_id}/evidence", response_class=Response)
async def evidence(alert_id: str, request: Request, g: Gate = Depends(PACK)) -> Response:
    """The signed evidence pack of an alert (``application/zip``) of one of the caller's units' cases;
    the download is recorded in the audit log before the pack leaves. See docs/evidence.md."""
    rt = runtime(request)
    s = rt.settings
    if not s.signing_key_file:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "EMON_SIGNING_KEY_FILE is not set: evidence packs cannot be signed",
        )
    try:
        alert = await rt.alerts.get_alert(alert_id)
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    case_id = str(alert["case_id"])
    case = rt.casebook.get(case_id) or await rt.cases.get(case_id)
    if not (g.who.unscoped or (case is not None and g.sees(case))):
        await g.refuse(
            status.HTTP_403_FORBIDDEN,
            "out_of_scope",
            "this alert's case is not one of your units'",
            "evidence.pack",
            case_id=case_id,
            alert_id=alert_id,
        )
    try:
        blob = await evidence_pack(
            rt.db,
            alert_id,
            datetime.now(UTC),
            key_file=s.signing_key_file,
            before_s=s.evidence_before_s,
            after_s=s.evidence_after_s,
        )
    except NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except EvidenceError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    await g.log("evidence.pack", case_id=case_id, alert_id=alert_id, detail={"bytes": len(blob)})
    return Response(
        blob,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="evidence-{alert_id}.zip"'},
    )
