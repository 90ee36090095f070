"""The pages' own API: configuration for the pages, and the history of a case (its order versions)."""

from __future__ import annotations

import pytest

from tests.harness import Running

pytestmark = pytest.mark.integration

CASE = {
    "case_id": "zaak-h", "risk": "medium", "offender_device": "tag-h",
    "residence": {"lat": 52.0, "lon": 5.0},
    "order": {"exclusion_zones": [{"name": "Park", "circle": {"lat": 52.02, "lon": 5.0, "radius_m": 300}}]},
}  # fmt: skip


async def test_pages_config_has_deadlines_and_no_tiles_by_default(emon: Running) -> None:
    async with emon.client(token=None) as anyone:
        config = (await anyone.get("/api/v1/pages/config")).json()
    assert config["ack_deadline_s"] == {"critical": 60.0, "high": 300.0, "normal": 1800.0, "low": 0.0}
    assert config["tile_url"] is None and config["guideline_m"] == 1000.0


async def test_the_case_pages_history_is_the_order_versions(emon: Running) -> None:
    """One history: ``/versions`` (number, who, when, action, reason, document); ``/history`` is gone."""
    auditor = await emon.token_for("auditor")
    async with emon.client() as admin:
        assert (
            await admin.post("/api/v1/devices", json={"device_id": "tag-h", "kind": "ankle_tag"})
        ).status_code == 201
        assert (await admin.get("/api/v1/cases/zaak-h/versions")).status_code == 404
        assert (await admin.post("/api/v1/cases", json=CASE)).status_code == 201
        changed = {**CASE, "order": {**CASE["order"], "contact_ban_m": 200}}
        r = await admin.put("/api/v1/cases/zaak-h", json=changed, params={"reason": "verlengd door het OM"})
        assert r.status_code == 200
        assert (await admin.post("/api/v1/cases/zaak-h/close")).status_code == 200
        versions = (await admin.get("/api/v1/cases/zaak-h/versions")).json()
        assert (await admin.get("/api/v1/cases/zaak-h/history")).status_code == 404
    assert [(v["version"], v["action"], v["reason"]) for v in versions] == [
        (1, "create", None),
        (2, "update", "verlengd door het OM"),
        (3, "close", None),
    ]
    assert [v["changed_by"] for v in versions] == ["bootstrap-admin"] * 3
    assert "contact_ban_m" not in versions[0]["document"]["order"]
    assert versions[1]["document"]["order"]["contact_ban_m"] == 200
    async with emon.client(auditor) as c:
        assert (await c.get("/api/v1/cases/zaak-h/versions")).status_code == 403
