"""``emon serve`` killed -9 with several ingest batches in flight, then started again (one instance).

Small batches and ``EMON_INGEST_INFLIGHT=4`` while a filler device floods: at the kill, batches are being
stored behind the one being evaluated. A breach is published (each fix waiting for the broker's PUBACK)
in the middle of the flood and emon is killed the moment its last fix is stored (usually before that batch
is evaluated). At the kill some fixes are stored but not evaluated and some not stored at all. After the
restart every fix the broker accepted is stored exactly once (those emon had acknowledged were committed;
the others the broker redelivers), the breach is alerted once and the watermark catches up.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import psycopg
import pytest

from emon.geo import destination
from tests.cluster.instances import Instance, cluster
from tests.harness import eventually

pytestmark = pytest.mark.integration
VICTIM_AT = (52.3702, 4.8952)
APPROACH_M = (240, 210, 180, 150, 120, 90)  # 60 m/s, every 0.5 s: a breach proven over several fixes
UNEVALUATED = "SELECT count(*) FROM {s}.fixes WHERE received_at > (SELECT through FROM {s}.eval_watermark)"
FILLER = 600  # filler fixes before and after the breach; < Mosquitto's 1,000 queued while emon is down


def fix(device: str, seq: int, distance_m: float, at: float) -> bytes:
    lat, lon = destination(*VICTIM_AT, 0, distance_m)
    ts = datetime.fromtimestamp(at, UTC).isoformat()
    return json.dumps({"ts": ts, "lat": lat, "lon": lon, "acc": 5, "seq": seq}).encode()


async def query(i: Instance, sql: str) -> list[tuple[Any, ...]]:
    schema = i.env["EMON_DB_SCHEMA"]
    async with await psycopg.AsyncConnection.connect(i.env["EMON_DATABASE_URL"]) as conn:
        cur = await conn.execute(sql.replace("{s}", schema))
        return await cur.fetchall()


async def breach_alerts(i: Instance) -> int:
    async with i.client() as http:
        r = await http.get("/api/v1/alerts", params={"case_id": "case-1"})
        assert r.status_code == 200
        return sum(a["type"] == "proximity_breach" for a in r.json())


async def register(i: Instance) -> None:
    async with i.client() as http:
        for device, kind in (("tag-1", "ankle_tag"), ("victim-1", "victim_device"), ("tag-2", "ankle_tag")):
            r = await http.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            assert r.status_code == 201, r.text
        residence = destination(*VICTIM_AT, 0, 6000)
        case = {
            "case_id": "case-1",
            "risk": "high",
            "offender_device": "tag-1",
            "victim_device": "victim-1",
            "residence": {"lat": residence[0], "lon": residence[1]},
            "order": {"contact_ban_m": 300},
        }
        r = await http.post("/api/v1/cases", json=case)
        assert r.status_code == 201, r.text


@pytest.mark.timeout(120)
async def test_killed_with_batches_in_flight_every_accepted_fix_is_stored_and_the_breach_alerted() -> None:
    async with cluster(names=("solo",)) as c:
        (emon,) = c.instances
        for single_instance in ("EMON_INSTANCE_ID", "EMON_LEASE_S", "EMON_LEASE_RENEW_S"):
            del emon.env[single_instance]
        emon.env.update({"EMON_BATCH_MAX": "20", "EMON_BATCH_WAIT_MS": "2", "EMON_INGEST_INFLIGHT": "4"})
        emon.start()
        await emon.ready()
        await register(emon)
        accepted: set[tuple[str, int]] = set()  # (device, seq) of every fix the broker PUBACKed
        start = time.time() - 10

        async with aiomqtt.Client("127.0.0.1", 1883, max_inflight_messages=200) as pub:

            async def send(device: str, seq: int, distance_m: float, at: float) -> None:
                await pub.publish(c.topic(f"emon/v1/fix/{device}"), fix(device, seq, distance_m, at), qos=1)
                accepted.add((device, seq))  # publish returns on the broker's PUBACK

            async def flood(first: int) -> None:
                await asyncio.gather(
                    *(send("tag-2", s, 5000, start + s / 1000) for s in range(first, first + FILLER))
                )

            before = asyncio.create_task(flood(0))
            await asyncio.sleep(0.05)  # the flood is under way: batches queue up behind the evaluation
            t0 = time.time() - 4
            for i, d in enumerate(APPROACH_M):
                await send("victim-1", i, 0, t0 + 0.5 * i)
                await send("tag-1", i, d, t0 + 0.5 * i)
            after = asyncio.create_task(flood(FILLER))
            last = f"SELECT 1 FROM {{s}}.fixes WHERE device_id = 'tag-1' AND seq = {len(APPROACH_M) - 1}"
            await eventually(lambda: query(emon, last), within=10, interval=0.002)
            emon.signal(signal.SIGKILL)  # the breach is stored (and acknowledged), likely not yet evaluated
            assert emon.proc is not None
            await asyncio.to_thread(emon.proc.wait, 10)
            await asyncio.gather(before, after)

        published = 2 * FILLER + 2 * len(APPROACH_M)
        assert len(accepted) == published
        stored_at_kill = (await query(emon, "SELECT count(*) FROM {s}.fixes"))[0][0]
        unevaluated = (await query(emon, UNEVALUATED))[0][0]
        assert stored_at_kill < published, "killed too late: nothing left to redeliver"
        assert unevaluated > 0, "killed too late: every stored fix was already evaluated"

        emon.stop()
        emon.start()  # same client id: the persistent session redelivers what emon had not acknowledged
        await emon.ready()
        rows = await eventually(lambda: _all_stored(emon, published), within=30, interval=0.2)
        assert len(rows) == published and {(str(d), int(s)) for d, s in rows} == accepted
        assert await eventually(lambda: breach_alerts(emon), within=15, interval=0.2) == 1
        await eventually(lambda: _evaluated(emon), within=15, interval=0.2)  # the watermark caught up


async def _evaluated(i: Instance) -> bool:
    rows = await query(i, UNEVALUATED)
    return int(rows[0][0]) == 0


async def _all_stored(i: Instance, n: int) -> list[tuple[Any, ...]] | None:
    rows = await query(i, "SELECT device_id, seq FROM {s}.fixes")
    return rows if len(rows) >= n else None
