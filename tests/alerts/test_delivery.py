"""End to end on the real PostgreSQL, Mosquitto and a local webhook server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import xmlschema

from emon.alerts import lifecycle as lc
from emon.alerts.cap import schema_path
from emon.alerts.channels.dispatch import verify
from emon.alerts.service import AlertService
from emon.case import Risk
from emon.errors import InvalidInput
from emon.fix import EventType, Fix
from emon.geofence.events import EvalEventType as E
from emon.storage import alerts as st
from tests.alerts.conftest import SECRET, Received, World
from tests.alerts.helpers import OFFENDER, VICTIM, dev, prox
from tests.harness import eventually, listening

pytestmark = pytest.mark.integration
SCHEMA = xmlschema.XMLSchema(schema_path())
NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}


@contextlib.asynccontextmanager
async def delivering(service: AlertService) -> AsyncIterator[AlertService]:
    task = asyncio.create_task(service.run_delivery())
    try:
        yield service
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await service.close()


class Inbox:
    """The victim device's notifications, decoded, as a real MQTT subscriber received them."""

    def __init__(self, queue: asyncio.Queue[tuple[str, bytes]]) -> None:
        self.queue = queue

    async def get(self) -> dict[str, Any]:
        _, payload = await self.queue.get()
        note: dict[str, Any] = json.loads(payload)
        return note

    def empty(self) -> bool:
        return self.queue.empty()


@contextlib.asynccontextmanager
async def victim_device(world: World) -> AsyncIterator[Inbox]:
    """A real MQTT subscriber on the victim device's notify topic."""
    async with listening([f"{world.prefix}/emon/v1/notify/{VICTIM}"]) as queue:
        yield Inbox(queue)


async def deliver_when_free(service: AlertService, at: datetime) -> int:
    """``deliver_due(at)``, retried while the background worker still holds the due rows: it publishes
    before it commits, so a recipient may see a message while its row is locked (``SKIP LOCKED``)."""
    for _ in range(100):
        if sent := await service.worker.deliver_due(at):
            return sent
        await asyncio.sleep(0.05)
    return 0


def check_cap(r: Received) -> ET.Element:
    """XSD-valid CAP 1.2 with a valid Standard Webhooks signature."""
    SCHEMA.validate(r.body.decode())
    h = r.headers
    assert verify(SECRET, h["webhook-id"], int(h["webhook-timestamp"]), r.body, h["webhook-signature"])
    root = ET.fromstring(r.body)
    assert root.findtext("cap:identifier", namespaces=NS) == h["webhook-id"]
    return root


async def test_proximity_breach_reaches_victim_and_police_and_ack_stops_resends(world: World) -> None:
    service = world.service()
    async with victim_device(world) as inbox, delivering(service), world.hub.subscribe() as room:
        now = datetime.now(UTC)
        await service.on_evaluation(
            [prox(E.PROXIMITY_BREACH, now, 187.3, episode=now)], now, time.monotonic()
        )
        note = await asyncio.wait_for(inbox.get(), 5)
        assert note["type"] == "proximity_breach" and note["severity"] == "critical"
        assert set(note) == {"notification_id", "alert_id", "type", "ts", "severity", "message", "action"}
        assert "52.0907" not in json.dumps(note) and "187.3" not in json.dumps(note)

        [posted] = await world.webhook.wait_for(1)
        root = check_cap(posted)
        assert root.findtext("cap:msgType", namespaces=NS) == "Alert"
        assert len(root.findall("cap:info/cap:area", NS)) == 2  # offender and victim

        kind, body = await asyncio.wait_for(room.get(), 2)
        assert (kind, body["alert_id"], body["state"]) == ("alert", note["alert_id"], "open")

        ack = json.dumps({"notification_id": note["notification_id"], "ts": now.isoformat()}).encode()
        await service.on_ack(VICTIM, ack, datetime.now(UTC))
        detail = await service.get_alert(note["alert_id"])
        victim_rows = [d for d in detail["deliveries"] if d["channel"] == "victim"]
        assert [(d["delivery_id"], d["state"]) for d in victim_rows] == [(note["notification_id"], "acked")]
        assert detail["victim_acked_at"] is not None
        assert [d["state"] for d in detail["deliveries"] if d["channel"] == "dispatch"] == ["delivered"]
        assert [h["action"] for h in detail["history"]] == ["opened", "victim_acked"]
        assert detail["explanation"]["type"] == "proximity_breach"

        # an acknowledged warning is not re-sent, even long after
        await service.worker.deliver_due(datetime.now(UTC) + timedelta(hours=1))
        assert inbox.empty()


async def _recorded_as_sent(service: AlertService, alert_id: str) -> None:
    async def sent() -> bool:
        detail = await service.get_alert(alert_id)
        return any(d["channel"] == "victim" and d["state"] == "sent" for d in detail["deliveries"])

    await eventually(sent, within=5)


