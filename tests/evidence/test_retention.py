"""Retention removes the positions of cases closed longer than the period — not of a case under legal hold —
and records what it removed; order versions are listed with who, when and why."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emon.geo import destination
from emon.storage.audit import AuditQuery
from emon.storage.retention import apply_retention, retention_logged
from tests.evidence.helpers import VICTIM_AT, case_doc, emon_cli, token
from tests.harness import Running, eventually, publish, running_emon

pytestmark = pytest.mark.integration


async def count(em: Running, sql: str, *params: Any) -> int:
    async with em.runtime.db.pool.connection() as conn:
        cur = await conn.execute(sql.encode(), params)
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def closed_case_with_fixes(em: Running, n: int, probation: str, offender_m: float = 5000) -> None:
    """Case ``case-{n}`` (tag-{n}, victim-{n}) with three fixes each stored (the offender ``offender_m``
    from the victim), then closed."""
    tag, victim = f"tag-{n}", f"victim-{n}"
    async with em.client(probation) as c:
        for device, kind in ((tag, "ankle_tag"), (victim, "victim_device")):
            assert (
                await c.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            ).status_code == 201
        doc = {**case_doc(f"case-{n}", 300), "offender_device": tag, "victim_device": victim}
        assert (await c.post("/api/v1/cases", json=doc)).status_code == 201
    now = datetime.now(UTC)
    for i in range(3):
        for device, d in ((victim, 0), (tag, offender_m)):
            lat, lon = destination(*VICTIM_AT, 0, d)
            body = {
                "ts": (now - timedelta(seconds=30 - i)).isoformat(),
                "lat": lat,
                "lon": lon,
                "acc": 8,
                "seq": i,
            }
            await publish(em.topic(f"emon/v1/fix/{device}"), json.dumps(body))

    async def stored() -> bool:
        return await count(em, "SELECT count(*) FROM fixes WHERE device_id = ANY (%s)", [tag, victim]) == 6

    await eventually(stored)
    async with em.client(probation) as c:
        r = await c.post(f"/api/v1/cases/case-{n}/close", params={"reason": "order ended"})
        assert r.status_code == 200, r.text


@pytest.mark.timeout(60)
async def test_retention_removes_old_positions_but_not_held_cases() -> None:
    async with running_emon() as em:
        probation, prosecutor, police = [await token(em, r) for r in ("probation", "prosecutor", "police")]
        await closed_case_with_fixes(em, 1, probation)
        await closed_case_with_fixes(em, 2, probation)
        async with em.client(police) as c:
            refused = await c.put("/api/v1/cases/case-2/legal-hold", json={"hold": True, "reason": "trial"})
            assert refused.status_code == 403
        async with em.client(prosecutor) as c:
            assert (await c.put("/api/v1/cases/case-2/legal-hold", json={"hold": True})).status_code == 422
            r = await c.put(
                "/api/v1/cases/case-2/legal-hold", json={"hold": True, "reason": "evidence in 12/345"}
            )
            assert (
                r.status_code == 200
                and r.json()["legal_hold"] is True
                and r.json()["by"] == "prosecutor-user"
            )

        # Not yet past the period: nothing removed.
        assert await apply_retention(em.runtime.db, datetime.now(UTC), 30, em.runtime.audit) == []
        later = datetime.now(UTC) + timedelta(days=31)
        removed = await apply_retention(em.runtime.db, later, 30, em.runtime.audit)
        assert [(r.case_id, r.fixes, r.devices) for r in removed] == [("case-1", 6, ("tag-1", "victim-1"))]
        assert (
            await count(em, "SELECT count(*) FROM fixes WHERE device_id = ANY (%s)", ["tag-1", "victim-1"])
            == 0
        )
        assert (
            await count(em, "SELECT count(*) FROM fixes WHERE device_id = ANY (%s)", ["tag-2", "victim-2"])
            == 6
        )
        assert await count(em, "SELECT count(*) FROM eval_snapshots WHERE case_id = 'case-1'") == 0
        assert await count(em, "SELECT count(*) FROM eval_snapshots WHERE case_id = 'case-2'") > 0
        logged = await retention_logged(em.runtime.db, "case-1")
        assert len(logged) == 1 and logged[0]["fixes"] == 6 and logged[0]["devices"] == ["tag-1", "victim-1"]
        assert await retention_logged(em.runtime.db, "case-2") == []
        # … and in the audit log, committed with the removal.
        recorded = await em.runtime.audit.query(AuditQuery(action="retention.remove"))
        assert [(r.case_id, r.user_name, json.loads(r.detail)["fixes"]) for r in recorded] == [
            ("case-1", "system:retention", 6)
        ]
        # Run again: nothing left to remove, nothing recorded twice.
        assert await apply_retention(em.runtime.db, later, 30, em.runtime.audit) == []

        # The hold released: the next run removes case-2's positions too (closed > 0.9 s ago by then).
        async with em.client(prosecutor) as c:
            assert (await c.put("/api/v1/cases/case-2/legal-hold", json={"hold": False})).status_code == 200
        await asyncio.sleep(1.0)
        out = emon_cli(em.settings, "retention", "--days", "0.00001")
        assert out.returncode == 0 and "case case-2: 6 fixes" in out.stdout, out.stdout + out.stderr
        recorded = await em.runtime.audit.query(AuditQuery(action="retention.remove", case_id="case-2"))
        assert [r.user_name.startswith("cli:") for r in recorded] == [True]


@pytest.mark.timeout(60)
async def test_versions_list_who_when_and_why_and_decisions_carry_the_version() -> None:
    async with running_emon() as em:
        probation, police = await token(em, "probation"), await token(em, "police")
        await closed_case_with_fixes(em, 3, probation, offender_m=800)
        async with em.client(police) as c:
            r = await c.get("/api/v1/cases/case-3/versions")
            assert r.status_code == 200
            versions = r.json()
            assert (await c.get("/api/v1/cases/nope/versions")).status_code == 404
        assert [(v["version"], v["action"], v["changed_by"], v["reason"]) for v in versions] == [
            (1, "create", "probation-user", None),
            (2, "close", "probation-user", "order ended"),
        ]
        assert all(datetime.fromisoformat(v["changed_at"]).tzinfo is not None for v in versions)
        assert versions[1]["document"]["status"] == "closed"
        # Decisions made while version 1 was in force name it (column and explanation).
        assert await count(em, "SELECT count(*) FROM eval_events WHERE case_id = 'case-3'") > 0
        assert (
            await count(
                em,
                "SELECT count(*) FROM eval_events WHERE case_id = 'case-3' AND "
                "(order_version IS DISTINCT FROM 1 OR "
                "(explanation -> 'detail' ->> 'order_version')::int IS DISTINCT FROM 1)",
            )
            == 0
        )


@pytest.mark.timeout(60)
async def test_the_retention_setting_removes_positions_while_emon_runs() -> None:
    async with running_emon(retention_days=0.00001, retention_check_s=0.2) as em:  # 0.86 s after closing
        probation = await token(em, "probation")
        await closed_case_with_fixes(em, 4, probation)

        async def removed() -> bool:
            return (
                await count(
                    em, "SELECT count(*) FROM fixes WHERE device_id = ANY (%s)", ["tag-4", "victim-4"]
                )
                == 0
            )

        await eventually(removed, within=10)
        assert [r["fixes"] for r in await retention_logged(em.runtime.db, "case-4")] == [6]
