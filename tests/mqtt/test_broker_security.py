"""The shipped broker configuration lets devices be only themselves (issue 10), on a private Mosquitto.

Each test runs ``deploy/mosquitto/`` on its own port with a throwaway CA (see ``broker.py``) and the
topic prefix ``acme`` (so the prefixed ACL is what is tested). Publishers use emon's own client (it
reports the broker's PUBACK reason codes); subscribers and the anonymous probe use aiomqtt as an
independent client.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from emon.mqtt import wire
from emon.mqtt.client import MqttClient, PublishRefused
from emon.mqtt.endpoint import Endpoint
from emon.mqtt.protocol import SessionOptions
from tests.mqtt.broker import DEPLOY, PrivateBroker, prefixed_acl, private_broker

pytestmark = pytest.mark.integration
PREFIX = "acme"
USERS = ("emon", "tag-1", "tag-2", "vic-1", "vic-2", "anna")
NOT_AUTHORIZED = 0x87


@pytest.fixture
async def broker() -> AsyncIterator[PrivateBroker]:
    async with private_broker(PREFIX, USERS) as b:
        yield b


def connack_code(broker: PrivateBroker, username: str | None, password: str | None, version: int) -> int:
    """CONNECT over TLS by hand and return the CONNACK code (0 = accepted)."""
    raw = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    with broker.tls().wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(
            wire.encode_connect(
                f"probe-{uuid.uuid4().hex[:6]}",
                30,
                version,
                clean=True,
                session_expiry_s=0,
                username=username,
                password=password,
            )
        )
        reader = wire.PacketReader(version)
        while True:
            data = s.recv(4096)
            if not data:
                raise ConnectionError("closed without CONNACK")
            for p in reader.feed(data):
                if isinstance(p, wire.ConnAck):
                    return p.code


@contextlib.asynccontextmanager
async def connected(
    broker: PrivateBroker, username: str, subscribe: tuple[str, ...] = ()
) -> AsyncIterator[tuple[MqttClient, list[tuple[str, bytes]]]]:
    """emon's client logged in as ``username`` over TLS; what it receives lands in the list."""
    received: list[tuple[str, bytes]] = []
    endpoint = Endpoint("127.0.0.1", broker.port, broker.tls(), username, broker.passwords[username])
    options = SessionOptions(
        f"{username}-{uuid.uuid4().hex[:6]}",
        clean=True,
        session_expiry_s=0,
        subscriptions=tuple((broker.topic(t), 1) for t in subscribe),
    )
    client = MqttClient(endpoint, options, lambda t, p, _: received.append((t, p)))
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        yield client, received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def listener(
    broker: PrivateBroker, username: str, topic: str
) -> AsyncIterator[list[tuple[str, bytes]]]:
    """An aiomqtt subscriber (an independent client) collecting what the broker lets it read."""
    got: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=username,
        password=broker.passwords[username],
        tls_context=broker.tls(),
        protocol=aiomqtt.ProtocolVersion.V5,
    ) as c:
        await c.subscribe(broker.topic(topic), qos=1)

        async def pump() -> None:
            async for m in c.messages:
                got.append((str(m.topic), bytes(m.payload)))  # type: ignore[arg-type]

        task = asyncio.create_task(pump())
        try:
            yield got
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def until(check: object, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------------ logging in
@pytest.mark.parametrize("version", [wire.V311, wire.V5])
async def test_anonymous_and_wrong_passwords_are_refused(broker: PrivateBroker, version: int) -> None:
    # v3: 4 bad user name or password / 5 not authorized; v5: 0x86 / 0x87 (Mosquitto 2.0 says the latter)
    refusals = (4, 5) if version == wire.V311 else (0x86, NOT_AUTHORIZED)
    assert await asyncio.to_thread(connack_code, broker, None, None, version) in refusals
    assert await asyncio.to_thread(connack_code, broker, "tag-1", "guess", version) in refusals
    assert (
        await asyncio.to_thread(connack_code, broker, "nobody", broker.passwords["tag-1"], version)
        in refusals
    )
    # The password issued by emon (a $7$ PBKDF2-SHA512 line) is accepted.
    assert await asyncio.to_thread(connack_code, broker, "tag-1", broker.passwords["tag-1"], version) == 0


async def test_an_independent_client_without_credentials_or_tls_gets_nowhere(broker: PrivateBroker) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", broker.port, tls_context=broker.tls(), timeout=5):
            pass
    with pytest.raises(aiomqtt.MqttError):  # plain TCP to the TLS listener
        async with aiomqtt.Client(
            "127.0.0.1", broker.port, username="tag-1", password=broker.passwords["tag-1"], timeout=3
        ):
            pass


async def test_a_broker_certificate_from_another_ca_is_refused(broker: PrivateBroker) -> None:
    endpoint = Endpoint(
        "127.0.0.1", broker.port, ssl.create_default_context(), "tag-1", broker.passwords["tag-1"]
    )
    client = MqttClient(endpoint, SessionOptions("tag-1-x", clean=True, session_expiry_s=0))
    with pytest.raises(ssl.SSLCertVerificationError):
        await client._connection()
    assert client.session.reconnect_delay(0.5) == client.session.options.reconnect_cap_s  # an operator's job


# ----------------------------------------------------------------------------- publishing
async def test_a_device_cannot_publish_as_another_device(broker: PrivateBroker) -> None:
    async with (
        listener(broker, "emon", "emon/v1/fix/+") as emon_sees,
        connected(broker, "tag-2") as (tag2, _),
    ):
        with pytest.raises(PublishRefused) as refused:
            await tag2.publish(broker.topic("emon/v1/fix/tag-1"), b'{"forged": true}')
        assert refused.value.code == NOT_AUTHORIZED
        for kind in ("event", "ack"):
            with pytest.raises(PublishRefused):
                await tag2.publish(broker.topic(f"emon/v1/{kind}/tag-1"), b"{}")
        await tag2.publish(broker.topic("emon/v1/fix/tag-2"), b'{"own": true}')  # its own topic works
        await until(lambda: len(emon_sees) == 1)
        await asyncio.sleep(0.3)
    assert emon_sees == [(broker.topic("emon/v1/fix/tag-2"), b'{"own": true}')]


async def test_nobody_but_emon_can_write_a_victims_warning(broker: PrivateBroker) -> None:
    async with listener(broker, "vic-1", "emon/v1/notify/vic-1") as victim_reads:
        for intruder in ("tag-1", "vic-2", "anna"):
            async with connected(broker, intruder) as (client, _):
                with pytest.raises(PublishRefused) as refused:
                    await client.publish(broker.topic("emon/v1/notify/vic-1"), b'{"type": "all_clear"}')
                assert refused.value.code == NOT_AUTHORIZED
                with pytest.raises(PublishRefused):
                    await client.publish(broker.topic("emon/v1/cmd/vic-1"), b"{}")
        async with connected(broker, "emon") as (emon, _):
            await emon.publish(broker.topic("emon/v1/notify/vic-1"), b'{"type": "proximity_breach"}')
        await until(lambda: len(victim_reads) == 1)
        await asyncio.sleep(0.3)
    assert victim_reads == [(broker.topic("emon/v1/notify/vic-1"), b'{"type": "proximity_breach"}')]


async def test_a_device_reads_only_its_own_notifications(broker: PrivateBroker) -> None:
    async with (
        listener(broker, "vic-1", "emon/v1/notify/+") as vic1_reads,
        connected(broker, "emon") as (emon, _),
    ):
        await emon.publish(broker.topic("emon/v1/notify/vic-2"), b"for vic-2")
        await emon.publish(broker.topic("emon/v1/notify/vic-1"), b"for vic-1")
        await until(lambda: len(vic1_reads) >= 1)
        await asyncio.sleep(0.3)
    assert vic1_reads == [(broker.topic("emon/v1/notify/vic-1"), b"for vic-1")]


async def test_victim_acknowledgements_and_owntracks_phones_still_work(broker: PrivateBroker) -> None:
    topics = ("emon/v1/ack/+", "owntracks/+/+")  # what emon's ingest subscribes to (besides fix and event)
    async with connected(broker, "emon", subscribe=topics) as (emon, emon_sees):
        async with connected(broker, "vic-1") as (vic1, _):
            await vic1.publish(broker.topic("emon/v1/ack/vic-1"), b'{"notification_id": "n-1"}')
        async with connected(broker, "anna", subscribe=("owntracks/anna/+/cmd",)) as (anna, anna_reads):
            await anna.publish(broker.topic("owntracks/anna/phone"), b'{"_type": "location"}')
            # accepted (emon does not read transition events, so nobody receives it)
            await anna.publish(broker.topic("owntracks/anna/phone/event"), b'{"_type": "transition"}')
            with pytest.raises(PublishRefused):
                await anna.publish(broker.topic("owntracks/bob/phone"), b'{"_type": "location"}')
            await emon.publish(broker.topic("owntracks/anna/phone/cmd"), b'{"_type": "cmd"}')
            await until(lambda: len(anna_reads) == 1)
        await until(lambda: len(emon_sees) == 2)
        await asyncio.sleep(0.3)
    assert sorted(emon_sees) == sorted(
        [
            (broker.topic("emon/v1/ack/vic-1"), b'{"notification_id": "n-1"}'),
            (broker.topic("owntracks/anna/phone"), b'{"_type": "location"}'),
        ]
    )
    assert anna_reads == [(broker.topic("owntracks/anna/phone/cmd"), b'{"_type": "cmd"}')]


async def test_client_certificates_work_when_the_broker_requires_them() -> None:
    async with private_broker(PREFIX, ["emon"], require_certificate="true") as broker:
        password = broker.passwords["emon"]
        with_cert = Endpoint.from_url(
            f"mqtts://emon:{password}@127.0.0.1:{broker.port}",
            ca_file=broker.ca_file,
            cert_file=broker.client_cert,
            key_file=broker.client_key,
        )
        client = MqttClient(with_cert, SessionOptions("emon-cert", clean=True, session_expiry_s=0))
        task = asyncio.create_task(client.run())
        try:
            await asyncio.wait_for(client.connected.wait(), 10)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        without = Endpoint.from_url(
            f"mqtts://emon:{password}@127.0.0.1:{broker.port}", ca_file=broker.ca_file
        )
        bare = MqttClient(without, SessionOptions("emon-nocert", clean=True, session_expiry_s=0))
        with pytest.raises((OSError, wire.MqttError)):
            await bare._connection()


def test_the_documented_sed_line_prefixes_the_acl_as_the_tests_do(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("sed") is None:
        pytest.skip("needs sed")
    acl = DEPLOY / "acl"
    script = r"s#^((topic|pattern)( (read|write|readwrite|deny))? )#\1acme/#"
    assert script in (DEPLOY / "README.md").read_text()
    out = subprocess.run(["sed", "-E", script, str(acl)], check=True, capture_output=True, text=True).stdout
    assert out == prefixed_acl(acl.read_text(), "acme")
    assert "pattern write acme/emon/v1/fix/%u" in out and "topic write acme/emon/v1/notify/+" in out
