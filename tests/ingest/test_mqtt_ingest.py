"""MqttIngest against the real Mosquitto (and the embedded amqtt): at least once, acked once stored."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from urllib.parse import urlsplit

import aiomqtt
import pytest

from emon.deadletters import DeadLetterRow
from emon.device import DeviceRegistry
from emon.fix import DeviceEvent, Fix
from emon.ingest.mqtt import AckToken, MqttIngest, ack_all
from emon.ingest.pipeline import Pipeline
from emon.mqtt import wire
from emon.mqtt.endpoint import Endpoint
from tests.harness import eventually

pytestmark = pytest.mark.integration


class Collector:
    """A sink that records every message; acks only when the test says so."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, AckToken | None]] = []

    def __call__(self, topic: str, payload: bytes, ack: AckToken | None) -> None:
        self.messages.append((topic, payload, ack))

    def payloads(self) -> list[bytes]:
        return [m[1] for m in self.messages]

    def ack_everything(self) -> None:
        ack_all(t for _, _, t in self.messages if t is not None)


@contextlib.asynccontextmanager
async def ingesting(
    client_id: str, prefix: str, sink: Collector, port: int = 1883, protocol: str = "5"
) -> AsyncIterator[MqttIngest]:
    ingest = MqttIngest(Endpoint("127.0.0.1", port), client_id, prefix, sink, protocol)
    task = asyncio.create_task(ingest.run())
    try:
        await asyncio.wait_for(ingest.connected.wait(), 10)
        yield ingest
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)  # shutdown is bounded


@pytest.fixture
async def ids() -> AsyncIterator[tuple[str, str]]:
    """A client id and topic prefix of this test only; the persistent session is removed afterwards."""
    tag = uuid.uuid4().hex[:10]
    client_id = f"emon-test-mqtt-{tag}"
    yield client_id, f"t/{tag}"
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=client_id, clean_session=True):
        pass


async def publish_all(
    topic: str, payloads: Sequence[bytes], port: int = 1883, v311: bool = False, pause_s: float = 0.0
) -> None:
    protocol = aiomqtt.ProtocolVersion.V311 if v311 else aiomqtt.ProtocolVersion.V5
    async with aiomqtt.Client("127.0.0.1", port, protocol=protocol) as client:
        for p in payloads:
            await client.publish(topic, p, qos=1)
            if pause_s:
                await asyncio.sleep(pause_s)


async def test_subscribes_to_every_device_topic_and_delivers_with_tokens(ids: tuple[str, str]) -> None:
    client_id, prefix = ids
    sink = Collector()
    async with ingesting(client_id, prefix, sink) as ingest:
        assert ingest.topics() == [
            f"{prefix}/emon/v1/fix/+",
            f"{prefix}/emon/v1/event/+",
            f"{prefix}/emon/v1/ack/+",
            f"{prefix}/owntracks/+/+",
        ]
        await publish_all(f"{prefix}/emon/v1/fix/tag-1", [b"a", b"", b"c" * 100_000])
        await publish_all(f"{prefix}/owntracks/anna/phone", [b"o"])
        async with aiomqtt.Client("127.0.0.1", 1883) as c:
            await c.publish(f"{prefix}/emon/v1/event/tag-1", b"q0", qos=0)
        await eventually(lambda: _true(len(sink.messages) == 5))
        by_payload = {p: (t, tok) for t, p, tok in sink.messages}
        assert by_payload[b"a"][0] == f"{prefix}/emon/v1/fix/tag-1"
        assert by_payload[b"o"][0] == f"{prefix}/owntracks/anna/phone"
        assert by_payload[b"c" * 100_000][1] is not None
        assert by_payload[b"q0"][1] is None  # QoS 0: nothing to acknowledge
        sink.ack_everything()


async def _true(value: bool) -> bool:
    return value


async def test_unacked_messages_are_redelivered_and_acked_ones_are_not(ids: tuple[str, str]) -> None:
    client_id, prefix = ids
    topic = f"{prefix}/emon/v1/fix/tag-1"
    payloads = [b"%d" % i for i in range(200)]
    first = Collector()
    async with ingesting(client_id, prefix, first):
        await publish_all(topic, payloads)
        await eventually(lambda: _true(len(first.messages) == 200))
        # The first 120 are "committed": acknowledged in receive order. The rest never are, as if
        # emon crashed before their batch reached PostgreSQL.
        ack_all(t for _, _, t in first.messages[:120] if t is not None)
        await asyncio.sleep(0.3)  # let the PUBACKs reach the broker before we disconnect
    assert first.payloads() == payloads

    second = Collector()
    async with ingesting(client_id, prefix, second):
        await eventually(lambda: _true(len(second.messages) >= 80))
        await asyncio.sleep(0.5)  # nothing more may come
        assert second.payloads() == payloads[120:]
        # Tokens from the previous connection acknowledge nothing on this one.
        ack_all(t for _, _, t in first.messages[120:] if t is not None)
        await asyncio.sleep(0.3)

    third = Collector()
    async with ingesting(client_id, prefix, third):
        await eventually(lambda: _true(len(third.messages) >= 80))
        assert third.payloads() == payloads[120:]  # still not acknowledged: here again
        third.ack_everything()
        await asyncio.sleep(0.3)

    fourth = Collector()
    async with ingesting(client_id, prefix, fourth):
        await asyncio.sleep(0.5)
        assert fourth.messages == []


