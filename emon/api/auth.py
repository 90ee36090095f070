"""Authentication behind one interface, and the role check every route makes.

:class:`Authentication` is the interface: it turns a request into a :class:`Principal` or refuses
it (401). :class:`Authenticator` implements it for bearer tokens; single sign-on (OpenID Connect) or
browser sessions are other implementations of the same interface. Every credential ends in a lookup
by token hash (:meth:`Authenticator.by_token_hash`), so revoking a token, its expiry or disabling its
user ends every use of it at the next request — including live streams, which re-authenticate their
request every few seconds.

A token is stored only as its SHA-256; the bootstrap admin token can come from EMON_ADMIN_TOKEN.
Roles and principals are core concepts (:mod:`emon.access`), re-exported here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from fastapi import HTTPException, Request, status

from emon.access import ALL_UNITS, Principal, Role
from emon.audit import AuditSink, Entry, Outcome

__all__ = [
    "Authentication",
    "Authenticator",
    "Principal",
    "Role",
    "TokenStore",
    "new_token",
    "require",
    "token_hash",
]


class TokenStore(Protocol):
    async def principal_for(self, token_sha256: str) -> Principal | None: ...


class Authentication(Protocol):
    """Who is calling; raises HTTPException(401) when nobody valid is."""

    async def authenticate(self, request: Request) -> Principal: ...


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "emon_" + secrets.token_urlsafe(32)


BOOTSTRAP_ADMIN = Principal("bootstrap-admin", Role.ADMIN, frozenset({ALL_UNITS}), None, "bootstrap")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


class Authenticator:
    """Bearer tokens: the bootstrap admin token first, then the token store (lookup by hash)."""

    def __init__(self, store: TokenStore, admin_token: str | None) -> None:
        self.store = store
        self._admin_hash = token_hash(admin_token) if admin_token else None

    async def by_token_hash(self, digest: str) -> Principal | None:
        """The principal of a token given by its SHA-256 (hex), or None if it is not valid now."""
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return BOOTSTRAP_ADMIN
        return await self.store.principal_for(digest)

    async def authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        if not header or not header.lower().startswith("bearer "):
            raise _unauthorized("missing bearer token")
        principal = await self.by_token_hash(token_hash(header[7:].strip()))
        if principal is None:
            raise _unauthorized("invalid, expired or revoked token")
        return principal


def require(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller must hold one of ``roles`` (admin always may, except where a
    route names only :attr:`Role.AUDITOR` — that is admin too). A refusal is recorded in the audit log."""
    allowed = {*roles, Role.ADMIN}

    async def dependency(request: Request) -> Principal:
        auth: Authentication = request.app.state.auth
        principal = await auth.authenticate(request)
        request.state.principal = principal
        if principal.role not in allowed:
            audit: AuditSink = request.app.state.rt.audit
            await audit.record(
                Entry.of(
                    principal,
                    datetime.now(UTC),
                    "role.refused",
                    Outcome.REFUSED,
                    detail={"method": request.method, "path": request.url.path},
                )
            )
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role} may not do this")
        return principal

    return dependency
