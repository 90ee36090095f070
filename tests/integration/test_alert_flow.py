"""The whole path, through real Mosquitto, PostgreSQL and Redis: an offender walks toward the victim.

Fixes over MQTT → stored → evaluated → alert decided → the victim device is warned on its notify topic
and acks; probation sees the alert on the SSE stream; police dispatch receives a signed CAP 1.2
message that validates against the schema. And a restarted emon delivers a pending warning once.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import httpx
import pytest
import xmlschema

from emon.alerts.cap import schema_path
from emon.alerts.channels.dispatch import verify
from emon.alerts.config import AlertConfig
from emon.geo import destination
from emon.settings import Secret
from tests.alerts.conftest import WebhookServer
from tests.harness import Running, eventually, publish, running_emon, start

pytestmark = pytest.mark.integration
SECRET = "flow-test-webhook-secret"
VICTIM_AT = (52.3702, 4.8952)  # Amsterdam


async def setup(em: Running) -> None:
    async with em.client() as c:
        for device, kind in (("tag-9", "ankle_tag"), ("victim-9", "victim_device")):
            assert (
                await c.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            ).status_code == 201
        residence = destination(*VICTIM_AT, 0, 6000)
        case = {
            "case_id": "case-9",
            "risk": "high",
            "offender_device": "tag-9",
            "victim_device": "victim-9",
            "residence": {"lat": residence[0], "lon": residence[1]},
            "order": {"contact_ban_m": 300},
        }
        assert (await c.post("/api/v1/cases", json=case)).status_code == 201


async def approach(em: Running, distances_m: list[float]) -> None:
    now = datetime.now(UTC)
    start = now - timedelta(seconds=10 * (len(distances_m) + 1))
    victim = {"ts": start.isoformat(), "lat": VICTIM_AT[0], "lon": VICTIM_AT[1], "acc": 10}
    await publish(em.topic("emon/v1/fix/victim-9"), json.dumps(victim))
    for i, d in enumerate(distances_m):
        lat, lon = destination(*VICTIM_AT, 0, d)
        ts = now - timedelta(seconds=10 * (len(distances_m) - i))
        # The victim's phone reports as well, just before the tag (a breach needs fresh fixes of both,
        # docs/safety.md); in time order, so the pair is judged the same however the batches fall.
        if d < 500:
            mine = {**victim, "ts": (ts - timedelta(seconds=1)).isoformat(), "seq": 100 + i}
            await publish(em.topic("emon/v1/fix/victim-9"), json.dumps(mine))
        fix = {"ts": ts.isoformat(), "lat": lat, "lon": lon, "acc": 5, "seq": i}
        await publish(em.topic("emon/v1/fix/tag-9"), json.dumps(fix))


async def read_stream(em: Running, token: str, seen: list[tuple[str, dict[str, Any]]]) -> None:
    async with (
        httpx.AsyncClient(
            base_url=em.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=None
        ) as c,
        c.stream("GET", "/api/v1/stream") as r,
    ):
        event = ""
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                seen.append((event, json.loads(line.split(":", 1)[1])))


def walk_in() -> list[float]:
    return [2400, 2000, 1600, 1200, 800, 400, 150, 100]


@pytest.mark.timeout(60)
async def test_offender_approaching_the_victim_reaches_all_three_audiences() -> None:
    server = WebhookServer()
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    hook = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/cap"
    try:
        async with running_emon(webhook_url=hook, webhook_secret=Secret(SECRET)) as em:
            await setup(em)
            probation = await em.token_for("probation")
            stream: list[tuple[str, dict[str, Any]]] = []
            reader = asyncio.create_task(read_stream(em, probation, stream))
            async with aiomqtt.Client("127.0.0.1", 1883) as victim:
                await victim.subscribe(em.topic("emon/v1/notify/victim-9"), qos=1)
                await eventually(lambda: _ready(em))
                await approach(em, walk_in())
                async with asyncio.timeout(15):
                    async for message in victim.messages:
                        note = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                        if note["type"] == "proximity_breach":
                            break
                # The warning says what to do, in Dutch and English, and never where the offender is.
                assert note["message"]["nl"] and note["message"]["en"]
                assert not _has_position(note)
                ack = {"notification_id": note["notification_id"], "ts": datetime.now(UTC).isoformat()}
                await victim.publish(em.topic("emon/v1/ack/victim-9"), json.dumps(ack), qos=1)

            async def acked() -> dict[str, Any] | None:
                async with em.client(probation) as c:
                    alerts = (await c.get("/api/v1/alerts", params={"case_id": "case-9"})).json()
                return next(
                    (a for a in alerts if a["type"] == "proximity_breach" and a["victim_acked_at"]), None
                )

            alert = await eventually(acked)
            assert set(alert["recipients"]) == {"victim", "probation", "police"}
            assert alert["explanation"]["evidence"] and alert["distance_m"] is not None

            await eventually(lambda: _has(stream, "proximity_breach"))
            received = await server.wait_for(1)
            cap = next(x for x in received if b"proximity" in x.body.lower() or b"Proximity" in x.body)
            schema = xmlschema.XMLSchema(schema_path())
            schema.validate(cap.body.decode())
            h = cap.headers
            assert verify(
                SECRET, h["webhook-id"], int(h["webhook-timestamp"]), cap.body, h["webhook-signature"]
            )
            assert b"<scope>Restricted</scope>" in cap.body and b"case-9" in cap.body
            reader.cancel()
    finally:
        srv.close()
        await srv.wait_closed()


@pytest.mark.timeout(60)
async def test_a_restarted_emon_delivers_a_pending_warning_once() -> None:
    async with running_emon(alerts=AlertConfig(victim_resend_s=2)) as em:
        await setup(em)
        # The victim's phone is away: the warning cannot be acknowledged, so it stays pending.
        await approach(em, walk_in())

        async def decided() -> bool:
            async with em.client() as c:
                alerts = (await c.get("/api/v1/alerts", params={"case_id": "case-9"})).json()
            return any(a["type"] == "proximity_breach" for a in alerts)

        await eventually(decided)
        await em.stop()
        notes: list[dict[str, Any]] = []
        async with aiomqtt.Client("127.0.0.1", 1883) as victim:
            await victim.subscribe(em.topic("emon/v1/notify/victim-9"), qos=1)
            again = await start(em.settings)
            try:
                async with asyncio.timeout(15):
                    async for message in victim.messages:
                        note = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                        notes.append(note)
                        if note["type"] == "proximity_breach":
                            ack = {"notification_id": note["notification_id"]}
                            await victim.publish(em.topic("emon/v1/ack/victim-9"), json.dumps(ack), qos=1)
                            break
                await asyncio.sleep(1.0)  # resends after the ack would show up here
            finally:
                await again.stop()
        breach_ids = {n["notification_id"] for n in notes if n["type"] == "proximity_breach"}
        assert len(breach_ids) == 1  # one notification (resends reuse its id), acknowledged once


async def _ready(em: Running) -> bool:
    return em.runtime.mqtt.connected.is_set()


async def _has(stream: list[tuple[str, dict[str, Any]]], alert_type: str) -> bool:
    return any(kind == "alert" and body.get("type") == alert_type for kind, body in stream)


def _has_position(obj: Any) -> bool:
    if isinstance(obj, dict):
        return any(
            k in ("lat", "lon", "latitude", "longitude", "distance_m") or _has_position(v)
            for k, v in obj.items()
        )
    if isinstance(obj, list):
        return any(_has_position(v) for v in obj)
    return False
