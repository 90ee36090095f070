"""Health, readiness, metrics (no auth) and token administration (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from emon.api.auth import Principal, Role, new_token, require, token_hash
from emon.api.deps import runtime

router = APIRouter(tags=["system"])
api = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Ready when PostgreSQL, Redis and the MQTT broker are reachable and every loop is running."""
    rt = runtime(request)
    checks: dict[str, bool] = {}
    try:
        async with rt.db.pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
        checks["postgres"] = True
    except Exception:
        checks["postgres"] = False
    try:
        checks["redis"] = await rt.live.ping()
    except Exception:
        checks["redis"] = False
    checks["mqtt"] = rt.mqtt.connected.is_set()
    checks["loops"] = all(not t.done() for t in rt.tasks.values())
    ok = all(checks.values())
    body: dict[str, Any] = {
        "status": "ready" if ok else "not ready",
        "checks": checks,
        "queue": rt.pipeline.pending,
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


ADMIN = require(Role.ADMIN)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    role: Role


@api.post("/tokens", status_code=status.HTTP_201_CREATED)
async def create_token(
    body: TokenIn, request: Request, _: Principal = Depends(ADMIN)
) -> dict[str, str]:
    """Issue a bearer token with a role; the token is shown once and stored only as a hash."""
    rt = runtime(request)
    token = new_token()
    await rt.records.add_token(token_hash(token), body.name, body.role)
    return {"name": body.name, "role": body.role.value, "token": token}
