"""Through the real Mosquitto, PostgreSQL and Redis: publish like a device, find it stored and served."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.harness import Running, eventually, publish, running_emon, start

pytestmark = pytest.mark.integration


async def register(em: Running, device_id: str, kind: str = "ankle_tag", **extra: object) -> None:
    async with em.client() as c:
        r = await c.post("/api/v1/devices", json={"device_id": device_id, "kind": kind, **extra})
        assert r.status_code == 201, r.text


def iso(dt: datetime) -> str:
    return dt.isoformat()


async def test_fix_batch_and_owntracks_are_stored_and_served(emon: Running) -> None:
    await register(emon, "tag-1")
    await register(emon, "phone-1", "victim_device", owntracks_topic="owntracks/anna/phone")
    now = datetime.now(UTC).replace(microsecond=0)
    single = {
        "ts": iso(now - timedelta(seconds=30)),
        "lat": 52.09,
        "lon": 5.12,
        "acc": 8,
        "seq": 1,
        "src": "gnss",
    }
    batch = [
        {
            "ts": int((now - timedelta(seconds=20)).timestamp()),
            "lat": 52.091,
            "lon": 5.121,
            "acc": 9,
            "seq": 2,
        },
        {
            "ts": iso(now - timedelta(seconds=10)),
            "lat": 52.092,
            "lon": 5.122,
            "acc": 10,
            "seq": 3,
            "spd": 1.2,
        },
    ]
    owntracks = {
        "_type": "location",
        "lat": 52.1,
        "lon": 5.2,
        "tst": int(now.timestamp()),
        "acc": 15,
        "vel": 18,
        "batt": 80,
        "tid": "an",
    }
    await publish(emon.topic("emon/v1/fix/tag-1"), json.dumps(single))
    await publish(emon.topic("emon/v1/fix/tag-1"), json.dumps(batch))
    await publish(emon.topic("owntracks/anna/phone"), json.dumps(owntracks))

    async def stored() -> int:
        return await emon.runtime.records.count_fixes() == 4

    await eventually(stored)
    async with emon.client() as c:
        latest = (await c.get("/api/v1/devices/tag-1/latest")).json()
        assert latest["seq"] == 3 and latest["lat"] == 52.092 and latest["speed_mps"] == 1.2
        # A victim's phone: its position is not served without an alert concerning them (docs/access.md).
        assert (await c.get("/api/v1/devices/phone-1/latest")).status_code == 403
        phone = await emon.runtime.live.latest("phone-1")
        assert phone is not None
        assert phone["lat"] == 52.1 and phone["acc_m"] == 15 and phone["speed_mps"] == pytest.approx(5.0)
        track = (
            await c.get("/api/v1/devices/tag-1/track", params={"from": iso(now - timedelta(minutes=5))})
        ).json()
        assert [f["seq"] for f in track] == [1, 2, 3]
        geo = await c.get("/api/v1/devices/tag-1/track", headers={"Accept": "application/geo+json"})
        assert geo.headers["content-type"].startswith("application/geo+json")
        body = geo.json()
        assert body["features"][0]["geometry"]["type"] == "LineString"
        assert body["features"][0]["geometry"]["coordinates"][0] == [5.12, 52.09]
    # Redis holds the latest too, independently of the API.
    assert (await emon.runtime.live.latest("tag-1"))["seq"] == 3  # type: ignore[index]


async def test_bad_input_goes_to_dead_letters_and_good_fixes_survive(emon: Running) -> None:
    await register(emon, "tag-2")
    now = datetime.now(UTC)
    good = {"ts": iso(now), "lat": 52.0, "lon": 5.0, "acc": 5, "seq": 10}
    cases = [
        b"{not json",
        json.dumps({"ts": iso(now), "lat": 52.0, "acc": 5}).encode(),  # missing lon
        json.dumps({"ts": iso(now), "lat": 91.0, "lon": 5.0, "acc": 5}).encode(),
        json.dumps({"ts": iso(now), "lat": 52.0, "lon": 181.0, "acc": 5}).encode(),
        b'{"ts": "2026-01-01T00:00:00Z", "lat": NaN, "lon": 5.0, "acc": 5}',
        json.dumps({"ts": iso(now), "lat": 52.0, "lon": 5.0, "acc": -1}).encode(),
        json.dumps({"ts": iso(now + timedelta(days=2)), "lat": 52.0, "lon": 5.0, "acc": 5}).encode(),
        b"[" + b",".join([json.dumps(good).encode()] * 1) + b"," + b'"x"' * 1 + b"]",  # batch: 1 good, 1 bad
        b" " * 300_000,
    ]
    for payload in cases:
        await publish(emon.topic("emon/v1/fix/tag-2"), payload)
    await publish(emon.topic("emon/v1/fix/ghost-tag"), json.dumps(good))  # unregistered
    await publish(emon.topic("emon/v1/event/tag-2"), json.dumps({"ts": iso(now), "type": "explode"}))

    async def all_dead() -> bool:
        return len(await emon.runtime.records.dead_letters()) >= 11

    await eventually(all_dead)
    reasons = sorted(d.reason for d in await emon.runtime.records.dead_letters())
    assert reasons == sorted(
        [
            "invalid_json",
            "missing_field",
            "bad_coordinates",
            "bad_coordinates",
            "invalid_json",
            "bad_accuracy",
            "future_timestamp",
            "not_an_object",
            "oversized",
            "unknown_device",
            "unknown_event_type",
        ]
    )
    assert await emon.runtime.records.count_fixes() == 1  # the good fix from the mixed batch
    # The service keeps going, and says so.
    async with emon.client() as c:
        assert (await c.get("/readyz")).status_code == 200
        metrics = (await c.get("/metrics")).text
    assert 'emon_rejected_total{reason="unknown_device"}' in metrics


async def test_duplicates_are_stored_once(emon: Running) -> None:
    await register(emon, "tag-3")
    now = datetime.now(UTC).replace(microsecond=0)
    fixes = [
        {"ts": iso(now - timedelta(seconds=i)), "lat": 52.0, "lon": 5.0 + i / 1000, "acc": 5, "seq": 100 - i}
        for i in range(5)
    ]
    await publish(emon.topic("emon/v1/fix/tag-3"), json.dumps(fixes))
    await publish(emon.topic("emon/v1/fix/tag-3"), json.dumps(fixes))  # the tag re-uploads its buffer
    await publish(emon.topic("emon/v1/fix/tag-3"), json.dumps(fixes[0]))  # a QoS 1 redelivery
    no_seq = {"ts": iso(now), "lat": 52.0, "lon": 5.0, "acc": 5}
    await publish(emon.topic("emon/v1/fix/tag-3"), json.dumps(no_seq))
    await publish(emon.topic("emon/v1/fix/tag-3"), json.dumps(no_seq))
    # QoS 1 publishes from one client arrive in order: once the sentinel is stored, all before it are.
    sentinel = {"ts": iso(now + timedelta(seconds=1)), "lat": 52.0, "lon": 5.0, "acc": 5, "seq": 999}
    await publish(emon.topic("emon/v1/fix/tag-3"), json.dumps(sentinel))

    async def sentinel_stored() -> bool:
        latest = await emon.runtime.live.latest("tag-3")
        return latest is not None and latest["seq"] == 999

    await eventually(sentinel_stored)
    assert await emon.runtime.records.count_fixes() == 7  # 5 + 1 without seq + the sentinel


async def test_messages_published_while_stopped_arrive_after_restart() -> None:
    async with running_emon() as em:
        await register(em, "tag-4")
        await em.stop()
        base = time.time()
        for i in range(20):
            fix = {"ts": base - 20 + i, "lat": 52.0 + i / 10_000, "lon": 5.0, "acc": 5, "seq": i}
            await publish(em.topic("emon/v1/fix/tag-4"), json.dumps(fix))
        again = await start(em.settings)
        try:

            async def arrived() -> bool:
                return await again.runtime.records.count_fixes() == 20

            await eventually(arrived)
        finally:
            await again.stop()


async def test_positions_need_a_token_with_a_role(emon: Running) -> None:
    await register(emon, "tag-5")
    async with emon.client(token="wrong-token") as c:
        assert (await c.get("/api/v1/devices/tag-5/latest")).status_code == 401
        assert (await c.get("/api/v1/devices")).status_code == 401
    async with emon.client(token=None) as c:
        assert (await c.get("/api/v1/devices")).status_code == 401
    prosecutor = await emon.token_for("prosecutor")
    probation = await emon.token_for("probation")
    async with emon.client(token=prosecutor) as c:
        assert (await c.get("/api/v1/devices")).status_code == 403
    async with emon.client(token=probation) as c:
        assert (await c.get("/api/v1/devices")).status_code == 200
        assert (await c.post("/api/v1/users/x/tokens")).status_code == 403
    async with emon.client() as admin:  # the unscoped, never-expiring legacy route is gone
        assert (await admin.post("/api/v1/tokens", json={"name": "x", "role": "admin"})).status_code == 405
    async with emon.client(token=None) as c:
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/metrics")).status_code == 200
