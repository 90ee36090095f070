"""People and their tokens (admin only): users with a role and units; tokens with an expiry, listed and
revoked. A revoked token is refused at the next request and its live streams end within seconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from emon.access import Role, check_units
from emon.api.auth import new_token, token_hash
from emon.api.deps import runtime
from emon.api.gate import Gate, gate
from emon.errors import InvalidInput
from emon.storage.users import User

router = APIRouter(tags=["users"])
ADMIN = gate(Role.ADMIN)
ANYONE = gate(*Role)
MAX_TTL_DAYS = 366
USER_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    role: Role
    units: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("user_id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not USER_ID_RE.match(value):
            raise ValueError("lower-case letters, digits and _ . @ - only")
        return value

    @field_validator("units")
    @classmethod
    def _units(cls, value: list[str]) -> list[str]:
        try:
            return list(check_units(value))
        except InvalidInput as exc:
            raise ValueError(str(exc)) from exc


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttl_days: float = Field(default=30, gt=0, le=MAX_TTL_DAYS)


@router.get("/me")
async def me(g: Gate = Depends(ANYONE)) -> dict[str, Any]:
    """Who the caller is: name, role, units (for a page to show, never for access decisions)."""
    w = g.who
    return {
        "name": w.name,
        "role": w.role.value,
        "units": sorted(w.units),
        "user_id": w.user_id,
        "token_id": w.token_id,
    }


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserIn, request: Request, g: Gate = Depends(ADMIN)) -> dict[str, Any]:
    rt = runtime(request)
    user = User(body.user_id, body.name, body.role, tuple(body.units))
    if not await rt.users.add_user(user, g.who.name):
        raise HTTPException(status.HTTP_409_CONFLICT, "user_id exists")
    await g.log("user.create", detail={"user_id": user.user_id, "role": user.role.value, "units": body.units})
    created = await rt.users.get_user(user.user_id)
    assert created is not None
    return created.to_json()


@router.get("/users")
async def list_users(request: Request, g: Gate = Depends(ADMIN)) -> list[dict[str, Any]]:
    users = await runtime(request).users.users()
    await g.log("user.list", detail={"count": len(users)})
    return [u.to_json() for u in users]


@router.post("/users/{user_id}/disable")
async def disable_user(user_id: str, request: Request, g: Gate = Depends(ADMIN)) -> dict[str, Any]:
    """Every token of the user stops working at once."""
    rt = runtime(request)
    if not await rt.users.disable_user(user_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such user")
    await g.log("user.disable", detail={"user_id": user_id})
    user = await rt.users.get_user(user_id)
    assert user is not None
    return user.to_json()


@router.post("/users/{user_id}/tokens", status_code=status.HTTP_201_CREATED)
async def issue_token(
    user_id: str, request: Request, body: TokenRequest | None = None, g: Gate = Depends(ADMIN)
) -> dict[str, Any]:
    """A new bearer token for the user, valid for ``ttl_days`` (default 30, at most 366). The token is
    shown once, here; only its SHA-256 is kept."""
    rt = runtime(request)
    user = await rt.users.get_user(user_id)
    if user is None or user.disabled_at is not None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such (enabled) user")
    ttl = (body or TokenRequest()).ttl_days
    token = new_token()
    info = await rt.users.issue_token(
        user, token_hash(token), datetime.now(UTC) + timedelta(days=ttl), g.who.name
    )
    await g.log("token.issue", detail={"user_id": user_id, "token_id": info.token_id})
    return {**info.to_json(), "token": token}


@router.get("/tokens")
async def list_tokens(
    request: Request, user_id: str | None = None, g: Gate = Depends(ADMIN)
) -> list[dict[str, Any]]:
    """Every token (never the token itself nor its hash), optionally of one user."""
    tokens = await runtime(request).users.tokens(user_id)
    await g.log("token.list", detail={"count": len(tokens)})
    return [t.to_json() for t in tokens]


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(token_id: str, request: Request, g: Gate = Depends(ADMIN)) -> dict[str, Any]:
    """Revoke a token: refused from the next request on; its live streams end within seconds."""
    info = await runtime(request).users.revoke(token_id, g.who.name)
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such token")
    await g.log("token.revoke", detail={"token_id": token_id, "user_id": info.user_id})
    return info.to_json()