async def test_unacknowledged_victim_warning_is_resent_then_escalates(world: World) -> None:
    service = world.service()
    async with victim_device(world) as inbox, delivering(service):
        now = datetime.now(UTC)
        await service.on_evaluation(
            [prox(E.PROXIMITY_PRE_ALERT, now, 800.0, episode=now)], now, time.monotonic()
        )
        first = await asyncio.wait_for(inbox.get(), 5)
        await deliver_when_free(service, now + timedelta(seconds=31))  # resend interval passed: same id again
        again = await asyncio.wait_for(inbox.get(), 5)
        assert again["notification_id"] == first["notification_id"]
        assert world.webhook.received == []  # a pre-alert does not go to police

        await service.tick(now + timedelta(seconds=61))  # victim ack deadline passed
        detail = await service.get_alert(first["alert_id"])
        assert detail["escalated"] and "police" in detail["recipients"]
        assert detail["history"][-1]["detail"]["reason"] == "victim device did not acknowledge the warning"
        await service.worker.deliver_due(now + timedelta(seconds=61))  # the CAP was queued at the tick's time
        [posted] = await world.webhook.wait_for(1)
        check_cap(posted)


async def test_unacknowledged_alert_escalates_to_police(world: World) -> None:
    world.casebook.put(world.casebook.documents()[0].model_copy(update={"risk": Risk.LOW}))
    service = world.service()
    async with delivering(service):
        now = datetime.now(UTC)
        await service.on_device_events([dev(EventType.TAMPER, now)], now, time.monotonic())
        [alert] = await service.open_alerts("case-1")
        assert (alert["type"], alert["recipients"], alert["priority"]) == ("tamper", ["probation"], "high")
        assert await service.open_alerts_of(["case-1", "case-none"]) == [alert]  # the stream's one query
        assert await service.open_alerts_of(["case-none"]) == []
        await service.tick(now + timedelta(seconds=299))
        assert not (await service.get_alert(alert["alert_id"]))["escalated"]
        await service.tick(now + timedelta(seconds=301))
        await service.worker.deliver_due(now + timedelta(seconds=301))
        detail = await service.get_alert(alert["alert_id"])
        assert detail["escalated"] and detail["recipients"] == ["police", "probation"]
        assert detail["priority"] == "critical"
        [posted] = await world.webhook.wait_for(1)
        check_cap(posted)
        with pytest.raises(InvalidInput, match="note"):
            await service.act(alert["alert_id"], "resolve", "anna", now, outcome="checked")
        done = await service.act(
            alert["alert_id"], "resolve", "anna", now, outcome="checked", note="strap ok"
        )
        assert done["state"] == "resolved"
        cancel = await world.webhook.wait_for(2)
        root = check_cap(cancel[1])
        assert root.findtext("cap:msgType", namespaces=NS) == "Cancel"
        assert posted.headers["webhook-id"] in (root.findtext("cap:references", namespaces=NS) or "")


async def test_pending_outbox_survives_a_restart_and_is_delivered_once(world: World) -> None:
    now = datetime.now(UTC)
    breach = prox(E.PROXIMITY_BREACH, now, 150.0, episode=now)
    first = world.service()
    await first.on_evaluation([breach], now, time.monotonic())
    await first.close()  # "killed" before any delivery happened

    async with victim_device(world) as inbox:
        second = world.service()
        await second.on_evaluation([breach], now, time.monotonic())  # a replay after restart: nothing new
        async with delivering(second):
            note = await asyncio.wait_for(inbox.get(), 5)
            await world.webhook.wait_for(1)
            await asyncio.sleep(0.5)  # several worker passes
        assert inbox.empty()
        assert len(world.webhook.received) == 1
        detail = await second.get_alert(note["alert_id"])
        assert sorted(d["channel"] for d in detail["deliveries"]) == ["dispatch", "victim"]
        assert [h["action"] for h in detail["history"]] == ["opened", "updated"]


async def test_failing_webhook_retries_then_raises_its_own_alarm(world: World) -> None:
    world.webhook.statuses = [500] * 5
    service = AlertService(
        world.db,
        world.settings,
        world.hub,
        world.casebook,
        world.registry,
        world.live,
        config=world.config.__class__(
            poll_s=0.05, dispatch_backoff_base_s=0.01, dispatch_backoff_max_s=0.05, failing_after_attempts=3
        ),
    )
    async with delivering(service), world.hub.subscribe() as room:
        now = datetime.now(UTC)
        await service.on_device_events([dev(EventType.PANIC, now, VICTIM)], now, time.monotonic())
        received = await world.webhook.wait_for(6)
        assert len({r.headers["webhook-id"] for r in received}) == 1  # the same delivery, retried
        assert received[-1].body == received[0].body
        kinds = []
        while not room.empty():
            kinds.append(room.get_nowait()[0])
        assert "delivery_failing" in kinds
        [alert] = await service.open_alerts("case-1")
        assert alert["delivery_failing"] and alert["type"] == "panic"