async def test_published_while_down_arrives_after_reconnect(ids: tuple[str, str]) -> None:
    client_id, prefix = ids
    async with ingesting(client_id, prefix, Collector()):
        pass  # establishes the persistent session and its subscriptions
    await publish_all(f"{prefix}/emon/v1/fix/tag-9", [b"while-down"])
    sink = Collector()
    async with ingesting(client_id, prefix, sink):
        await eventually(lambda: _true(sink.payloads() == [b"while-down"]))
        sink.ack_everything()


def _takeover(client_id: str) -> None:
    """Connect with our client id (the broker drops emon's connection) and leave at once.

    v5 with the same never-expiring session, so the session and its queue survive the intruder.
    """
    with socket.create_connection(("127.0.0.1", 1883), timeout=5) as s:
        s.sendall(wire.encode_connect(client_id, 30, wire.V5))
        reader = wire.PacketReader(wire.V5)
        while not any(isinstance(p, wire.ConnAck) for p in reader.feed(s.recv(65536))):
            pass
        s.sendall(wire.DISCONNECT_PACKET)


async def test_broker_side_disconnect_mid_stream_reconnects_and_loses_nothing(ids: tuple[str, str]) -> None:
    client_id, prefix = ids
    topic = f"{prefix}/emon/v1/fix/tag-1"
    payloads = [b"%d" % i for i in range(600)]
    sink = Collector()

    def ack_as_stored(t: str, p: bytes, token: AckToken | None) -> None:
        sink(t, p, token)
        if token is not None:
            ack_all([token])

    async with ingesting(client_id, prefix, ack_as_stored) as ingest:  # type: ignore[arg-type]
        first_conn = ingest.client._link
        sending = asyncio.create_task(publish_all(topic, payloads, pause_s=0.003))
        await eventually(lambda: _true(len(sink.messages) >= 100))
        await asyncio.to_thread(_takeover, client_id)
        await eventually(lambda: _true(ingest.connected.is_set() and ingest.client._link is not first_conn))
        assert not sending.done()  # the takeover really happened mid-stream
        await sending
        await eventually(lambda: _true(set(sink.payloads()) == set(payloads)))
    received = sink.payloads()
    assert len(received) >= len(payloads)  # anything in flight at the takeover may come twice


async def test_keepalive_pings_keep_an_idle_connection_up(ids: tuple[str, str]) -> None:
    client_id, prefix = ids
    sink = Collector()
    # PINGREQ after 1 s of silence; the broker drops a client silent for 3 s (1.5 × keepalive). Idle for
    # over twice that: only the pings keep it up (a shorter keepalive made a loaded machine's pauses count).
    ingest = MqttIngest(Endpoint("127.0.0.1", 1883), client_id, prefix, sink, keepalive_s=2)
    task = asyncio.create_task(ingest.run())
    try:
        await asyncio.wait_for(ingest.connected.wait(), 10)
        conn = ingest.client._link
        session = ingest.client.session
        heard = session._last_received  # the SUBACK
        # The first PINGREQ goes after 1 s of silence, not when the handshake's 10 s deadline would have
        # woken the loop: its PINGRESP is heard well within the broker's 3 s.
        await asyncio.sleep(1.6)
        assert session._last_received > heard + 0.5, "no PINGRESP: the first PINGREQ was not sent in time"
        await asyncio.sleep(4.9)
        assert ingest.client._link is conn and ingest.connected.is_set()  # no reconnect in between
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # amqtt 0.12 warns on its own plugins
async def test_interoperates_with_the_embedded_demo_broker_on_311() -> None:
    from emon.demo import embedded_broker

    tag = uuid.uuid4().hex[:8]
    async with embedded_broker() as url:
        port = urlsplit(url).port
        assert port is not None
        sink = Collector()
        async with ingesting(f"emon-test-{tag}", f"t/{tag}", sink, port=port, protocol="3.1.1"):
            await publish_all(f"t/{tag}/emon/v1/fix/tag-1", [b"one", b"two"], port=port, v311=True)
            await eventually(lambda: _true(len(sink.messages) == 2))
        # 3.1.1: acknowledged on receipt (a 20-message window can't wait for commits): no tokens.
        assert sink.messages == [
            (f"t/{tag}/emon/v1/fix/tag-1", b"one", None),
            (f"t/{tag}/emon/v1/fix/tag-1", b"two", None),
        ]


