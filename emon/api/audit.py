"""``GET /audit`` (auditor, admin): the audit log, filtered, oldest first. Nothing here edits or deletes it;
reading it is itself recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from emon.access import Role
from emon.api.deps import runtime
from emon.api.gate import Gate, gate
from emon.storage.audit import MAX_QUERY, AuditQuery

router = APIRouter(tags=["audit"])
AUDITOR = gate(Role.AUDITOR)  # and admin


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"'{name}' needs a UTC offset")
    return value


@router.get("/audit")
async def audit_log(
    request: Request,
    g: Gate = Depends(AUDITOR),
    user: str | None = None,
    role: str | None = None,
    action: str | None = None,
    outcome: str | None = Query(default=None, pattern="^(allowed|refused)$"),
    case_id: str | None = None,
    device_id: str | None = None,
    alert_id: str | None = None,
    since: datetime | None = Query(default=None, alias="from"),
    until: datetime | None = Query(default=None, alias="to"),
    after_seq: int = Query(default=0, ge=0),
    limit: int = Query(default=100, ge=1, le=MAX_QUERY),
) -> list[dict[str, Any]]:
    """Records matching every filter given; page with ``after_seq`` (the last ``seq`` seen)."""
    q = AuditQuery(
        user,
        role,
        action,
        outcome,
        case_id,
        device_id,
        alert_id,
        _utc(since, "from"),
        _utc(until, "to"),
        after_seq,
        limit,
    )
    records = await runtime(request).audit.query(q)
    await g.log(
        "audit.read",
        detail={
            k: v
            for k, v in {
                "user": user,
                "action": action,
                "case_id": case_id,
                "device_id": device_id,
                "outcome": outcome,
            }.items()
            if v is not None
        }
        | {"count": len(records)},
    )
    return [r.to_json() for r in records]
