"""Room tasks end to end through real Mosquitto, PostgreSQL and Redis: a victim without a device is to be
told of a breach of a zone that protects them, so the room gets "inform the victim by phone" with a
deadline; not done in time, it escalates (tick), reaches the room's live stream, and is closed with a
note over the REST API. A possible breach opens an "obtain a fresh fix / check" task at its routed priority
(low at low risk, normal at medium and high)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from emon.alerts import lifecycle as lc
from emon.alerts.config import AlertConfig
from emon.alerts.model import Change
from emon.alerts.service import Unit
from emon.alerts.types import AlertType
from emon.geo import destination
from emon.storage import alerts as st
from tests.alerts.conftest import World
from tests.alerts.helpers import OFFENDER, VICTIM
from tests.harness import Running, eventually, publish, running_emon

pytestmark = pytest.mark.integration
ZONE = (52.1000, 5.1000)


async def read_stream(em: Running, token: str, seen: list[tuple[str, dict[str, Any]]]) -> None:
    async with (
        httpx.AsyncClient(
            base_url=em.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=None
        ) as c,
        c.stream("GET", "/api/v1/stream") as r,
    ):
        event = ""
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                seen.append((event, json.loads(line.split(":", 1)[1])))


@pytest.mark.timeout(60)
async def test_victim_without_device_gets_a_phone_task_that_escalates_until_done() -> None:
    async with running_emon(alerts=AlertConfig(task_inform_victim_s=0.6, task_escalate_s=0.6)) as em:
        residence = destination(*ZONE, 180, 8000)
        case = {
            "case_id": "case-t",
            "risk": "low",
            "offender_device": "tag-t",
            "residence": {"lat": residence[0], "lon": residence[1]},
            "order": {
                "exclusion_zones": [
                    {
                        "name": "woning",
                        "protects_victim": True,
                        "circle": {"lat": ZONE[0], "lon": ZONE[1], "radius_m": 300},
                    }
                ]
            },
        }
        async with em.client() as admin:
            assert (
                await admin.post("/api/v1/devices", json={"device_id": "tag-t", "kind": "ankle_tag"})
            ).status_code == 201
            assert (await admin.post("/api/v1/cases", json=case)).status_code == 201
        probation = await em.token_for("probation", name="room-1")
        seen: list[tuple[str, dict[str, Any]]] = []
        reader = asyncio.create_task(read_stream(em, probation, seen))
        try:
            await asyncio.sleep(0.3)
            # Two fixes in the zone 35 s apart: no single fix proves a breach (docs/safety.md), two
            # independent ones (correlation weight min(1, 35 s / 30 s) = 1) do.
            now = datetime.now(UTC)
            for seq, age_s in ((1, 40), (2, 5)):
                ts = (now - timedelta(seconds=age_s)).isoformat()
                fix = {"ts": ts, "lat": ZONE[0], "lon": ZONE[1], "acc": 5, "seq": seq}
                await publish(em.topic("emon/v1/fix/tag-t"), json.dumps(fix))

            async with em.client(probation) as room:

                async def task() -> dict[str, Any] | None:
                    tasks = (await room.get("/api/v1/tasks", params={"case_id": "case-t"})).json()
                    return tasks[0] if tasks else None

                first = await eventually(task, within=15)
                assert (first["kind"], first["state"], first["detail"]["reason"]) == (
                    "inform_victim",
                    "open",
                    "no victim device",
                )
                [alert] = (await room.get("/api/v1/alerts", params={"case_id": "case-t"})).json()
                assert (alert["type"], alert["risk"], first["alert_id"]) == (
                    "exclusion_breach",
                    "low",
                    alert["alert_id"],
                )
                assert "victim" in alert["recipients"]  # the rule protects the victim, even at low risk

                async def escalated() -> dict[str, Any] | None:
                    t = await task()
                    return t if t and t["escalation_level"] >= 2 else None

                late = await eventually(escalated, within=15)
                assert late["priority"] == "critical" and late["escalated_at"] is not None

                r = await room.post(
                    f"/api/v1/tasks/{first['task_id']}/done", json={"note": "victim called, safe"}
                )
                assert (
                    r.status_code == 200 and r.json()["state"] == "done" and r.json()["done_by"] == "room-1"
                )
                level = r.json()["escalation_level"]
                await asyncio.sleep(1.5)  # past two more deadlines: a done task no longer escalates
                detail = (await room.get(f"/api/v1/tasks/{first['task_id']}")).json()
                assert detail["escalation_level"] == level and detail["note"] == "victim called, safe"
                actions = [h["action"] for h in detail["history"]]
                assert actions[0] == "created" and actions[-1] == "done" and actions.count("escalated") >= 2

                assert (
                    await room.post(f"/api/v1/tasks/{first['task_id']}/done", json={"note": "x"})
                ).status_code == 409
                assert (
                    await room.post("/api/v1/tasks/not-a-task/done", json={"note": "x"})
                ).status_code == 404
                assert (await room.post(f"/api/v1/tasks/{first['task_id']}/done", json={})).status_code == 422
                assert (await room.get("/api/v1/tasks", params={"state": "open"})).json() == []
            async with em.client(None) as anonymous:
                assert (await anonymous.get("/api/v1/tasks")).status_code == 401

            await eventually(lambda: _seen_done(seen), within=5)
            levels = [b["escalation_level"] for k, b in seen if k == "task"]
            assert levels[0] == 0 and max(levels) >= 2
        finally:
            reader.cancel()


async def _seen_done(seen: list[tuple[str, dict[str, Any]]]) -> bool:
    return any(k == "task" and b["state"] == "done" for k, b in seen)


async def test_a_possible_breach_opens_a_low_priority_check_task_and_asks_both_devices(world: World) -> None:
    service = world.service()
    now = datetime.now(UTC)
    case = service._case("case-1")
    alert = lc._new(
        case,
        AlertType.POSSIBLE_BREACH,
        "proximity",
        now,
        service.routing,
        now=now,
        late=False,
        live=True,
        suppressed=False,
        explanation={"why": "victim fix 700 s old"},
    )
    change = Change(alert, "opened", notify=lc.deliverable(alert, alert.recipients))

    async def one(conn: st.Conn, unit: Unit, item: Change) -> list[Change]:
        return [item]

    async with world.hub.subscribe() as room:
        await service._batch([change, change], one, now, time.monotonic(), "test")  # a replay: still one task
        kinds = [(await asyncio.wait_for(room.get(), 2))[0] for _ in range(3)]
    assert sorted(kinds) == ["alert", "alert", "task"]
    [task] = await service.tasks.list(case_id="case-1")
    # The task takes the alert's routed priority: a possible breach is LOW at low risk, NORMAL at medium and
    # high risk (emon/alerts/routing.py); case-1 is high risk.
    assert (task["kind"], task["priority"], task["alert_id"]) == ("check_possible", "normal", alert.alert_id)
    assert task["priority"] == alert.priority.value
    async with world.db.pool.connection() as conn:
        commands = await st.commands(conn, "case-1")
    assert sorted(c.target for c in commands) == [f"emon/v1/cmd/{OFFENDER}", f"emon/v1/cmd/{VICTIM}"]
    assert {c.reason for c in commands} == {"possible_breach"}
    await service.close()
