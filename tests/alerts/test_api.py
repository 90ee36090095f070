"""The REST router on a real service: roles, ack / resolve / annotate, suppression."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from emon.api.alerts import router
from emon.api.auth import Authenticator, Principal, Role, token_hash
from emon.audit import MemoryAuditLog
from emon.fix import EventType
from emon.storage.cases import CaseRecords
from tests.alerts.conftest import World
from tests.alerts.helpers import dev

pytestmark = pytest.mark.integration
ALL = frozenset({"*"})  # unscoped: this test is about the lifecycle; scoping is tested in tests/access
TOKENS = {
    "p": Principal("pia", Role.PROBATION, ALL),
    "x": Principal("piet", Role.POLICE, ALL),
    "o": Principal("olga", Role.PROSECUTOR, ALL),
    "a": Principal("ada", Role.AUDITOR, ALL),
}


class Tokens:
    async def principal_for(self, token_sha256: str) -> Principal | None:
        return {token_hash(k): v for k, v in TOKENS.items()}.get(token_sha256)


def _h(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_rest_lifecycle_and_suppression(world: World) -> None:
    service = world.service()
    app = FastAPI()
    app.include_router(router, prefix="/api/v1")
    app.state.auth = Authenticator(Tokens(), None)
    app.state.rt = SimpleNamespace(
        alerts=service, casebook=world.casebook, cases=CaseRecords(world.db), audit=MemoryAuditLog()
    )
    now = datetime.now(UTC)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            until = (now + timedelta(hours=1)).isoformat()
            assert (
                await c.post(
                    "/api/v1/cases/case-1/suppress", json={"reason": "x", "until": until}, headers=_h("x")
                )
            ).status_code == 403
            r = await c.post(
                "/api/v1/cases/case-1/suppress",
                json={"reason": "supervised meeting", "until": until, "types": ["tamper"]},
                headers=_h("p"),
            )
            assert r.status_code == 201, r.text

            later = datetime.now(UTC)
            await service.on_device_events(
                [dev(EventType.TAMPER, later), dev(EventType.STRAP_OPEN, later)], later, time.monotonic()
            )
            assert (await c.get("/api/v1/alerts", headers=_h("a"))).status_code == 403
            listed = (await c.get("/api/v1/alerts", params={"case_id": "case-1"}, headers=_h("x"))).json()
            by_type = {a["type"]: a for a in listed}
            assert by_type["tamper"]["suppressed"] and not by_type["strap_open"]["suppressed"]
            tamper = by_type["tamper"]["alert_id"]
            assert (await c.get(f"/api/v1/alerts/{tamper}", headers=_h("x"))).json()["deliveries"] == []

            r = await c.post(f"/api/v1/alerts/{tamper}/ack", json={"note": "on it"}, headers=_h("p"))
            assert (r.status_code, r.json()["acknowledged_by"]) == (200, "pia")
            assert (await c.post(f"/api/v1/alerts/{tamper}/ack", headers=_h("p"))).status_code == 409
            r = await c.post(f"/api/v1/alerts/{tamper}/resolve", json={"outcome": "ok"}, headers=_h("p"))
            assert r.status_code == 409  # tamper needs a note
            r = await c.post(f"/api/v1/alerts/{tamper}/annotate", json={"note": "called"}, headers=_h("x"))
            assert r.status_code == 200
            r = await c.post(
                f"/api/v1/alerts/{tamper}/resolve",
                json={"outcome": "ok", "note": "strap fine"},
                headers=_h("p"),
            )
            assert (r.status_code, r.json()["state"]) == (200, "resolved")
            detail = (await c.get(f"/api/v1/alerts/{tamper}", headers=_h("p"))).json()
            assert [(h["action"], h["actor"]) for h in detail["history"]] == [
                ("opened", "system"),
                ("acknowledged", "pia"),
                ("annotated", "piet"),
                ("resolved", "pia"),
            ]
            assert (await c.get("/api/v1/alerts/not-an-id", headers=_h("p"))).status_code == 404
            resolved = (await c.get("/api/v1/alerts", params={"state": "resolved"}, headers=_h("p"))).json()
            assert [a["alert_id"] for a in resolved] == [tamper]
    finally:
        await service.close()
