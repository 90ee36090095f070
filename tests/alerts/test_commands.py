"""Locate now / pursuit mode: command bytes (pure), and through real Mosquitto, PostgreSQL and Redis:
a locate request reaches the tag and the OwnTracks phone on their command topics, carrying no reason
and no position, and a simulated device obeys it with fresh fixes that emon stores."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emon.alerts.commands import LocateRequest, commands_for
from emon.alerts.followups import locate_request_of
from emon.alerts.model import CaseInfo
from emon.case import Risk
from emon.device import Device, DeviceKind
from emon.geofence.events import Classification, EvalEvent, EvalEventType
from emon.geofence.events import EvalEventType as E
from emon.storage import alerts as st
from simulators.driver import DevicePlayer
from simulators.scenario import load_scenario
from simulators.stream import REPLY_SEQ_BASE, obey
from tests.alerts.conftest import World
from tests.alerts.helpers import OFFENDER, VICTIM, prox
from tests.harness import Running, eventually, listening, running_emon

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TAG = Device("tag-7", DeviceKind.ANKLE_TAG)
PHONE = Device("phone-7", DeviceKind.VICTIM_DEVICE, owntracks_topic="owntracks/anna/phone")
DEVICES = {d.device_id: d for d in (TAG, PHONE)}
FORBIDDEN_WORDS = ("reason", "lat", "lon", "distance", "case", "victim", "offender", "zone", "panic")


def _leaks(body: bytes) -> list[str]:
    text = body.decode().lower()
    return [w for w in FORBIDDEN_WORDS if w in text]


def test_locate_now_to_a_tag_says_report_and_nothing_else() -> None:
    [cmd] = commands_for(LocateRequest("c1", ("tag-7",), "stale victim fix", "o1"), DEVICES, NOW)
    assert cmd.topic == "emon/v1/cmd/tag-7" and cmd.kind == "locate" and cmd.not_before == NOW
    assert json.loads(cmd.body) == {
        "command_id": cmd.command_id,
        "cmd": "locate",
        "ts": "2026-03-01T12:00:00Z",
    }
    assert _leaks(cmd.body) == []


def test_pursuit_to_a_tag_adds_interval_and_end() -> None:
    until = NOW + timedelta(minutes=10)
    [cmd] = commands_for(
        LocateRequest("c1", ("tag-7",), "panic", "o1", every_s=30, until=until), DEVICES, NOW
    )
    body = json.loads(cmd.body)
    assert body["every_s"] == 30 and body["until"] == "2026-03-01T12:10:00Z"
    assert _leaks(cmd.body) == []


def test_owntracks_phone_gets_report_location_and_move_mode_until_the_end() -> None:
    until = NOW + timedelta(minutes=10)
    cmds = commands_for(
        LocateRequest("c1", ("phone-7", "unknown-9"), "panic", "o1", every_s=30, until=until), DEVICES, NOW
    )
    assert [(c.kind, c.topic, c.not_before) for c in cmds] == [
        ("owntracks_report", "owntracks/anna/phone/cmd", NOW),
        ("owntracks_move", "owntracks/anna/phone/cmd", NOW),
        ("owntracks_restore", "owntracks/anna/phone/cmd", until),
    ]
    report, move, restore = (json.loads(c.body) for c in cmds)
    assert report == {"_type": "cmd", "action": "reportLocation"}
    assert move["action"] == "setConfiguration" and move["configuration"]["monitoring"] == 2
    assert restore["configuration"] == {"_type": "configuration", "monitoring": 1}
    assert all(_leaks(c.body) == [] for c in cmds)


def test_same_origin_same_ids_so_a_replay_queues_nothing_new() -> None:
    a = commands_for(LocateRequest("c1", ("tag-7",), "x", "o1"), DEVICES, NOW)
    b = commands_for(LocateRequest("c1", ("tag-7",), "y", "o1"), DEVICES, NOW + timedelta(seconds=3))
    c = commands_for(LocateRequest("c1", ("tag-7",), "x", "o2"), DEVICES, NOW)
    assert a[0].command_id == b[0].command_id != c[0].command_id


@pytest.mark.parametrize(
    ("payload", "owntracks", "expected"),
    [
        (b'{"cmd":"locate","command_id":"x","ts":"2026-03-01T12:00:00Z"}', False, (True, None, False)),
        (b'{"cmd":"locate","every_s":5,"until":"2026-03-01T12:10:00Z"}', False, (True, 5.0, False)),
        (b'{"_type":"cmd","action":"reportLocation"}', True, (True, None, False)),
        (
            b'{"_type":"cmd","action":"setConfiguration","configuration":{"monitoring":2,"locatorInterval":7}}',
            True,
            (False, 7.0, False),
        ),
        (
            b'{"_type":"cmd","action":"setConfiguration","configuration":{"monitoring":1}}',
            True,
            (False, None, True),
        ),
    ],
)
def test_simulated_devices_read_the_contract(
    payload: bytes, owntracks: bool, expected: tuple[bool, float | None, bool]
) -> None:
    order = obey(payload, owntracks)
    assert order is not None and (order.report_now, order.every_s, order.stop) == expected


@pytest.mark.parametrize("payload", [b"nope", b"[1]", b'{"cmd":"selfdestruct"}'])
def test_simulated_devices_ignore_what_is_not_a_command(payload: bytes) -> None:
    assert obey(payload, False) is None


def test_a_malformed_locate_request_is_refused() -> None:
    ev = _locate_event("c", {"devices": "tag-7"}, NOW)
    with pytest.raises(ValueError, match="devices"):
        locate_request_of(ev, CaseInfo("c", Risk.HIGH, "tag-7", "phone-7"))


def test_a_locate_request_reaches_only_the_devices_of_its_case() -> None:
    ev = _locate_event(
        "c",
        {
            "devices": ["tag-7", "tag-of-another-case", "phone-7"],
            "reason": "r",
            "every_s": 5,
            "until": "2026-03-01T12:05:00Z",
        },
        NOW,
    )
    request = locate_request_of(ev, CaseInfo("c", Risk.HIGH, "tag-7", "phone-7"))
    assert (request.devices, request.every_s, request.until) == (
        ("tag-7", "phone-7"),
        5,
        NOW + timedelta(minutes=5),
    )
    assert locate_request_of(ev, CaseInfo("c", Risk.HIGH, closed=True)).devices == ()


# -- through the real servers -------------------------------------------------------------------


def _locate_event(case_id: str, detail: dict[str, Any], at: datetime) -> EvalEvent:
    return EvalEvent(
        EvalEventType.LOCATE_REQUEST,
        case_id,
        "proximity",
        at,
        at,
        at,
        Classification.POSSIBLE,
        None,
        (),
        detail=detail,
    )


async def _register(em: Running, devices: list[dict[str, Any]], case: dict[str, Any]) -> None:
    async with em.client() as c:
        for d in devices:
            assert (await c.post("/api/v1/devices", json=d)).status_code == 201, d
        r = await c.post("/api/v1/cases", json=case)
        assert r.status_code == 201, r.text


def _case(case_id: str, tag: str, victim: str | None, **order: Any) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "risk": "high",
        "offender_device": tag,
        "victim_device": victim,
        "residence": {"lat": 52.05, "lon": 5.05},
        "order": {"contact_ban_m": 500, **order},
    }


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_locate_request_reaches_the_tag_and_the_owntracks_phone_without_reason_or_position() -> None:
    async with running_emon() as em:
        await _register(
            em,
            [
                {"device_id": "tag-7", "kind": "ankle_tag"},
                {"device_id": "phone-7", "kind": "victim_device", "owntracks_topic": "owntracks/anna/phone"},
            ],
            _case("case-7", "tag-7", "phone-7"),
        )
        tag_topic, phone_topic = em.topic("emon/v1/cmd/tag-7"), em.topic("owntracks/anna/phone/cmd")
        async with listening([tag_topic, phone_topic]) as inbox:
            now = datetime.now(UTC)
            ev = _locate_event(
                "case-7",
                {
                    "devices": ["tag-7", "phone-7"],
                    "reason": "victim fix 900 s old",
                    "every_s": 20,
                    "until": (now + timedelta(minutes=5)).isoformat(),
                },
                now,
            )
            await em.runtime.alerts.on_evaluation([ev], now, time.monotonic())
            got: dict[str, list[dict[str, Any]]] = {tag_topic: [], phone_topic: []}
            async with asyncio.timeout(10):
                while len(got[tag_topic]) < 1 or len(got[phone_topic]) < 2:
                    topic, body = await inbox.get()
                    assert _leaks(body) == [], body
                    got[topic].append(json.loads(body))
        [tag_cmd] = got[tag_topic]
        assert tag_cmd["cmd"] == "locate" and tag_cmd["every_s"] == 20
        assert set(tag_cmd) == {"command_id", "cmd", "ts", "every_s", "until"}
        assert got[phone_topic][0] == {"_type": "cmd", "action": "reportLocation"}
        assert got[phone_topic][1]["configuration"]["monitoring"] == 2
        # Recorded: every command with its reason (never sent) and its attempts; the end of move mode waits.
        expected = [
            ("locate", "delivered"),
            ("owntracks_move", "delivered"),
            ("owntracks_report", "delivered"),
            ("owntracks_restore", "pending"),
        ]

        async def recorded() -> list[st.Delivery] | None:  # the worker commits just after the publish
            async with em.runtime.db.pool.connection() as conn:
                rows = await st.commands(conn, "case-7")
            return rows if sorted((r.msg_type, r.state) for r in rows) == expected else None

        rows = await eventually(recorded, within=5)
        assert {r.reason for r in rows} == {"victim fix 900 s old"} and all(r.attempts <= 1 for r in rows)
        # The same engine event again (a replay after restart) queues nothing new.
        await em.runtime.alerts.on_evaluation([ev], now, time.monotonic())
        async with em.runtime.db.pool.connection() as conn:
            assert len(await st.commands(conn, "case-7")) == 4


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_simulated_devices_obey_locate_now_and_pursuit_and_their_fixes_arrive() -> None:
    scenario = load_scenario("panic")
    tag, victim = (spec.device_id for spec in scenario.devices)
    async with running_emon() as em:
        await _register(
            em,
            [{"device_id": tag, "kind": "ankle_tag"}, {"device_id": victim, "kind": "victim_device"}],
            _case("case-sim", tag, victim),
        )
        async with DevicePlayer(
            scenario, host="127.0.0.1", port=1883, prefix=em.settings.mqtt_topic_prefix
        ) as player:
            now = datetime.now(UTC)
            once = _locate_event("case-sim", {"devices": [tag], "reason": "check"}, now)
            await em.runtime.alerts.on_evaluation([once], now, time.monotonic())

            async def replies(device_id: str) -> int:
                async with em.runtime.db.pool.connection() as conn:
                    cur = await conn.execute(
                        "SELECT count(*) FROM fixes WHERE device_id = %s AND seq >= %s",
                        (device_id, REPLY_SEQ_BASE),
                    )
                    row = await cur.fetchone()
                return int(row[0]) if row else 0  # type: ignore[call-overload]

            await eventually(lambda: _at_least(replies(tag), 1), within=20)
            assert await replies(victim) == 0  # only the device asked answers
            # Pursuit: every second for four seconds -> the victim device reports again and again, then stops.
            now = datetime.now(UTC)
            pursue = _locate_event(
                "case-sim",
                {
                    "devices": [victim],
                    "reason": "pursuit",
                    "every_s": 1,
                    "until": (now + timedelta(seconds=4)).isoformat(),
                },
                now,
            )
            await em.runtime.alerts.on_evaluation([pursue], now, time.monotonic())
            await eventually(lambda: _at_least(replies(victim), 3), within=20)
            until = now + timedelta(seconds=4)
            await asyncio.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.3)
            sent = player.stats.replies  # the pursuit is over: the device stops reporting ...
            await asyncio.sleep(1.5)
            assert player.stats.replies == sent and 3 <= sent - 1 <= 6
            await eventually(
                lambda: _at_least(replies(victim), sent - 1), within=20
            )  # ... and every fix arrived
        assert player.stats.malformed_cmd == 0 and len(player.stats.commands) == 2
        latest = await em.runtime.live.latest(victim)
        assert latest is not None and latest["seq"] >= REPLY_SEQ_BASE


async def _at_least(count: Any, n: int) -> bool:
    return bool(await count >= n)


@pytest.mark.integration
async def test_a_stale_counterpart_asks_both_devices_for_a_fresh_fix_once(world: World) -> None:
    service = world.service()
    now = datetime.now(UTC)
    unknown = prox(E.PROXIMITY_UNKNOWN, now, None, episode=now, classification=Classification.POSSIBLE)
    await service.on_evaluation([unknown], now, time.monotonic())
    await service.on_evaluation([unknown], now, time.monotonic())  # replayed: nothing new
    async with world.db.pool.connection() as conn:
        rows = await st.commands(conn, "case-1")
    assert sorted((r.target, r.msg_type, r.reason) for r in rows) == [
        (f"emon/v1/cmd/{OFFENDER}", "locate", "proximity_unknown"),
        (f"emon/v1/cmd/{VICTIM}", "locate", "proximity_unknown"),
    ]
    assert all("every_s" not in json.loads(r.body) for r in rows)  # once, not a pursuit
    [alert] = await service.open_alerts("case-1")
    assert {r.alert_id for r in rows} == {alert["alert_id"]}
    await service.close()
