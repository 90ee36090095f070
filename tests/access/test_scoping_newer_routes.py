"""Room tasks, order versions, legal hold and evidence packs are scoped by unit and audited like every
other case route: another unit's user gets 403 ``out_of_scope`` (recorded), the case's own units get
the data (recorded), and a pack download is in the audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emon.alerts.types import Priority
from emon.storage.audit import AuditQuery
from emon.tasks.model import TaskKind, new_task
from tests.evidence.helpers import OFFENDER, VICTIM, breach_alert, case_doc, walk_in, write_key
from tests.harness import Running, running_emon

pytestmark = pytest.mark.integration

UNITS = ["probation:noord-holland", "om:amsterdam"]


async def setup(em: Running) -> str:
    async with em.client() as c:
        for device, kind in ((OFFENDER, "ankle_tag"), (VICTIM, "victim_device")):
            assert (
                await c.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            ).status_code == 201
        r = await c.post(
            "/api/v1/cases",
            json={**case_doc("case-e", 300), "units": UNITS},
            params={"reason": "court order 12/345"},
        )
        assert r.status_code == 201, r.text
    task = new_task(TaskKind.CHECK_POSSIBLE, "case-e", None, Priority.HIGH, datetime.now(UTC), 600)
    async with em.runtime.db.pool.connection() as conn, conn.transaction():
        assert await em.runtime.alerts.tasks.create(conn, task, datetime.now(UTC)) is not None
    return task.task_id


async def refused(em: Running, action: str) -> list[tuple[str | None, str]]:
    found = await em.runtime.audit.query(AuditQuery(action=action, outcome="refused"))
    return [(r.case_id, json.loads(r.detail)["error"]) for r in found]


@pytest.mark.timeout(90)
async def test_another_units_user_is_refused_tasks_versions_and_packs_and_it_is_audited(
    tmp_path: Path,
) -> None:
    async with running_emon(signing_key_file=str(write_key(tmp_path))) as em:
        task_id = await setup(em)
        await walk_in(em, [2400, 2000, 1600, 1200, 800, 400, 150, 100])
        alert_id = (await breach_alert(em))["alert_id"]
        mine = await em.token_for("probation", ["probation:noord-holland"])
        other = await em.token_for("probation", ["probation:utrecht"])
        om = await em.token_for("prosecutor", ["om:amsterdam"])
        other_om = await em.token_for("prosecutor", ["om:rotterdam"])

        async with em.client(other) as c:
            assert (await c.get("/api/v1/tasks")).json() == []  # left out, not shown
            assert (await c.get(f"/api/v1/tasks/{task_id}")).status_code == 403
            r = await c.post(f"/api/v1/tasks/{task_id}/done", json={"note": "not mine"})
            assert r.status_code == 403 and r.json()["detail"]["error"] == "out_of_scope"
            assert (await c.get("/api/v1/cases/case-e/versions")).status_code == 403
            assert (await c.get("/api/v1/cases/case-e/legal-hold")).status_code == 403
            assert (
                await c.put("/api/v1/cases/case-e/legal-hold", json={"hold": True, "reason": "x"})
            ).status_code == 403
            assert (await c.get(f"/api/v1/alerts/{alert_id}/evidence")).status_code == 403
        async with em.client(other_om) as c:
            assert (await c.get(f"/api/v1/alerts/{alert_id}/evidence")).status_code == 403
        for action in ("task.read", "task.done", "case.versions", "case.legal_hold.read", "case.legal_hold"):
            assert await refused(em, action) == [("case-e", "out_of_scope")], action
        assert await refused(em, "evidence.pack") == [("case-e", "out_of_scope")] * 2

        async with em.client(mine) as c:
            listed = (await c.get("/api/v1/tasks")).json()
            # The walk also opens a possible breach before the proof (evidence 4 of 6.9): its check task
            # belongs to the same case, so this unit sees it too.
            every = await em.runtime.alerts.tasks.list()  # not through the API: that would be audited
            assert task_id in [t["task_id"] for t in listed]
            assert sorted(t["task_id"] for t in listed) == sorted(t["task_id"] for t in every)
            assert {t["case_id"] for t in listed} == {"case-e"}
            assert (await c.get("/api/v1/cases/case-e/versions")).status_code == 200
            r = await c.post(f"/api/v1/tasks/{task_id}/done", json={"note": "called the officer"})
            assert r.status_code == 200 and r.json()["state"] == "done"
        async with em.client(om) as c:
            r = await c.get(f"/api/v1/alerts/{alert_id}/evidence")
            assert r.status_code == 200 and r.headers["content-type"] == "application/zip"

        done = await em.runtime.audit.query(AuditQuery(action="task.done", outcome="allowed"))
        assert [(r.case_id, r.role) for r in done] == [("case-e", "probation")]
        listed_records = await em.runtime.audit.query(AuditQuery(action="task.list"))
        assert [r.case_id for r in listed_records] == [None, "case-e"]  # the empty list is recorded too
        packs = await em.runtime.audit.query(AuditQuery(action="evidence.pack", outcome="allowed"))
        assert [(r.case_id, r.alert_id, r.role) for r in packs] == [("case-e", alert_id, "prosecutor")]
