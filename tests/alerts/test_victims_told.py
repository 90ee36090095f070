"""Victims are told: a confirmed breach of a rule that protects the victim (contact ban, a zone marked
``protects_victim``) warns the victim at every risk level, unless the victim opted out; warnings stop
being re-sent once the alert is resolved or the case closed; an OwnTracks phone gets the warning as a
remote command it can show, and the room a task to call."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emon.alerts import lifecycle as lc
from emon.alerts.config import AlertConfig
from emon.alerts.model import CaseInfo
from emon.alerts.routing import Routing
from emon.alerts.types import Recipient
from emon.case import Case, Risk
from emon.device import Device, DeviceKind
from emon.fix import EventType
from emon.geofence.events import EvalEventType as E
from emon.storage import alerts as st
from tests.alerts.conftest import World
from tests.alerts.helpers import OFFENDER, VICTIM, dev, prox, s
from tests.alerts.test_commands import listening
from tests.alerts.test_delivery import deliver_when_free, delivering, victim_device
from tests.harness import eventually

V = Recipient.VICTIM
HOME = "exclusion:woning"  # protects the victim
STADIUM = "exclusion:stadion"  # an ordinary exclusion zone


def info(risk: Risk, *, notifications: bool = True, closed: bool = False) -> CaseInfo:
    return CaseInfo(
        "case-1",
        risk,
        OFFENDER,
        VICTIM,
        victim_rules=frozenset({"proximity", HOME}),
        victim_notifications=notifications,
        closed=closed,
    )


@pytest.mark.parametrize(
    ("event", "rule", "risk", "notifications", "victim_told"),
    [
        (E.EXCLUSION_BREACH, HOME, Risk.LOW, True, True),  # protects the victim: told at low risk too
        (E.EXCLUSION_BREACH, HOME, Risk.MEDIUM, True, True),
        (E.EXCLUSION_BREACH, STADIUM, Risk.LOW, True, False),  # the matrix decides for other zones
        (E.EXCLUSION_BREACH, STADIUM, Risk.HIGH, True, True),
        (E.EXCLUSION_PRE_ALERT, HOME, Risk.LOW, True, False),  # only confirmed violations
        (E.PROXIMITY_BREACH, "proximity", Risk.LOW, True, True),
        (E.PROXIMITY_BREACH, "proximity", Risk.HIGH, False, False),  # the victim opted out
        (E.EXCLUSION_BREACH, HOME, Risk.HIGH, False, False),
    ],
)
def test_who_warns_the_victim(
    event: E, rule: str, risk: Risk, notifications: bool, victim_told: bool
) -> None:
    ev = prox(event, s(0), -25.0, rule=rule)
    change = lc.on_evaluation(
        None,
        ev,
        info(risk, notifications=notifications),
        Routing(),
        AlertConfig(),
        suppressed=False,
        now=s(1),
    )
    assert change is not None
    assert (V in change.alert.recipients, V in change.notify) == (victim_told, victim_told)
    assert Recipient.PROBATION in change.alert.recipients  # the room is always told


def test_opted_out_victim_still_gets_the_panic_confirmation_a_closed_case_nothing() -> None:
    for case, told in ((info(Risk.LOW, notifications=False), True), (info(Risk.LOW, closed=True), False)):
        change = lc.on_device_event(
            None,
            dev(EventType.PANIC, s(0), VICTIM),
            case,
            "victim_device",
            Routing(),
            AlertConfig(),
            suppressed=False,
            now=s(1),
        )
        assert change is not None and (V in change.notify) is told


def test_worsening_into_a_protecting_breach_adds_the_victim() -> None:
    pre = lc.on_evaluation(
        None,
        prox(E.EXCLUSION_PRE_ALERT, s(0), 50.0, rule=HOME),
        info(Risk.LOW),
        Routing(),
        AlertConfig(),
        suppressed=False,
        now=s(1),
    )
    assert pre is not None and V not in pre.alert.recipients
    worse = lc.on_evaluation(
        pre.alert,
        prox(E.EXCLUSION_BREACH, s(60), -30.0, rule=HOME),
        info(Risk.LOW),
        Routing(),
        AlertConfig(),
        suppressed=False,
        now=s(61),
    )
    assert worse is not None and worse.action == "worsened" and V in worse.notify


def case_with(risk: str, *, protects: bool = True, notifications: str = "all") -> Case:
    return Case.model_validate(
        {
            "case_id": "case-1",
            "risk": risk,
            "offender_device": OFFENDER,
            "victim_device": VICTIM,
            "residence": {"lat": 52.05, "lon": 5.05},
            "order": {
                "contact_ban_m": 500,
                "victim_notifications": notifications,
                "exclusion_zones": [
                    {
                        "name": "woning",
                        "circle": {"lat": 52.0907, "lon": 5.1214, "radius_m": 300},
                        "protects_victim": protects,
                    },
                ],
            },
        }
    )


def test_order_schema_defaults_and_rejects_unknown_choice() -> None:
    assert case_with("low", protects=False).order.victim_notifications == "all"
    assert case_with("low").order.exclusion_zones[0].protects_victim is True
    with pytest.raises(ValueError, match="victim_notifications"):
        case_with("low", notifications="sometimes")


# -- through the real servers -------------------------------------------------------------------

pytest_integration = pytest.mark.integration  # the tests below use the real servers


@pytest_integration
async def test_exclusion_breach_of_a_protecting_zone_warns_the_victim_at_low_risk(world: World) -> None:
    world.casebook.put(case_with("low"))
    service = world.service()
    async with victim_device(world) as inbox, delivering(service):
        now = datetime.now(UTC)
        await service.on_evaluation(
            [prox(E.EXCLUSION_BREACH, now, -40.0, rule=HOME, episode=now)], now, time.monotonic()
        )
        note = await asyncio.wait_for(inbox.get(), 5)
        assert note["type"] == "exclusion_breach" and "52.0907" not in json.dumps(note)
        [alert] = await service.open_alerts("case-1")
        assert alert["risk"] == "low" and "victim" in alert["recipients"]


@pytest_integration
async def test_opt_out_suppresses_victim_warnings_but_not_the_room(world: World) -> None:
    world.casebook.put(case_with("high", notifications="none"))
    service = world.service()
    async with victim_device(world) as inbox, delivering(service):
        now = datetime.now(UTC)
        await service.on_evaluation(
            [
                prox(E.PROXIMITY_BREACH, now, 120.0, episode=now),
                prox(E.EXCLUSION_BREACH, now, -40.0, rule=HOME, episode=now),
            ],
            now,
            time.monotonic(),
        )
        await world.webhook.wait_for(2)  # police still get both
        alerts = await service.open_alerts("case-1")
        assert sorted(a["type"] for a in alerts) == ["exclusion_breach", "proximity_breach"]
        for a in alerts:
            assert "victim" not in a["recipients"]
            detail = await service.get_alert(a["alert_id"])
            assert [d for d in detail["deliveries"] if d["channel"] == "victim"] == []
        await asyncio.sleep(0.3)
        assert inbox.empty()


async def _victim_rows(world: World, alert_id: str) -> list[tuple[str, str]]:
    async with world.db.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT channel, state FROM alert_outbox WHERE alert_id = %s AND channel = 'victim'", (alert_id,)
        )
        return [(str(r[0]), str(r[1])) for r in await cur.fetchall()]


@pytest_integration
@pytest.mark.parametrize("how", ["resolved", "case_closed"])
async def test_warnings_stop_being_resent_once_resolved_or_closed(world: World, how: str) -> None:
    service = world.service()
    async with victim_device(world) as inbox, delivering(service):
        now = datetime.now(UTC)
        await service.on_evaluation(
            [prox(E.PROXIMITY_BREACH, now, 120.0, episode=now)], now, time.monotonic()
        )
        first = await asyncio.wait_for(inbox.get(), 5)
        await deliver_when_free(service, now + timedelta(seconds=31))  # not acknowledged: re-sent
        again = await asyncio.wait_for(inbox.get(), 5)
        assert again["notification_id"] == first["notification_id"]
        if how == "resolved":
            await service.act(
                first["alert_id"], "resolve", "room", datetime.now(UTC), outcome="police on site"
            )
        else:
            assert await service.case_closed("case-1", datetime.now(UTC)) == 1
        assert await _victim_rows(world, first["alert_id"]) == [("victim", "cancelled")]
        for later in (62, 93, 600):  # no re-send, no escalation for a missing ack
            await service.worker.deliver_due(now + timedelta(seconds=later))
        await service.tick(now + timedelta(seconds=120))
        await asyncio.sleep(0.3)
        assert inbox.empty()
        detail = await service.get_alert(first["alert_id"])
        assert not any(h["action"] == "victim_not_acknowledged" for h in detail["history"])


@pytest_integration
async def test_owntracks_phone_gets_the_warning_as_a_command_it_shows_and_the_room_a_task(
    world: World,
) -> None:
    world.registry.add(Device(VICTIM, DeviceKind.VICTIM_DEVICE, owntracks_topic="owntracks/anna/phone"))
    service = world.service()
    topic = f"{world.prefix}/owntracks/anna/phone/cmd"
    async with listening([topic]) as inbox, delivering(service), world.hub.subscribe() as room:
        now = datetime.now(UTC)
        await service.on_evaluation(
            [prox(E.PROXIMITY_BREACH, now, 120.0, episode=now)], now, time.monotonic()
        )
        bodies: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while not any(b.get("action") == "action" for b in bodies):
                bodies.append(json.loads((await inbox.get())[1]))
        warning = next(b for b in bodies if b.get("action") == "action")
        assert warning["_type"] == "cmd" and "contactverbod" in warning["notification"]
        assert "52.09" not in json.dumps(warning) and "120" not in json.dumps(warning)
        tasks = await service.tasks.list(case_id="case-1")
        assert [(t["kind"], t["priority"], t["detail"]["reason"]) for t in tasks] == [
            ("inform_victim", "critical", "OwnTracks phone: warning may not be shown")
        ]
        kinds = []
        async with asyncio.timeout(3):
            while "task" not in kinds:
                kinds.append((await room.get())[0])

        async def delivered() -> st.Delivery | None:  # the worker commits just after the publish
            async with world.db.pool.connection() as conn:
                rows = [d for d in await st.commands(conn, "case-1") if d.msg_type == "owntracks_warning"]
            return rows[0] if len(rows) == 1 and rows[0].state == "delivered" else None

        row = await eventually(delivered, within=5)
        assert not row.requires_ack and row.attempts == 1  # sent once: the app cannot acknowledge


@pytest_integration
async def test_a_victim_without_device_gets_one_call_task_per_alert_type(world: World) -> None:
    world.casebook.put(
        world.casebook.documents()[0].model_copy(update={"risk": Risk.MEDIUM, "victim_device": None})
    )
    service = world.service()
    now = datetime.now(UTC)
    pre = prox(E.PROXIMITY_PRE_ALERT, now, 800.0, episode=now)
    await service.on_evaluation([pre, pre], now, time.monotonic())  # a replay: still one task
    tasks = await service.tasks.list(case_id="case-1")
    assert [(t["kind"], t["priority"], t["detail"]["alert_type"]) for t in tasks] == [
        ("inform_victim", "high", "proximity_pre_alert")
    ]
    later = now + timedelta(seconds=30)
    await service.on_evaluation(
        [prox(E.PROXIMITY_BREACH, later, 150.0, episode=now)], later, time.monotonic()
    )
    tasks = await service.tasks.list(case_id="case-1")
    assert sorted((t["detail"]["alert_type"], t["detail"]["round"]) for t in tasks) == [
        ("proximity_breach", 2),
        ("proximity_pre_alert", 1),
    ]
    assert {t["alert_id"] for t in tasks} == {tasks[0]["alert_id"]}
    closer = now + timedelta(seconds=40)  # 110 m closer: the victim is re-notified, the room already calls
    await service.on_evaluation([prox(E.BREACH_UPDATE, closer, 40.0, episode=now)], closer, time.monotonic())
    assert len(await service.tasks.list(case_id="case-1")) == 2
    detail = await service.get_alert(tasks[0]["alert_id"])
    assert [h["action"] for h in detail["history"]].count("closer") == 1
    assert [h["detail"]["reason"] for h in detail["history"] if h["action"] == "victim_not_notified"] == [
        "no victim device"
    ] * 3
    await service.close()
