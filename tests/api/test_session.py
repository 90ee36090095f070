"""Browser sessions through a real emon: cookie flags, CSRF on state-changing requests, sign-out
everywhere, a revoked token ending its sessions, expiry."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from emon.api.auth import token_hash
from emon.api.session import COOKIE
from tests.harness import ADMIN_TOKEN, Running, running_emon

pytestmark = pytest.mark.integration


def browser(em: Running) -> httpx.AsyncClient:
    """A client without a bearer token: it authenticates by cookie only, like the pages."""
    return em.client(token=None)


async def sign_in(client: httpx.AsyncClient, token: str = ADMIN_TOKEN) -> str:
    r = await client.post("/api/v1/session", json={"token": token})
    assert r.status_code == 200, r.text
    return str(r.json()["csrf"])


async def test_sign_in_sets_a_strict_httponly_cookie_and_csrf_guards_changes(emon: Running) -> None:
    async with browser(emon) as c:
        assert (await c.post("/api/v1/session", json={"token": "wrong-token-0123456789"})).status_code == 401
        assert (await c.get("/api/v1/session")).json() == {"signed_in": False}
        r = await c.post("/api/v1/session", json={"token": ADMIN_TOKEN})
        cookie = r.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Path=/" in cookie and "Max-Age" not in cookie  # ends with the browser session
        assert ADMIN_TOKEN not in cookie
        csrf = r.json()["csrf"]
        me = (await c.get("/api/v1/session")).json()
        assert me == {"signed_in": True, "name": "bootstrap-admin", "role": "admin", "csrf": csrf}
        assert (await c.get("/api/v1/alerts")).status_code == 200  # reads need no CSRF token
        # A state-changing request with the cookie needs the session's CSRF token.
        assert (await c.post("/api/v1/alerts/none/ack", json={})).status_code == 403
        wrong = {"X-CSRF-Token": "not-the-token"}
        assert (await c.post("/api/v1/alerts/none/ack", json={}, headers=wrong)).status_code == 403
        right = {"X-CSRF-Token": csrf}
        assert (
            await c.post("/api/v1/alerts/none/ack", json={}, headers=right)
        ).status_code == 404  # past auth
    async with emon.client() as bearer:  # bearer callers are not affected by CSRF
        assert (await bearer.post("/api/v1/alerts/none/ack", json={})).status_code == 404


async def test_sign_out_ends_every_session_of_the_token(emon: Running) -> None:
    async with browser(emon) as one, browser(emon) as two:
        csrf_one = await sign_in(one)
        await sign_in(two)
        assert (await one.delete("/api/v1/session")).status_code == 403  # CSRF needed here too
        r = await one.delete("/api/v1/session", headers={"X-CSRF-Token": csrf_one})
        assert r.status_code == 204 and f'{COOKIE}=""' in r.headers["set-cookie"]
        for client in (one, two):
            assert (await client.get("/api/v1/alerts")).status_code == 401
            assert (await client.get("/api/v1/session")).json() == {"signed_in": False}


async def test_a_revoked_token_ends_its_sessions(emon: Running) -> None:
    token = await emon.token_for("probation")
    async with browser(emon) as c:
        await sign_in(c, token)
        assert (await c.get("/api/v1/alerts")).status_code == 200
        async with emon.runtime.db.pool.connection() as conn:
            await conn.execute(
                "UPDATE api_tokens SET revoked_at = now() WHERE token_sha256 = %s", (token_hash(token),)
            )
        assert (await c.get("/api/v1/alerts")).status_code == 401
        # The role of the token applies through the cookie as it does with a bearer header.
        assert (await c.post("/api/v1/session", json={"token": token})).status_code == 401


async def test_a_session_expires() -> None:
    async with running_emon(session_hours=1.0 / 3600) as em, browser(em) as c:
        await sign_in(c)
        assert (await c.get("/api/v1/alerts")).status_code == 200
        await asyncio.sleep(1.2)
        assert (await c.get("/api/v1/alerts")).status_code == 401


async def test_roles_apply_through_the_cookie(emon: Running) -> None:
    token = await emon.token_for("prosecutor")
    async with browser(emon) as c:
        await sign_in(c, token)
        assert (await c.get("/api/v1/devices")).status_code == 403
        assert (await c.get("/api/v1/session")).json()["role"] == "prosecutor"
