"""OwnTracks phones as victim devices: their ``batt`` field drives battery alerts (pure decoding, then
end to end through real Mosquitto, PostgreSQL and Redis), one alert per discharge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emon.fix import EventType
from emon.ingest.decode import DecodeLimits, decode_owntracks
from tests.harness import Running, eventually, publish, running_emon

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def location(batt: float | None, ts: datetime = NOW) -> bytes:
    doc: dict[str, Any] = {
        "_type": "location",
        "lat": 52.09,
        "lon": 5.12,
        "acc": 12,
        "tst": int(ts.timestamp()),
    }
    if batt is not None:
        doc["batt"] = batt
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("batt", "event"),
    [
        (None, None),
        (100, None),
        (21, None),
        (20, EventType.BATTERY_LOW),
        (11, EventType.BATTERY_LOW),
        (10, EventType.BATTERY_CRITICAL),
        (0, EventType.BATTERY_CRITICAL),
    ],
)
def test_batt_becomes_a_battery_event_at_the_documented_thresholds(
    batt: float | None, event: EventType | None
) -> None:
    out = decode_owntracks("owntracks/anna/phone", "phone-1", location(batt), NOW, DecodeLimits())
    assert len(out.fixes) == 1 and out.fixes[0].batt == batt  # the fix is kept either way
    assert [(e.type, e.ts, e.data) for e in out.events] == (
        [] if event is None else [(event, NOW, {"batt": batt, "source": "owntracks"})]
    )


def test_bad_batt_is_a_dead_letter_not_an_event() -> None:
    out = decode_owntracks("owntracks/anna/phone", "phone-1", location(140), NOW, DecodeLimits())
    assert (out.fixes, out.events, [d.reason for d in out.dead]) == ([], [], ["bad_field"])


async def _battery_alerts(em: Running) -> list[dict[str, Any]]:
    async with em.client() as c:
        alerts = (await c.get("/api/v1/alerts", params={"case_id": "case-b"})).json()
    return [a for a in alerts if a["type"].startswith("battery")]


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_owntracks_batt_10_opens_one_battery_alert_per_discharge() -> None:
    async with running_emon() as em:
        async with em.client() as c:
            for d in (
                {"device_id": "tag-b", "kind": "ankle_tag"},
                {"device_id": "phone-b", "kind": "victim_device", "owntracks_topic": "owntracks/anna/phone"},
            ):
                assert (await c.post("/api/v1/devices", json=d)).status_code == 201
            case = {
                "case_id": "case-b",
                "risk": "medium",
                "offender_device": "tag-b",
                "victim_device": "phone-b",
                "residence": {"lat": 52.0, "lon": 5.0},
                "order": {"contact_ban_m": 500},
            }
            assert (await c.post("/api/v1/cases", json=case)).status_code == 201
        topic = em.topic("owntracks/anna/phone")
        start = datetime.now(UTC) - timedelta(seconds=60)

        async def send(batt: float, offset_s: float) -> None:
            await publish(topic, location(batt, start + timedelta(seconds=offset_s)))

        await send(10, 0)

        async def one_alert() -> list[dict[str, Any]] | None:
            found = await _battery_alerts(em)
            return found if found else None

        [alert] = await eventually(one_alert, within=15)
        assert (alert["type"], alert["device_id"], alert["explanation"]["data"]["batt"]) == (
            "battery_critical",
            "phone-b",
            10,
        )
        assert alert["recipients"] == ["probation"]

        await send(9, 10)  # still low: merged into the open alert
        await eventually(lambda: _events_of(em, alert["alert_id"], 2), within=15)
        async with em.client() as c:
            r = await c.post(
                f"/api/v1/alerts/{alert['alert_id']}/resolve",
                json={"outcome": "victim asked to charge", "note": "called"},
            )
            assert r.status_code == 200
        await send(8, 20)  # still the same discharge after the resolve: no new alert
        await send(80, 30)  # recharged ...
        await send(7, 40)  # ... and low again: a new alert
        found = await eventually(lambda: _count_at_least(em, 2), within=15)
        assert [a["state"] for a in found] == ["open", "resolved"]
        assert found[0]["explanation"]["data"]["batt"] == 7


async def _events_of(em: Running, alert_id: str, n: int) -> bool:
    async with em.client() as c:
        return bool((await c.get(f"/api/v1/alerts/{alert_id}")).json()["events"] >= n)


async def _count_at_least(em: Running, n: int) -> list[dict[str, Any]] | None:
    found = await _battery_alerts(em)
    return found if len(found) >= n else None
