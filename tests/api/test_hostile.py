"""Hostile API calls get a clear error, never a crash, and the service keeps serving."""

from __future__ import annotations

import pytest

from tests.harness import Running

pytestmark = pytest.mark.integration


async def test_hostile_requests_are_refused_cleanly(emon: Running) -> None:
    async with emon.client() as c:
        huge = await c.post("/api/v1/cases", content=b"{" + b" " * (3 * 1024 * 1024) + b"}",
                            headers={"content-type": "application/json"})
        assert huge.status_code == 413
        assert (await c.post("/api/v1/cases", content=b"{nope", headers={"content-type": "application/json"})
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
        no_case = await c.post("/api/v1/cases", json={
            "case_id": "c", "risk": "low", "offender_device": "ghost", "residence": {"lat": 52, "lon": 5},
            "order": {}})
        assert no_case.status_code == 422 and no_case.json()["detail"]["field"] == "case.offender_device"
        assert (await c.get("/readyz")).status_code == 200
