"""A real emon on the shipped broker configuration: TLS, its own account, devices with theirs.

A fix from the tag is stored, a fix forged by another device on the tag's topic is refused by the
broker and never stored, the victim's device receives its warning over TLS, and its acknowledgement
reaches the alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import pytest

from emon.geo import destination
from emon.mqtt.client import MqttClient, PublishRefused
from emon.mqtt.endpoint import Endpoint
from emon.mqtt.protocol import SessionOptions
from emon.settings import Secret
from tests.harness import Running, cleanup, eventually, isolated_settings, start
from tests.mqtt.broker import PrivateBroker, private_broker

pytestmark = pytest.mark.integration
PREFIX = "acme"
VICTIM_AT = (52.3702, 4.8952)


@contextlib.asynccontextmanager
async def device(broker: PrivateBroker, username: str) -> AsyncIterator[MqttClient]:
    """A device publishing with emon's client, over TLS, as itself."""
    endpoint = Endpoint("127.0.0.1", broker.port, broker.tls(), username, broker.passwords[username])
    client = MqttClient(
        endpoint, SessionOptions(f"{username}-{uuid.uuid4().hex[:6]}", clean=True, session_expiry_s=0)
    )
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def register(em: Running) -> None:
    async with em.client() as c:
        for device_id, kind in (
            ("tag-9", "ankle_tag"),
            ("tag-8", "ankle_tag"),
            ("victim-9", "victim_device"),
        ):
            r = await c.post("/api/v1/devices", json={"device_id": device_id, "kind": kind})
            assert r.status_code == 201, r.text
        residence = destination(*VICTIM_AT, 0, 6000)
        case = {
            "case_id": "case-9",
            "risk": "high",
            "offender_device": "tag-9",
            "victim_device": "victim-9",
            "residence": {"lat": residence[0], "lon": residence[1]},
            "order": {"contact_ban_m": 300},
        }
        r = await c.post("/api/v1/cases", json=case)
        assert r.status_code == 201, r.text


def fix(distance_m: float, ts: datetime, seq: int) -> bytes:
    lat, lon = destination(*VICTIM_AT, 0, distance_m)
    return json.dumps({"ts": ts.isoformat(), "lat": lat, "lon": lon, "acc": 5, "seq": seq}).encode()


async def track_seqs(em: Running, device_id: str) -> list[int]:
    async with em.client() as c:
        r = await c.get(f"/api/v1/devices/{device_id}/track")
        assert r.status_code == 200, r.text
        return sorted(f["seq"] for f in r.json())


@pytest.mark.timeout(90)
async def test_emon_ingests_and_notifies_over_tls_with_its_own_credentials() -> None:
    async with private_broker(PREFIX, ["emon", "tag-9", "tag-8", "victim-9"]) as broker:
        settings = isolated_settings(
            mqtt_url=f"mqtts://emon@127.0.0.1:{broker.port}",
            mqtt_password=Secret(broker.passwords["emon"]),
            mqtt_ca_file=broker.ca_file,
            mqtt_topic_prefix=PREFIX,
        )
        settings.check()
        assert broker.passwords["emon"] not in repr(settings)
        em = await start(settings)  # returns once ingest is connected and subscribed over TLS
        try:
            await register(em)
            async with aiomqtt.Client(
                "127.0.0.1",
                broker.port,
                username="victim-9",
                password=broker.passwords["victim-9"],
                tls_context=broker.tls(),
                protocol=aiomqtt.ProtocolVersion.V5,
            ) as victim:
                await victim.subscribe(broker.topic("emon/v1/notify/victim-9"), qos=1)
                now = datetime.now(UTC)

                # A device that tries to speak for the tag: refused by the broker, never stored.
                async with device(broker, "tag-8") as intruder:
                    with pytest.raises(PublishRefused):
                        await intruder.publish(broker.topic("emon/v1/fix/tag-9"), fix(5000, now, 999))

                async with device(broker, "tag-9") as tag:
                    walk = [2400, 1600, 800, 400, 150, 100]
                    for i, d in enumerate(walk):
                        # The victim's phone reports with the tag: a breach needs two fixes inside the ban,
                        # each with a fresh victim fix (docs/safety.md).
                        ts = now - timedelta(seconds=10 * (len(walk) - i))
                        await victim.publish(broker.topic("emon/v1/fix/victim-9"), fix(0, ts, 1 + i), qos=1)
                        await tag.publish(broker.topic("emon/v1/fix/tag-9"), fix(d, ts, i))

                note: dict[str, Any] = {}
                async with asyncio.timeout(20):
                    async for message in victim.messages:
                        note = json.loads(bytes(message.payload))  # type: ignore[arg-type]
                        if note["type"] == "proximity_breach":
                            break
                ack = {"notification_id": note["notification_id"], "ts": datetime.now(UTC).isoformat()}
                await victim.publish(broker.topic("emon/v1/ack/victim-9"), json.dumps(ack), qos=1)

            async def acked() -> dict[str, Any] | None:
                async with em.client() as c:
                    alerts = (await c.get("/api/v1/alerts", params={"case_id": "case-9"})).json()
                return next(
                    (a for a in alerts if a["alert_id"] == note["alert_id"] and a["victim_acked_at"]), None
                )

            await eventually(acked)
            assert await track_seqs(em, "tag-9") == [0, 1, 2, 3, 4, 5]  # seq 999 (forged) is not there
        finally:
            if not em.task.done():
                await em.stop()
            await cleanup(settings)
