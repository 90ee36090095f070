"""Bearer tokens with a role. No unauthenticated access to positions, ever.

A token is stored only as its SHA-256; the admin token can be bootstrapped from EMON_ADMIN_TOKEN.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from fastapi import HTTPException, Request, status


class Role(StrEnum):
    ADMIN = "admin"
    PROBATION = "probation"
    POLICE = "police"
    PROSECUTOR = "prosecutor"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token's name and role."""

    name: str
    role: Role


class TokenStore(Protocol):
    async def principal_for(self, token_sha256: str) -> Principal | None: ...


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "emon_" + secrets.token_urlsafe(32)


class Authenticator:
    """Resolves a bearer token to a :class:`Principal` (bootstrap admin token first, then the store)."""

    def __init__(self, store: TokenStore, admin_token: str | None) -> None:
        self.store = store
        self._admin_hash = token_hash(admin_token) if admin_token else None

    async def authenticate(self, header: str | None) -> Principal:
        if not header or not header.lower().startswith("bearer "):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        digest = token_hash(header[7:].strip())
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return Principal("bootstrap-admin", Role.ADMIN)
        principal = await self.store.principal_for(digest)
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "invalid or revoked token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal

    async def authenticate_hash(self, digest: str) -> Principal | None:
        """The principal of a token known only by its SHA-256 (a browser session), or None."""
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return Principal("bootstrap-admin", Role.ADMIN)
        return await self.store.principal_for(digest)


def require(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller must hold one of ``roles`` (admin always may)."""
    allowed = {*roles, Role.ADMIN}

    async def dependency(request: Request) -> Principal:
        from emon.api.session import authenticate  # bearer header, or session cookie + CSRF

        principal = await authenticate(request)
        if principal.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role} may not do this")
        request.state.principal = principal
        return principal

    return dependency
