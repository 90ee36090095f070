"""Redis is a cache that can be lost: silence detection and the latest position keep working from
PostgreSQL after Redis was emptied (and while it is unreachable)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from emon.demo import free_port
from emon.fix import Fix
from emon.storage.recall import RecallingLive
from emon.storage.records import Records
from tests.harness import Running, eventually, publish, running_emon
from tests.storage.helpers import open_store

pytestmark = pytest.mark.integration


async def flush(em: Running) -> None:
    r = aioredis.Redis.from_url(em.settings.redis_url)
    try:
        keys = [k async for k in r.scan_iter(match=f"{em.settings.redis_prefix}:*")]
        assert keys  # there was live state to lose
        await r.delete(*keys)
    finally:
        await r.aclose()


@pytest.mark.timeout(60)
async def test_a_device_silent_after_redis_was_emptied_is_still_reported_and_its_latest_fix_still_served() -> (
    None
):
    async with running_emon() as em, em.client() as c:
        for device, kind in (("tag-r", "ankle_tag"), ("victim-r", "victim_device")):
            body = {
                "device_id": device,
                "kind": kind,
                "report_interval_s": 1 if kind == "ankle_tag" else 3600,
            }
            assert (await c.post("/api/v1/devices", json=body)).status_code == 201
        case = {
            "case_id": "case-r",
            "risk": "high",
            "offender_device": "tag-r",
            "victim_device": "victim-r",
            "residence": {"lat": 52.2, "lon": 5.2},
            "order": {"contact_ban_m": 300},
        }
        assert (await c.post("/api/v1/cases", json=case)).status_code == 201
        fix = {"ts": datetime.now(UTC).isoformat(), "lat": 52.1, "lon": 5.1, "acc": 5, "seq": 1}
        await publish(em.topic("emon/v1/fix/tag-r"), json.dumps(fix))

        async def latest() -> bool:
            return (await c.get("/api/v1/devices/tag-r/latest")).status_code == 200

        await eventually(latest, within=5)
        await flush(em)  # Redis restarted empty
        assert (await c.get("/api/v1/devices/tag-r/latest")).json()["seq"] == 1  # from PostgreSQL

        async def silent() -> bool:
            alerts = (await c.get("/api/v1/alerts", params={"case_id": "case-r"})).json()
            return any(a["type"] == "no_communication" for a in alerts)

        await eventually(silent, within=15, interval=0.2)  # due 3 s after the fix, after the flush


async def test_live_state_is_read_back_from_postgresql_and_refilled_and_survives_an_unreachable_redis() -> (
    None
):
    async with open_store() as store:
        records: Records = store.records
        at = datetime.now(UTC)
        await records.store_batch(
            [Fix(device_id="tag-1", ts=at, lat=52.0, lon=5.0, acc_m=5.0, seq=7)], [], []
        )
        prefix = f"t-recall-{uuid.uuid4().hex[:8]}"
        client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
        live = RecallingLive(client, prefix, records, lambda: ["tag-1", "tag-2"])
        try:
            assert (await live.latest_times()) == {"tag-1": at}
            assert set(await live.last_seen()) == {"tag-1"}  # tag-2 never reported: not invented
            assert await client.hget(f"{prefix}:latest:ts", "tag-1") is not None  # refilled
            assert await client.hget(f"{prefix}:seen", "tag-1") is not None
        finally:
            await client.delete(f"{prefix}:latest", f"{prefix}:latest:ts", f"{prefix}:seen")
            await client.aclose()
        down = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
        live = RecallingLive(down, prefix, records, lambda: ["tag-1"])
        try:
            assert (await live.latest_times()) == {"tag-1": at}
            assert "tag-1" in await live.last_seen()
            assert (await live.latest("tag-1") or {})["seq"] == 7
        finally:
            await down.aclose()
