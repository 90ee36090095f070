"""The enforceability check through the running service: roles and the inspection's case."""

from __future__ import annotations

import json

import pytest

from emon.geo import destination
from emon.storage.audit import AuditQuery
from tests.harness import Running

pytestmark = pytest.mark.integration

VICTIM_HOME = (52.0907, 5.1214)


async def test_prosecutor_checks_the_inspection_case(emon: Running) -> None:
    residence = destination(*VICTIM_HOME, 45, 800)
    request = {
        "residence": {"lat": residence[0], "lon": residence[1]},
        "order": {
            "exclusion_zones": [
                {"name": "woning", "circle": {"lat": VICTIM_HOME[0], "lon": VICTIM_HOME[1], "radius_m": 500}}
            ]
        },
        "protected_places": [{"name": "woning", "position": {"lat": VICTIM_HOME[0], "lon": VICTIM_HOME[1]}}],
        "mandatory_places": [],
        "victim_device": False,
    }
    tokens = {role: await emon.token_for(role) for role in ("prosecutor", "police")}
    async with emon.client(tokens["prosecutor"]) as om:
        r = await om.post("/api/v1/feasibility", json=request)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["enforceable"] is False
        (too_close,) = [f for f in body["findings"] if f["code"] == "RESIDENCE_TOO_CLOSE"]
        assert too_close["figures"]["distance_m"] == pytest.approx(300, abs=1)
        bad = await om.post("/api/v1/feasibility", json={**request, "residence": {"lat": 95, "lon": 5}})
        assert bad.status_code == 422 and bad.json()["field"].startswith("residence")
    async with emon.client(tokens["police"]) as police:
        assert (await police.post("/api/v1/feasibility", json=request)).status_code == 403
    # Each check is in the audit log (verdict and finding codes, no coordinates); the refusal too.
    checks = await emon.runtime.audit.query(AuditQuery(action="feasibility.check"))
    assert [(r.role, r.outcome, json.loads(r.detail)["enforceable"]) for r in checks] == [
        ("prosecutor", "allowed", False)
    ]
    assert "RESIDENCE_TOO_CLOSE" in json.loads(checks[0].detail)["findings"]
    assert str(VICTIM_HOME[0]) not in checks[0].detail
    async with emon.client(None) as anonymous:
        assert (await anonymous.post("/api/v1/feasibility", json=request)).status_code == 401
