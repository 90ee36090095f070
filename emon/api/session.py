"""Browser sign-in: a bearer token exchanged once for an HttpOnly, SameSite=Strict session cookie.

``POST /session {"token"}`` checks the token, stores a new session (the cookie's SHA-256, the
token's SHA-256 and a CSRF token) and sets the cookie; the answer carries the CSRF token, which the
page sends as ``X-CSRF-Token`` on every state-changing request. ``GET /session`` tells a new tab who
is signed in and its CSRF token (same-origin only: the cookie is SameSite=Strict and there is no
CORS). ``DELETE /session`` signs out everywhere: every session opened with the same token ends.

Every request with the cookie re-validates the token through the same lookup bearer auth uses, so a
revoked token ends its sessions at once. The token itself is never stored in the browser.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Protocol

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from emon.api.auth import Authenticator, Principal, token_hash
from emon.errors import StorageError
from emon.storage.postgres import Database
from emon.storage.sessions import PgSessions, WebSession

COOKIE = "emon_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

router = APIRouter(tags=["session"])


class SessionStore(Protocol):
    async def open(self, session_sha256: str, token_sha256: str, csrf: str, expires_at: datetime) -> None: ...
    async def find(self, session_sha256: str, now: datetime) -> WebSession | None: ...
    async def end_all(self, token_sha256: str) -> int: ...


def _store(request: Request) -> SessionStore:
    store: SessionStore | None = getattr(request.app.state, "sessions", None)
    if store is None:
        rt = getattr(request.app.state, "rt", None)
        db = getattr(rt, "db", None)
        if not isinstance(db, Database):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sessions are not available")
        store = request.app.state.sessions = PgSessions(db)
    return store


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


class CookieOrBearer:
    """The app's :class:`~emon.api.auth.Authentication`: a bearer header, or else the session cookie.

    Live streams re-authenticate through it too, so signing out (or revoking the token) also ends a
    stream opened with the cookie."""

    def __init__(self, bearer: Authenticator) -> None:
        self.bearer = bearer

    async def by_token_hash(self, digest: str) -> Principal | None:
        return await self.bearer.by_token_hash(digest)

    async def authenticate(self, request: Request) -> Principal:
        return await authenticate(request)


def _bearer(request: Request) -> Authenticator:
    auth = request.app.state.auth
    return auth.bearer if isinstance(auth, CookieOrBearer) else auth


async def authenticate(request: Request) -> Principal:
    """The caller, from ``Authorization: Bearer`` or else the session cookie.

    With the cookie, a state-changing method also needs the session's CSRF token in ``X-CSRF-Token``
    (403 without it). Raises 401 when neither identifies a valid, unrevoked token.
    """
    auth = _bearer(request)
    header = request.headers.get("authorization")
    cookie = request.cookies.get(COOKIE)
    if header or not cookie:
        return await auth.authenticate(request)
    try:
        session = await _store(request).find(token_hash(cookie), datetime.now(UTC))
    except StorageError as exc:
        raise _unauthorized("sessions are unavailable") from exc
    if session is None:
        raise _unauthorized("session ended or expired")
    principal = await auth.by_token_hash(session.token_sha256)
    if principal is None:
        raise _unauthorized("invalid or revoked token")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong X-CSRF-Token")
    request.state.session = session
    return principal


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=500)


def _hours(request: Request) -> float:
    rt = getattr(request.app.state, "rt", None)
    settings = getattr(rt, "settings", None)
    return float(getattr(settings, "session_hours", 12.0))


@router.post("/session")
async def sign_in(body: SignIn, request: Request, response: Response) -> dict[str, str]:
    """Exchange a bearer token for a session cookie; answers who signed in and the CSRF token."""
    principal = await _bearer(request).by_token_hash(token_hash(body.token))
    if principal is None:
        raise _unauthorized("invalid, expired or revoked token")
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    expires = datetime.now(UTC) + timedelta(hours=_hours(request))
    await _store(request).open(token_hash(cookie), token_hash(body.token), csrf, expires)
    response.set_cookie(
        COOKIE, cookie, httponly=True, samesite="strict", path="/", secure=request.url.scheme == "https"
    )
    response.headers["Cache-Control"] = "no-store"
    return {"name": principal.name, "role": principal.role.value, "csrf": csrf}


@router.get("/session")
async def current(request: Request, response: Response) -> dict[str, str | bool]:
    """Who this browser is signed in as, and the CSRF token for its state-changing requests;
    ``{"signed_in": false}`` without a valid session (a page asks this before anything else)."""
    response.headers["Cache-Control"] = "no-store"
    if not request.cookies.get(COOKIE) or request.headers.get("authorization"):
        return {"signed_in": False}
    try:
        principal = await authenticate(request)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            return {"signed_in": False}
        raise
    session: WebSession = request.state.session
    return {"signed_in": True, "name": principal.name, "role": principal.role.value, "csrf": session.csrf}


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
async def sign_out(request: Request) -> Response:
    """Sign out everywhere: every session opened with this token ends, and the cookie is cleared."""
    if not request.cookies.get(COOKIE) or request.headers.get("authorization"):
        raise _unauthorized("not signed in with a session")
    await authenticate(request)  # the cookie must be valid and carry the CSRF token
    session: WebSession = request.state.session
    await _store(request).end_all(session.token_sha256)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
