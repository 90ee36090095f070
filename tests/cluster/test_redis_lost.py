"""Redis is a cache that can be lost: silence detection and the latest position keep working from
PostgreSQL after Redis was emptied (and while it is unreachable or hung), and a hung Redis costs a
batch at most one bounded wait."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from emon.demo import free_port
from emon.fix import Fix
from emon.geo import destination
from emon.storage.live import REDIS_TIMEOUT_S, CacheUnavailable, LiveState, client_for
from emon.storage.recall import RecallingLive
from emon.storage.records import Records
from tests.cluster.test_failover import APPROACH_M, VICTIM_AT, fix, victim_fix
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
            assert (await live.latest_times(["tag-2"])) == {}  # only the devices asked for
            assert (await live.latest_times(["tag-1"])) == {"tag-1": at}
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


class PrivateRedis:
    """A redis-server of the test's own on a free port (the shared one is never stopped)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        """Start it empty; return once it answers."""
        self.proc = subprocess.Popen(  # noqa: ASYNC220 - starts at once, waited for below
            [
                "redis-server",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ],
            stdout=subprocess.DEVNULL,
        )
        r = aioredis.Redis.from_url(self.url)
        try:
            await eventually(lambda: _pings(r), within=5)
        finally:
            await r.aclose()

    def freeze(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)


async def _pings(r: aioredis.Redis) -> bool:
    try:
        return bool(await r.ping())
    except RedisError:
        return False


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    redis = PrivateRedis()
    await redis.start()
    try:
        yield redis
    finally:
        redis.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_frozen_redis_costs_one_bounded_wait_then_is_skipped_and_gets_what_was_written_meanwhile() -> (
    None
):
    at = datetime.now(UTC)
    fix = Fix(device_id="tag-1", ts=at, lat=52.0, lon=5.0, acc_m=5.0, seq=7)
    async with private_redis() as redis:
        clock = Clock()  # 1000.0; the breaker's pauses: 0.5 s, then 1 s
        live = LiveState(client_for(redis.url), "t-breaker", clock)
        try:
            redis.freeze()
            t = time.monotonic()
            await live.set_latest([fix])  # kept: Redis does not answer
            assert time.monotonic() - t < 2 * REDIS_TIMEOUT_S
            t = time.monotonic()
            await live.mark_seen({"tag-1": at})  # skipped at once, kept
            with pytest.raises(CacheUnavailable):
                await live.last_seen()
            assert time.monotonic() - t < REDIS_TIMEOUT_S / 2  # no wait for Redis while it is skipped
            clock.now = 1000.5
            with pytest.raises(CacheUnavailable):  # tried again after the pause: still frozen
                await live.latest_times()
            clock.now = 1001.4  # the pause doubled: still skipped
            t = time.monotonic()
            with pytest.raises(CacheUnavailable):
                await live.latest("tag-1")
            assert time.monotonic() - t < REDIS_TIMEOUT_S / 2
            assert redis.proc is not None
            redis.proc.send_signal(signal.SIGCONT)
            clock.now = 1001.5
            # Redis answers: what was written while it was unavailable is there before the first read.
            assert await live.last_seen() == {"tag-1": datetime.fromtimestamp(at.timestamp(), UTC)}
            assert (await live.latest("tag-1") or {})["seq"] == 7
            assert not live.breaker.open
        finally:
            await live.close()


