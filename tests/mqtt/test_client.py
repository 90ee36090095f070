"""emon's MQTT client against real brokers: PUBACK waits, a broker outage, giving up cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from emon.alerts.channels import DeliveryError
from emon.alerts.channels.command import CommandChannel
from emon.alerts.channels.publisher import Publisher
from emon.alerts.channels.victim import VictimChannel
from emon.device import Device, DeviceKind, DeviceRegistry
from emon.mqtt import wire
from emon.mqtt.client import MqttClient
from emon.mqtt.endpoint import Endpoint
from emon.mqtt.protocol import SessionOptions
from tests.mqtt.broker import PrivateBroker, private_broker

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def running(client: MqttClient, wait: bool = True) -> AsyncIterator[MqttClient]:
    task = asyncio.create_task(client.run())
    try:
        if wait:
            await asyncio.wait_for(client.connected.wait(), 10)
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def collect(client: aiomqtt.Client, into: list[bytes]) -> None:
    async for m in client.messages:
        into.append(bytes(m.payload))  # type: ignore[arg-type]


async def test_qos1_and_qos0_publishes_reach_a_subscriber_on_the_shared_broker() -> None:
    prefix = f"t/{uuid.uuid4().hex[:10]}"
    got: list[bytes] = []
    options = SessionOptions(f"emon-test-pub-{uuid.uuid4().hex[:8]}", clean=True, session_expiry_s=0)
    async with (
        aiomqtt.Client("127.0.0.1", 1883) as sub,
        running(MqttClient(Endpoint("127.0.0.1", 1883), options)) as c,
    ):
        await sub.subscribe(f"{prefix}/x", qos=1)
        pump = asyncio.create_task(collect(sub, got))
        await c.publish(f"{prefix}/x", b"one", qos=1)  # returns once the broker's PUBACK came
        await c.publish(f"{prefix}/x", b"two", qos=0)
        assert c.session.in_flight == 0
        for _ in range(100):
            if len(got) == 2:
                break
            await asyncio.sleep(0.05)
        pump.cancel()
    assert got == [b"one", b"two"]


async def _restart_later(broker: PrivateBroker, after_s: float) -> None:
    await asyncio.sleep(after_s)
    await asyncio.to_thread(broker.start)
    await broker.wait_listening()


async def test_a_publish_made_during_a_broker_outage_is_delivered_when_it_returns() -> None:
    async with private_broker("", ["emon", "vic-1"]) as broker:
        endpoint = Endpoint("127.0.0.1", broker.port, broker.tls(), "emon", broker.passwords["emon"])
        registry = DeviceRegistry([Device("vic-1", DeviceKind.VICTIM_DEVICE)])
        channel = VictimChannel(
            "ignored", 0, "", registry, endpoint=endpoint, client_id="emon-notify", timeout_s=15
        )
        try:
            await channel.send("vic-1", b"before")  # connects on first use
            await asyncio.to_thread(broker.stop)  # the broker goes away …
            restart = asyncio.create_task(_restart_later(broker, 0.5))
            await channel.send("vic-1", b"during")  # … and this waits for it, then gets its PUBACK
            await restart
            async with aiomqtt.Client(
                "127.0.0.1",
                broker.port,
                username="vic-1",
                password=broker.passwords["vic-1"],
                tls_context=broker.tls(),
            ) as victim:
                got: list[bytes] = []
                await victim.subscribe("emon/v1/notify/vic-1", qos=1)
                pump = asyncio.create_task(collect(victim, got))
                await channel.send("vic-1", b"after")
                for _ in range(100):
                    if got:
                        break
                    await asyncio.sleep(0.05)
                pump.cancel()
            assert got == [b"after"]
            # Offenders' tags are never addressed, whatever the outbox asks.
            registry.add(Device("tag-1", DeviceKind.ANKLE_TAG))
            with pytest.raises(DeliveryError, match="not a victim device"):
                await channel.send("tag-1", b"x")
        finally:
            await channel.close()


async def test_a_publish_that_cannot_be_delivered_in_time_is_withdrawn() -> None:
    async with private_broker("", ["emon"]) as broker:
        endpoint = Endpoint("127.0.0.1", broker.port, broker.tls(), "emon", broker.passwords["emon"])
        await asyncio.to_thread(broker.stop)
        registry = DeviceRegistry([Device("vic-1", DeviceKind.VICTIM_DEVICE)])
        channel = VictimChannel("ignored", 0, "", registry, endpoint=endpoint, timeout_s=0.5)
        try:
            with pytest.raises(DeliveryError, match="no PUBACK"):
                await channel.send("vic-1", b"lost?")
            # Withdrawn: the outbox owns the retry now, so the client will not also resend it later.
            assert channel.client.session.in_flight == 0
        finally:
            await channel.close()


async def test_wrong_credentials_are_logged_and_retried_at_the_cap(caplog: pytest.LogCaptureFixture) -> None:
    async with private_broker("", ["emon"]) as broker:
        endpoint = Endpoint("127.0.0.1", broker.port, broker.tls(), "emon", "wrong")
        client = MqttClient(
            endpoint,
            SessionOptions("emon-x", clean=True, session_expiry_s=0, reconnect_cap_s=7.0),
            rng=lambda: 0.5,
        )
        with pytest.raises(wire.MqttError, match="refused the connection: not authorized"):
            await client._connection()
        assert client.session.reconnect_delay(0.5) == 7.0
        assert any("not authorized" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


async def test_commands_go_over_tls_with_emons_credentials_on_the_notification_session() -> None:
    """Locate-now commands share the notifications' publisher: the shipped broker (TLS, passwords, ACL)
    accepts them from emon and hands them to the tag, which may read only its own command topic."""
    async with private_broker("", ["emon", "tag-1"]) as broker:
        endpoint = Endpoint("127.0.0.1", broker.port, broker.tls(), "emon", broker.passwords["emon"])
        publisher = Publisher(endpoint, f"emon-notify-{uuid.uuid4().hex[:8]}")
        registry = DeviceRegistry([Device("vic-1", DeviceKind.VICTIM_DEVICE)])
        commands = CommandChannel("", publisher, timeout_s=10)
        victim = VictimChannel("ignored", 0, "", registry, publisher=publisher, timeout_s=10)
        try:
            async with aiomqtt.Client(
                "127.0.0.1",
                broker.port,
                username="tag-1",
                password=broker.passwords["tag-1"],
                tls_context=broker.tls(),
            ) as tag:
                got: list[bytes] = []
                await tag.subscribe("emon/v1/cmd/tag-1", qos=1)
                pump = asyncio.create_task(collect(tag, got))
                await commands.send("emon/v1/cmd/tag-1", b'{"cmd":"locate"}')  # returns on the PUBACK
                for _ in range(100):
                    if got:
                        break
                    await asyncio.sleep(0.05)
                pump.cancel()
            assert got == [b'{"cmd":"locate"}']
            assert victim.client is commands.publisher.client  # one session, not a second connection
        finally:
            await commands.close()
            await victim.close()