# --------------------------------------------------------------------- the pipeline acks after commit


class FlakyRecords:
    """Records whose PostgreSQL is down for the first ``failures`` attempts."""

    def __init__(self, acked: list[int], failures: int) -> None:
        self.acked = acked
        self.failures = failures
        self.committed: list[int] = []  # len(acked) at each commit

    async def store_batch(
        self, fixes: Sequence[Fix], events: Sequence[DeviceEvent], dead: Sequence[DeadLetterRow]
    ) -> tuple[list[Fix], list[DeviceEvent], datetime]:
        if self.failures:
            self.failures -= 1
            raise OSError("connection refused")
        self.committed.append(len(self.acked))
        return list(fixes), list(events), datetime.now().astimezone()


class NullLive:
    async def set_latest(self, fixes: Sequence[Fix]) -> None:
        raise ConnectionError("redis down")  # a cache failure must not hold acknowledgements

    async def mark_seen(self, seen: dict[str, datetime]) -> None:
        pass


class RecordingAcker:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, packet_ids: list[int]) -> None:
        self.acked.extend(packet_ids)


class FailingConsumer:
    async def consume(
        self,
        fixes: Sequence[Fix],
        events: Sequence[DeviceEvent],
        now: datetime,
        received_mono: float,
        stored_at: datetime | None = None,
    ) -> None:
        raise RuntimeError("evaluation bug")


async def test_pipeline_acks_a_batch_only_after_it_is_committed() -> None:
    acker = RecordingAcker()
    records = FlakyRecords(acker.acked, failures=2)
    pipeline = Pipeline(records, NullLive(), DeviceRegistry(), prefix="p")  # type: ignore[arg-type]
    pipeline.consumers.append(FailingConsumer())
    pipeline.submit("p/emon/v1/fix/ghost", b"{}", (acker, 1))  # unknown device: a dead letter
    pipeline.submit("elsewhere", b"{}", (acker, 2))  # unknown topic: a dead letter
    pipeline.submit("p/emon/v1/fix/ghost", b"{}")  # QoS 0: two-argument submit still works
    await pipeline.process([pipeline._queue.popleft() for _ in range(3)])
    assert records.committed == [0]  # nothing was acknowledged before the (third) attempt succeeded
    assert acker.acked == [1, 2]


class EventsFailOnce:
    """The first transaction fails (nothing committed); the retry must still hand its fixes on."""

    def __init__(self) -> None:
        self.stored: set[tuple[str, datetime, int]] = set()
        self.failures = 1

    async def store_batch(
        self, fixes: Sequence[Fix], events: Sequence[DeviceEvent], dead: Sequence[DeadLetterRow]
    ) -> tuple[list[Fix], list[DeviceEvent], datetime]:
        if self.failures:
            self.failures -= 1
            raise OSError("connection reset")
        new = [f for f in fixes if f.key not in self.stored]
        self.stored.update(f.key for f in new)
        return new, list(events), datetime.now().astimezone()


class RecordingConsumer:
    def __init__(self) -> None:
        self.fixes: list[Fix] = []

    async def consume(
        self,
        fixes: Sequence[Fix],
        events: Sequence[DeviceEvent],
        now: datetime,
        received_mono: float,
        stored_at: datetime | None = None,
    ) -> None:
        self.fixes.extend(fixes)


async def test_a_retried_batch_still_hands_its_new_fixes_to_evaluation() -> None:
    import json

    from emon.device import Device, DeviceKind

    consumer = RecordingConsumer()
    registry = DeviceRegistry([Device("tag-1", DeviceKind.ANKLE_TAG)])
    pipeline = Pipeline(EventsFailOnce(), NullLive(), registry)  # type: ignore[arg-type]
    pipeline.consumers.append(consumer)
    fix = {"ts": datetime.now().astimezone().isoformat(), "lat": 52.0, "lon": 5.0, "acc": 5, "seq": 1}
    pipeline.submit("emon/v1/fix/tag-1", json.dumps(fix).encode())
    pipeline.submit("emon/v1/event/tag-1", json.dumps({"ts": fix["ts"], "type": "tamper"}).encode())
    await pipeline.process([pipeline._queue.popleft() for _ in range(2)])
    assert [f.seq for f in consumer.fixes] == [1]
