"""Instance-wide duties on one instance at a time: the coordinator lease's holder, on two ``emon serve``.

The orders lifecycle pass (reminders) and alerting's tick (escalation, silence) run only where the
coordinator lease is held; a reminder that falls due is one task; when the coordinator is killed -9 the
survivor takes the duties over within the bound, and a reminder due afterwards is again one task.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.cluster.instances import Instance, cluster
from tests.cluster.test_failover import BOUND_S, LEASE_S, metric
from tests.harness import eventually

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


async def coordinator(i: Instance) -> bool:
    async with i.client() as http:
        return bool((await http.get("/readyz")).json()["cluster"]["coordinator"])


async def add_case(i: Instance, case_id: str) -> None:
    """A case whose 60-day order ends in 20 days: its 21-days-before reminder is due now."""
    start = datetime.now(UTC) - 40 * DAY
    order: dict[str, Any] = {
        "kind": "gedragsaanwijzing",
        "contact_ban_m": 300,
        "decision": {"authority": "OM Amsterdam", "reference": "13/123456-26", "date": start.isoformat()},
        "valid_from": start.isoformat(),
        "valid_until": (start + 60 * DAY).isoformat(),
    }
    async with i.client() as http:
        for device, kind in ((f"tag-{case_id}", "ankle_tag"), (f"vic-{case_id}", "victim_device")):
            r = await http.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            assert r.status_code == 201, r.text
        body = {
            "case_id": case_id,
            "risk": "high",
            "offender_device": f"tag-{case_id}",
            "victim_device": f"vic-{case_id}",
            "residence": {"lat": 52.30, "lon": 4.80},
            "order": order,
        }
        r = await http.post("/api/v1/cases", json=body)
        assert r.status_code == 201, r.text


async def reminders(i: Instance, case_id: str) -> list[dict[str, Any]]:
    async with i.client() as http:
        r = await http.get("/api/v1/tasks", params={"case_id": case_id, "kind": "order_reminder"})
        assert r.status_code == 200, r.text
        return list(r.json())


async def _runs(i: Instance, duty: str) -> float:
    return await metric(i, f'emon_duty_runs_total{{duty="{duty}"}}')


async def _ran(i: Instance, duty: str) -> bool:
    return await _runs(i, duty) > 0


@pytest.mark.timeout(120)
async def test_the_orders_pass_and_alert_tick_run_on_the_coordinator_only_and_move_when_it_dies() -> None:
    async with cluster(lease_s=LEASE_S) as c:
        a, b = c.instances
        for i in (a, b):
            i.env["EMON_ORDER_TICK_S"] = "0.5"  # both would run many passes if both ran them
        a.start()
        await a.ready()
        await eventually(lambda: coordinator(a), within=10)
        b.start()
        await b.ready()
        await add_case(a, "c-1")
        due = await eventually(lambda: reminders(b, "c-1"), within=10)
        await eventually(lambda: _ran(a, "orders"), within=5)
        await eventually(lambda: _ran(a, "alerts"), within=5)
        ran = await _runs(a, "orders")
        await eventually(lambda: _more(_runs(a, "orders"), ran + 3), within=5)  # passes keep running on a
        assert not await coordinator(b)
        assert await _runs(b, "orders") == 0 and await _runs(b, "alerts") == 0  # never on b
        assert len(await reminders(b, "c-1")) == len(due) == 1

        a.signal(signal.SIGKILL)
        await eventually(lambda: coordinator(b), within=BOUND_S)
        await eventually(lambda: _ran(b, "orders"), within=2)
        await eventually(lambda: _ran(b, "alerts"), within=2)
        await add_case(b, "c-2")  # due after the coordinator died: the survivor reminds, once
        assert len(await eventually(lambda: reminders(b, "c-2"), within=10)) == 1
        assert len(await reminders(b, "c-1")) == 1


async def _more(value: Any, than: float) -> bool:
    return bool(await value >= than)
