"""Two ``emon serve`` processes on real Mosquitto, PostgreSQL and Redis: one dies, the other carries on.

Devices and a case are registered through instance A (which, started first, owns every partition of
the cases); A is killed -9 while fixes flow and never restarted. Through B: every fix the broker acknowledged is stored, and a breach
that starts after the kill is alerted within the documented bound (lease + renew + restore).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import httpx
import pytest

from emon.geo import destination
from emon.partitioning import lease_name, partition_of
from emon.settings import Settings
from tests.cluster.instances import Cluster, Instance, cluster
from tests.harness import eventually

pytestmark = pytest.mark.integration
VICTIM_AT = (52.3702, 4.8952)
LEASE_S = 3.0
BOUND_S = LEASE_S + LEASE_S / 3 + 3.0  # lease expiry + one renew period + restore and evaluation
CASE_LEASE = lease_name(partition_of("case-1", Settings().partitions))  # the lease of case-1's partition


async def owner(c: Cluster, lease: str = CASE_LEASE) -> str | None:
    """The instance that holds ``lease`` now (default: case-1's partition's, i.e. case-1's owner)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(c.settings.database_url) as conn:
        cur = await conn.execute(
            f"SELECT owner FROM {c.settings.db_schema}.cluster_leases WHERE name = %s "
            "AND expires_at > clock_timestamp()",
            (lease,),
        )
        row = await cur.fetchone()
        return None if row is None else str(row[0])


async def stored_fixes(c: Cluster, device: str) -> int:
    import psycopg

    async with await psycopg.AsyncConnection.connect(c.settings.database_url) as conn:
        cur = await conn.execute(
            f"SELECT count(*) FROM {c.settings.db_schema}.fixes WHERE device_id = %s", (device,)
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


def devices(case: str) -> tuple[str, str]:
    """The offender tag and victim device of ``case`` ("case-1": tag-1, victim-1)."""
    n = case.removeprefix("case-")
    return f"tag-{n}", f"victim-{n}"


async def register(a: Instance, case_id: str = "case-1") -> None:
    tag, victim = devices(case_id)
    async with a.client() as http:
        for device, kind in ((tag, "ankle_tag"), (victim, "victim_device")):
            assert (
                await http.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            ).status_code == 201
        residence = destination(*VICTIM_AT, 0, 6000)
        case = {
            "case_id": case_id,
            "risk": "high",
            "offender_device": tag,
            "victim_device": victim,
            "residence": {"lat": residence[0], "lon": residence[1]},
            "order": {"contact_ban_m": 300},
        }
        assert (await http.post("/api/v1/cases", json=case)).status_code == 201


def fix(distance_m: float, seq: int, at: float | None = None) -> bytes:
    lat, lon = destination(*VICTIM_AT, 0, distance_m)
    ts = datetime.fromtimestamp(at or time.time(), UTC).isoformat()
    return json.dumps({"ts": ts, "lat": lat, "lon": lon, "acc": 5, "seq": seq}).encode()


def victim_fix() -> bytes:
    ts = datetime.now(UTC).isoformat()
    return json.dumps({"ts": ts, "lat": VICTIM_AT[0], "lon": VICTIM_AT[1], "acc": 10}).encode()


APPROACH_M = (240, 210, 180, 150, 120, 90)


async def approach(pub: aiomqtt.Client, c: Any, first_seq: int, case: str = "case-1") -> int:
    """The offender drives up to the victim at 60 m/s while both devices report every 0.5 s: a breach is
    proven over several fixes that each moved further than their correlation allows, with fresh fixes of
    both devices (docs/safety.md); returns the tag fixes sent."""
    tag, victim = devices(case)
    for i, d in enumerate(APPROACH_M):
        await pub.publish(c.topic(f"emon/v1/fix/{victim}"), victim_fix(), qos=1)
        await pub.publish(c.topic(f"emon/v1/fix/{tag}"), fix(d, first_seq + i), qos=1)
        await asyncio.sleep(0.5)
    return len(APPROACH_M)


async def proximity_alerts(b: Instance, case: str = "case-1") -> list[dict[str, object]]:
    async with b.client() as http:
        r = await http.get("/api/v1/alerts", params={"case_id": case})
        assert r.status_code == 200
        return [a for a in r.json() if a["type"] == "proximity_breach"]


@pytest.mark.timeout(90)
async def test_the_owner_killed_mid_flow_loses_no_acknowledged_fix_and_a_later_breach_is_alerted() -> None:
    async with cluster(lease_s=LEASE_S) as c:
        a, b = await started_pair(c)
        acked = 0
        async with aiomqtt.Client("127.0.0.1", 1883) as pub:
            await pub.publish(c.topic("emon/v1/fix/victim-1"), victim_fix(), qos=1)
            for seq in range(300):  # 3 s of far-away fixes; A dies one second in
                if seq == 100:
                    a.signal(signal.SIGKILL)
                await pub.publish(c.topic("emon/v1/fix/tag-1"), fix(2400, seq), qos=1)  # returns on PUBACK
                acked += 1
                await asyncio.sleep(0.01)
            assert await proximity_alerts(b) == []
            # The breach starts after the kill: the offender is 100 m from the victim.
            breach_at = time.monotonic()
            acked += await approach(pub, c, 1000)  # the first fix is an implausible jump: it proves nothing
        alerts = await eventually(lambda: proximity_alerts(b), within=BOUND_S + 5, interval=0.1)
        took = time.monotonic() - breach_at
        assert took <= BOUND_S, f"breach alerted {took:.1f}s after it started (bound {BOUND_S}s)"
        assert [a["type"] for a in alerts].count("proximity_breach") == 1
        assert await eventually(lambda: _is(owner(c), "b"), within=1)
        assert await stored_fixes(c, "tag-1") == acked  # every PUBACKed fix is stored (by B's own session)


async def _is(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]


async def _status(http: object, path: str, code: int) -> bool:
    return (await http.get(path)).status_code == code  # type: ignore[attr-defined]


async def metric(i: Instance, name: str) -> float:
    async with i.client() as http:
        text = (await http.get("/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def started_pair(c: Cluster) -> tuple[Instance, Instance]:
    """Start a (owning case-1's partition), then b; register case-1 through a, seen by b."""
    a, b = c.instances
    a.start()
    await a.ready()
    await eventually(lambda: _is(owner(c), "a"), within=10)
    b.start()
    await b.ready()
    await register(a)
    async with b.client() as http:  # B knows what was registered through A
        await eventually(lambda: _status(http, "/api/v1/cases/case-1", 200), within=5)
    return a, b


async def balanced_pair(c: Cluster) -> tuple[Instance, Instance]:
    """:func:`started_pair`, then wait until both hold their share of the partitions (they move one per
    renew period; then case-1 stays where it is)."""
    a, b = await started_pair(c)
    await eventually(lambda: _balanced(a, b), within=30, interval=0.2)
    return a, b


@pytest.mark.timeout(90)
async def test_an_owner_frozen_past_its_lease_is_refused_every_write_once_thawed() -> None:
    async with cluster(lease_s=LEASE_S) as c:
        a, b = await balanced_pair(c)
        # Freeze the owner of case-1 once partitions have settled (each instance holds its share).
        frozen, survivor = (a, b) if await owner(c) == "a" else (b, a)
        assert await metric(frozen, "emon_fenced_writes_total") == 0
        frozen.signal(signal.SIGSTOP)
        async with aiomqtt.Client("127.0.0.1", 1883) as pub:
            await pub.publish(c.topic("emon/v1/fix/victim-1"), victim_fix(), qos=1)
            await eventually(lambda: _is(owner(c), survivor.name), within=BOUND_S)
            await approach(pub, c, 0)  # the breach happens while the owner is frozen
        await eventually(lambda: proximity_alerts(survivor), within=BOUND_S)
        assert len(await owned(survivor)) == Settings().partitions  # every partition taken over
        frozen.signal(
            signal.SIGCONT
        )  # it wakes up believing it still owns its partitions, with fixes to evaluate
        await eventually(lambda: _positive(metric(frozen, "emon_fenced_writes_total")), within=5)
        await eventually(lambda: _zero(metric(frozen, f'emon_lease_held{{lease="{CASE_LEASE}"}}')), within=5)
        # (Then partitions rebalance between the two again, so case-1 may move back: by a takeover with a
        # new epoch that restores the survivor's state; the decision is not made twice.)
        await asyncio.sleep(2 * LEASE_S / 3)
        assert len(await proximity_alerts(survivor)) == 1  # one alert, under one id: not decided again


async def _positive(value: object) -> bool:
    return await value > 0  # type: ignore[misc,no-any-return]


async def _zero(value: object) -> bool:
    return await value == 0  # type: ignore[misc,no-any-return]


@pytest.mark.timeout(90)
async def test_the_room_stream_on_one_instance_shows_an_alert_decided_on_the_other_within_two_seconds() -> (
    None
):
    async with cluster(lease_s=LEASE_S) as c:
        # Partitions move one per renew period until both hold their share: then case-1 stays where it is.
        a, b = await balanced_pair(c)
        deciding = await owner(c)
        watching = b if deciding == "a" else a
        seen: list[tuple[str, dict[str, Any], datetime]] = []
        reader = asyncio.create_task(read_stream(watching, seen))
        try:
            await asyncio.sleep(0.5)
            async with aiomqtt.Client("127.0.0.1", 1883) as pub:
                await approach(pub, c, 0)

            async def on_watching() -> tuple[dict[str, Any], datetime] | None:
                return next(
                    (
                        (body, at)
                        for kind, body, at in seen
                        if kind == "alert" and body["type"] == "proximity_breach"
                    ),
                    None,
                )

            body, at = await eventually(on_watching, within=10)
            decided = datetime.fromisoformat(str(body["updated_at"]))  # when the owner decided it
            assert (at - decided).total_seconds() <= 2.0
            assert await owner(c) == deciding != watching.name  # decided on one, shown on the other
        finally:
            reader.cancel()


async def owned(i: Instance) -> list[int]:
    """The partitions instance ``i`` evaluates (its /readyz)."""
    async with i.client() as http:
        return list((await http.get("/readyz")).json()["cluster"]["partitions"])


async def _balanced(a: Instance, b: Instance) -> bool:
    share = Settings().partitions // 2
    return len(await owned(a)) == share and len(await owned(b)) == share


async def read_stream(i: Instance, seen: list[tuple[str, dict[str, Any], datetime]]) -> None:
    async with i.client() as http:
        http.timeout = httpx.Timeout(None)
        async with http.stream("GET", "/api/v1/stream") as r:
            event = ""
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    seen.append((event, json.loads(line.split(":", 1)[1]), datetime.now(UTC)))
