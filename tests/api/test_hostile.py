"""Hostile API calls get a clear error, never a crash, and the service keeps serving."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.harness import Running

pytestmark = pytest.mark.integration


async def test_hostile_requests_are_refused_cleanly(emon: Running) -> None:
    async with emon.client() as c:
        huge = await c.post(
            "/api/v1/cases",
            content=b"{" + b" " * (3 * 1024 * 1024) + b"}",
            headers={"content-type": "application/json"},
        )
        assert huge.status_code == 413
        assert (
            await c.post("/api/v1/cases", content=b"{nope", headers={"content-type": "application/json"})
        ).status_code == 400
        bad_case = await c.post("/api/v1/cases", json={"case_id": "x", "risk": "extreme"})
        assert bad_case.status_code == 422
        assert bad_case.json()["detail"]["field"] == "case.risk"
        bad_device = await c.post("/api/v1/devices", json={"device_id": "../../etc", "kind": "ankle_tag"})
        assert bad_device.status_code == 422
        unknown_kind = await c.post("/api/v1/devices", json={"device_id": "ok", "kind": "drone"})
        assert unknown_kind.status_code == 422
        track = await c.get("/api/v1/devices/nope/track", params={"from": "yesterday"})
        assert track.status_code in (404, 422)
        no_case = await c.post(
            "/api/v1/cases",
            json={
                "case_id": "c",
                "risk": "low",
                "offender_device": "ghost",
                "residence": {"lat": 52, "lon": 5},
                "order": {},
            },
        )
        assert no_case.status_code == 422 and no_case.json()["detail"]["field"] == "case.offender_device"
        assert (await c.get("/readyz")).status_code == 200


async def test_a_victims_position_is_private_unless_an_alert_is_open(emon: Running) -> None:
    import json
    from datetime import UTC, datetime

    from tests.harness import eventually, publish

    async with emon.client() as admin:
        for device, kind in (("tag-p", "ankle_tag"), ("victim-p", "victim_device")):
            assert (
                await admin.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            ).status_code == 201
        case = {
            "case_id": "cp",
            "risk": "high",
            "offender_device": "tag-p",
            "victim_device": "victim-p",
            "residence": {"lat": 52.2, "lon": 5.2},
            "order": {"contact_ban_m": 300},
        }
        assert (await admin.post("/api/v1/cases", json=case)).status_code == 201
    probation = await emon.token_for("probation")
    now = datetime.now(UTC).isoformat()
    await publish(
        emon.topic("emon/v1/fix/victim-p"), json.dumps({"ts": now, "lat": 52.0, "lon": 5.0, "acc": 9})
    )

    async def stored() -> bool:
        return await emon.runtime.live.latest("victim-p") is not None

    await eventually(stored)
    async with emon.client(probation) as c:
        assert (await c.get("/api/v1/devices/victim-p/latest")).status_code == 403
        assert (await c.get("/api/v1/devices/victim-p/track")).status_code == 403
    async with emon.client() as admin:  # the rule holds for an admin too
        assert (await admin.get("/api/v1/devices/victim-p/latest")).status_code == 403
    # A panic press opens an alert on the victim's case: now probation may see where the victim is.
    await publish(emon.topic("emon/v1/event/victim-p"), json.dumps({"ts": now, "type": "panic"}))

    async def visible() -> bool:
        async with emon.client(probation) as c:
            r = await c.get("/api/v1/devices/victim-p/latest", headers={"X-Purpose": "alert_response"})
            return r.status_code == 200

    await eventually(visible)
    async with emon.client(probation) as c:
        refused = await c.get("/api/v1/devices/victim-p/latest")  # no purpose: refused
        assert (refused.status_code, refused.json()["detail"]["error"]) == (400, "purpose_required")
        assert (
            await c.get("/api/v1/devices/victim-p/latest", params={"purpose": "case_supervision"})
        ).status_code == 400  # a purpose that does not justify it
    async with emon.client(probation) as c:
        assert (await c.get("/api/v1/devices/victim-p/track")).status_code == 403


async def test_a_chunked_body_over_the_limit_is_refused_without_a_declared_length(emon: Running) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"{"
        for _ in range(48):
            yield b" " * 65536
        yield b"}"

    async with emon.client() as c:
        refused = await c.post(
            "/api/v1/cases", content=chunks(), headers={"content-type": "application/json"}
        )
        assert refused.status_code == 413
        assert (await c.get("/healthz")).status_code == 200