async def test_panic_tamper_and_silence_reach_the_right_recipients(world: World) -> None:
    service = world.service()
    now = datetime.now(UTC)
    async with victim_device(world) as inbox, delivering(service):
        await service.on_device_events(
            [dev(EventType.PANIC, now, VICTIM), dev(EventType.TAMPER, now)], now, time.monotonic()
        )
        confirmation = await asyncio.wait_for(inbox.get(), 5)
        assert confirmation["type"] == "panic"
        posted = await world.webhook.wait_for(2)  # panic → police; tamper at high risk → police
        events = sorted(
            check_cap(p).findtext("cap:info/cap:eventCode/cap:value", namespaces=NS) or "" for p in posted
        )
        assert events == ["panic", "tamper"]

        await world.live.mark_seen({OFFENDER: now - timedelta(seconds=200), VICTIM: now})
        await world.live.set_latest(
            [
                Fix(OFFENDER, now - timedelta(seconds=200), 52.09, 5.12, 5.0),
                Fix(VICTIM, now - timedelta(seconds=500), 52.09, 5.12, 5.0),
            ]
        )
        await service.tick(now)
        await service.tick(now)  # still silent: no second alert
        await service.on_device_events([dev(EventType.CONNECTION_LOST, now, VICTIM)], now, time.monotonic())
        alerts = {(a["type"], a["device_id"]): a for a in await service.open_alerts("case-1")}
        assert set(alerts) == {
            ("panic", VICTIM),
            ("tamper", OFFENDER),
            ("no_communication", OFFENDER),
            ("no_fix", VICTIM),
            ("no_communication", VICTIM),
        }
        silent_tag = alerts[("no_communication", OFFENDER)]
        assert (silent_tag["recipients"], silent_tag["episode"]) == (
            ["probation"],
            (now - timedelta(seconds=200)).isoformat(),
        )
        assert alerts[("no_communication", VICTIM)]["priority"] == "high"

        await world.live.mark_seen({OFFENDER: now + timedelta(seconds=5)})
        await service.tick(now + timedelta(seconds=6))
        detail = await service.get_alert(silent_tag["alert_id"])
        assert detail["ended_at"] is not None and detail["state"] == "open"


async def test_a_closer_breach_sends_police_an_update_referencing_the_alert(world: World) -> None:
    service = world.service()
    async with delivering(service):
        now = datetime.now(UTC)
        await service.on_evaluation(
            [prox(E.PROXIMITY_BREACH, now, 400.0, episode=now)], now, time.monotonic()
        )
        [first] = await world.webhook.wait_for(1)
        later = datetime.now(UTC)  # the outbox worker runs on the wall clock
        await service.on_evaluation(
            [prox(E.BREACH_UPDATE, later, 200.0, episode=now)], later, time.monotonic()
        )
        second = (await world.webhook.wait_for(2))[1]
    root = check_cap(second)
    assert root.findtext("cap:msgType", namespaces=NS) == "Update"
    assert second.headers["webhook-id"] != first.headers["webhook-id"]
    assert first.headers["webhook-id"] in (root.findtext("cap:references", namespaces=NS) or "")
    detail = await service.get_alert(root.findtext("cap:incidents", namespaces=NS) or "")
    assert [h["action"] for h in detail["history"]] == ["opened", "closer"]


async def test_an_alert_acknowledged_after_the_snapshot_is_not_escalated(world: World) -> None:
    world.casebook.put(world.casebook.documents()[0].model_copy(update={"risk": Risk.LOW}))
    service = world.service()
    try:
        now = datetime.now(UTC)
        await service.on_device_events([dev(EventType.TAMPER, now)], now, time.monotonic())
        async with world.db.pool.connection() as conn:
            [snapshot] = await st.open_alerts(conn)  # what a tick read before a person acted
        await service.act(snapshot.alert_id, "acknowledge", "anna", now)
        due = now + timedelta(seconds=301)
        assert lc.escalation_due(snapshot, world.config, due)
        async with world.db.pool.connection() as conn, conn.transaction():
            stored = await service._decide_locked(
                conn,
                snapshot,
                lambda a: lc.escalate(a, "late", due) if lc.escalation_due(a, world.config, due) else None,
                due,
            )
        assert stored == []
        detail = await service.get_alert(snapshot.alert_id)
        assert (detail["state"], detail["escalated"]) == ("acknowledged", False)
    finally:
        await service.close()


async def test_the_commit_notify_wakes_the_worker_long_before_its_poll(world: World) -> None:
    """The one wake-up: the NOTIFY of the queued row, in this process as in another one."""
    service = AlertService(
        world.db,
        world.settings,
        world.hub,
        world.casebook,
        world.registry,
        world.live,
        config=world.config.model_copy(update={"poll_s": 60.0}),
    )
    async with delivering(service):
        await asyncio.sleep(0.3)  # the worker's first pass is done; it now waits for a wake-up or 60 s
        now = datetime.now(UTC)
        await service.on_evaluation(
            [prox(E.PROXIMITY_BREACH, now, 187.3, episode=now)], now, time.monotonic()
        )
        [posted] = await asyncio.wait_for(world.webhook.wait_for(1), 5)
        check_cap(posted)