@pytest.mark.timeout(60)
async def test_with_redis_frozen_a_breach_is_stored_and_alerted_within_two_seconds_and_redis_back_empty_is_refilled() -> (
    None
):
    async with private_redis() as redis, running_emon(redis_url=redis.url) as em, em.client() as c:
        for device, kind, interval in (("tag-r", "ankle_tag", 1), ("victim-r", "victim_device", 3600)):
            body = {"device_id": device, "kind": kind, "report_interval_s": interval}
            assert (await c.post("/api/v1/devices", json=body)).status_code == 201
        residence = destination(*VICTIM_AT, 0, 6000)
        case = {
            "case_id": "case-r",
            "risk": "high",
            "offender_device": "tag-r",
            "victim_device": "victim-r",
            "residence": {"lat": residence[0], "lon": residence[1]},
            "order": {"contact_ban_m": 300},
        }
        assert (await c.post("/api/v1/cases", json=case)).status_code == 201

        async def latest_seq() -> int | None:
            r = await c.get("/api/v1/devices/tag-r/latest")
            return r.json()["seq"] if r.status_code == 200 else None

        async def alerts(kind: str) -> list[dict[str, object]]:
            found = (await c.get("/api/v1/alerts", params={"case_id": "case-r"})).json()
            return [a for a in found if a["type"] == kind]

        async with aiomqtt.Client("127.0.0.1", 1883) as pub:
            await pub.publish(em.topic("emon/v1/fix/tag-r"), fix(2400, 1), qos=1)
            assert await eventually(latest_seq, within=5) == 1
            try:
                redis.freeze()  # a hung Redis: connections are accepted, nothing is answered
                for i, d in enumerate(APPROACH_M):  # the offender drives up to the victim
                    await pub.publish(em.topic("emon/v1/fix/victim-r"), victim_fix(), qos=1)
                    await pub.publish(em.topic("emon/v1/fix/tag-r"), fix(d, i + 2), qos=1)
                    await asyncio.sleep(0.5)
                done = time.monotonic()
                # Stored, and read from PostgreSQL while Redis hangs:
                assert await eventually(latest_seq, within=2) == len(APPROACH_M) + 1
                assert await eventually(lambda: alerts("proximity_breach"), within=2, interval=0.1)
                assert time.monotonic() - done < 2
            finally:
                redis.stop()
                await redis.start()  # back, empty
        r = aioredis.Redis.from_url(redis.url)
        try:
            seen = f"{em.settings.redis_prefix}:seen"
            # Refilled once the breaker lets Redis be tried again (after a pause of at most 5 s).
            assert await eventually(lambda: r.hexists(seen, "tag-r"), within=8)
            latest = f"{em.settings.redis_prefix}:latest"
            assert await eventually(lambda: r.hexists(latest, "tag-r"), within=2)
        finally:
            await r.aclose()
        # tag-r has been silent since the approach: its silence falls due after Redis came back empty.
        assert await eventually(lambda: alerts("no_communication"), within=15, interval=0.2)


async def test_a_last_heard_time_kept_while_redis_was_skipped_never_replaces_a_later_one() -> None:
    later = datetime.fromtimestamp(datetime.now(UTC).timestamp(), UTC)  # as Redis gives it back
    earlier = later - timedelta(seconds=30)
    async with private_redis() as redis:
        clock = Clock()
        live = LiveState(client_for(redis.url), "t-seen", clock)
        other = LiveState(client_for(redis.url), "t-seen")  # another ingest process
        try:
            redis.freeze()
            await live.mark_seen({"tag-1": earlier, "tag-2": earlier})  # kept: Redis does not answer
            assert redis.proc is not None
            redis.proc.send_signal(signal.SIGCONT)
            await other.mark_seen({"tag-1": later})  # heard since, through the other process
            clock.now = 1000.5
            # The kept times are sent first (tag-2's is there), but tag-1's does not go back.
            assert await live.last_seen() == {"tag-1": later, "tag-2": earlier}
            await other.mark_seen({"tag-1": earlier})  # a late batch
            assert (await live.last_seen())["tag-1"] == later
        finally:
            await live.close()
            await other.close()


async def test_while_redis_is_unreachable_reads_merge_what_is_held_for_it_with_postgresql() -> None:
    async with open_store() as store:
        at = datetime.now(UTC) - timedelta(seconds=60)
        await store.records.store_batch(
            [Fix(device_id="tag-1", ts=at, lat=52.0, lon=5.0, acc_m=5.0, seq=7)], [], []
        )
        heard = datetime.now(UTC)  # after the fix was stored
        newer = Fix(device_id="tag-1", ts=at + timedelta(seconds=30), lat=52.0, lon=5.0, acc_m=5.0, seq=8)
        down = client_for(f"redis://127.0.0.1:{free_port()}/0")
        live = RecallingLive(
            down, f"t-held-{uuid.uuid4().hex[:8]}", store.records, lambda: ["tag-1", "ack-1"]
        )
        try:
            # ack-1 was heard only through an ack (PostgreSQL has no record of it): kept for Redis.
            await live.mark_seen({"tag-1": heard, "ack-1": heard})
            await live.set_latest([newer])
            assert live.breaker.open
            assert await live.last_seen() == {"tag-1": heard, "ack-1": heard}  # not silent
            assert await live.latest_times() == {"tag-1": newer.ts}
            assert (await live.latest("tag-1") or {})["seq"] == 8
            assert await live.latest("ack-1") is None  # never sent a fix: none invented
        finally:
            await down.aclose()
