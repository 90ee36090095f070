"""The tick escalates exactly the alerts whose acknowledgement deadline passed, reading only those
(st.escalation_candidates), never one acknowledged, suppressed or already escalated."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from emon.alerts.types import Priority
from emon.geofence.events import EvalEventType as E
from emon.storage import alerts as st
from tests.alerts.conftest import World
from tests.alerts.helpers import prox

pytestmark = pytest.mark.integration


async def test_an_alert_escalates_exactly_at_its_deadline_and_once(world: World) -> None:
    service = world.service()
    opened = datetime.now(UTC).replace(microsecond=0)
    try:
        await service.on_evaluation(
            [prox(E.PROXIMITY_BREACH, opened, 150.0, episode=opened)], opened, time.monotonic()
        )
        [alert] = await service.open_alerts("case-1")
        deadline = timedelta(seconds=world.config.ack_deadline_s(Priority(alert["priority"])))
        assert deadline > timedelta(0)
        await service.tick(opened + deadline - timedelta(microseconds=1))
        [still] = await service.open_alerts("case-1")
        assert not still["escalated"]
        await service.tick(opened + deadline)
        [escalated] = await service.open_alerts("case-1")
        assert escalated["escalated"] and "police" in escalated["recipients"]
        await service.tick(opened + 2 * deadline)
        actions = [h["action"] for h in (await service.get_alert(alert["alert_id"]))["history"]]
        assert actions.count("escalated") == 1
    finally:
        await service.close()


async def test_only_alerts_past_their_deadline_are_read(world: World) -> None:
    service = world.service()
    now = datetime.now(UTC).replace(microsecond=0)
    old, new, acked = (now - timedelta(minutes=m) for m in (40, 1, 50))
    try:
        batch = [prox(E.PROXIMITY_BREACH, t, 150.0, episode=t) for t in (old, new, acked)]
        await service.on_evaluation(batch, now, time.monotonic())
        by_opened = {a["episode"]: a for a in await service.open_alerts("case-1")}
        await service.act(by_opened[acked.isoformat()]["alert_id"], "acknowledge", "op", now)
        async with world.db.pool.connection() as conn:
            due = await st.escalation_candidates(
                conn, service._escalation_cutoffs(now + timedelta(minutes=10))
            )
        # opened at `now` (the batch's time): all three are 10 minutes old at the cutoff
        assert sorted(a.alert_id for a in due) == sorted(
            by_opened[t.isoformat()]["alert_id"] for t in (old, new)
        )
        async with world.db.pool.connection() as conn:
            assert await st.escalation_candidates(conn, service._escalation_cutoffs(now)) == []
            assert await st.escalation_candidates(conn, {}) == []
    finally:
        await service.close()
