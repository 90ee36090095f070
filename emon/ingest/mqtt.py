"""The MQTT edge: a persistent QoS 1 session whose messages are acknowledged once they are stored.

A persistent session with a fixed client id: the broker keeps our subscriptions and queues QoS 1
messages while emon is down, so fixes published meanwhile arrive when it comes back. Reconnects
use capped exponential backoff with jitter.

**At least once, end to end (MQTT 5).** Every QoS 1 message reaches the sink with an
:data:`AckToken`; the pipeline calls :func:`ack_all` once the batch holding the message is
committed to PostgreSQL (a dead letter counts as stored). Until then the message is unacknowledged
and the broker redelivers it on the resumed session if emon crashes or the connection drops.
Redeliveries are harmless: fixes are deduplicated on (device, ts, seq). A token from an earlier
connection acknowledges nothing (packet ids are per connection; the broker redelivers anyway).

MQTT 5, so that we can announce a large *Receive Maximum*: with MQTT 3.1.1 Mosquitto keeps at most
``max_inflight_messages`` (default 20) unacknowledged QoS 1 messages in flight to us and queues at
most ``max_queued_messages`` (default 1000) behind them; beyond that it **drops** messages for an
online client. Acknowledging after a commit (tens of milliseconds) with a 20-message window would
cap us at a few hundred messages/s, so with ``protocol="3.1.1"`` — used only for the embedded demo
broker, amqtt, which speaks no MQTT 5 — messages are acknowledged on receipt, as aiomqtt did.

The transport is an :class:`asyncio.Protocol`: ``data_received`` decodes every packet of a read
and calls the sink directly, with no await per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

from emon.backoff import Backoff
from emon.ingest import mqtt_wire as wire
from emon.ingest.topics import SUBSCRIPTIONS

if TYPE_CHECKING:
    from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
HANDSHAKE_TIMEOUT_S = 10.0  # TCP connect, CONNACK and SUBACK, each
MAX_PACKET_BYTES = 16 * 1024 * 1024  # announced to a v5 broker; far above any payload we accept
RECEIVE_MAXIMUM = wire.RECEIVE_MAXIMUM
SESSION_NEVER_EXPIRES = wire.SESSION_NEVER_EXPIRES


class Acker(Protocol):
    """Acknowledges QoS 1 messages by packet id, in the order they were received."""

    def ack(self, packet_ids: list[int]) -> None: ...


AckToken = tuple[Acker, int]  # (the connection that received the message, its packet id)
Sink = Callable[[str, bytes, AckToken | None], None]


def ack_all(tokens: Iterable[AckToken]) -> None:
    """Acknowledge messages (in the order given): one socket write per connection."""
    by_conn: dict[Acker, list[int]] = {}
    for conn, packet_id in tokens:
        ids = by_conn.get(conn)
        if ids is None:
            by_conn[conn] = [packet_id]
        else:
            ids.append(packet_id)
    for conn, ids in by_conn.items():
        conn.ack(ids)


def connect_properties() -> Properties:
    """paho CONNECT properties equal to ours (Session Expiry, Receive Maximum), for aiomqtt users.

    The benchmark's ceiling subscriber (a bare aiomqtt client) uses it to stay comparable.
    """
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    return props


class _Connection(asyncio.Protocol):
    """One TCP connection to the broker: decodes packets, feeds the sink, writes acknowledgements."""

    def __init__(self, sink: Sink, version: int, ack_on_receipt: bool) -> None:
        self.sink = sink
        self.version = version
        self.ack_on_receipt = ack_on_receipt
        self.reader = wire.PacketReader(version, MAX_PACKET_BYTES)
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.connack: asyncio.Future[wire.ConnAck] = loop.create_future()
        self.suback: asyncio.Future[wire.SubAck] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.last_received = loop.time()  # loop clock, seconds
        self.is_open = False
        self.dropped = 0  # messages the sink refused (raised); never acknowledged

    # asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.is_open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False  # from now on, tokens of this connection acknowledge nothing
        self._fail(wire.MqttError(f"connection lost: {exc or 'closed by the broker'}"))

    def data_received(self, data: bytes) -> None:
        self.last_received = self.loop.time()
        try:
            packets = self.reader.feed(data)
        except wire.MalformedPacket as exc:
            self._abort(exc)
            return
        receipt_acks: list[int] = []
        sink = self.sink
        for p in packets:
            if type(p) is wire.Publish:
                token: AckToken | None = None
                if p.qos == 1:
                    if self.ack_on_receipt:
                        receipt_acks.append(p.packet_id)
                    else:
                        token = (self, p.packet_id)
                elif p.qos == 2:  # we subscribe at QoS 1, so the broker must not send QoS 2
                    self._abort(wire.MqttError("QoS 2 PUBLISH on a QoS 1 subscription"))
                    return
                try:
                    sink(p.topic, p.payload, token)
                except Exception:  # the sink must not raise; if it does, keep the connection alive
                    self.dropped += 1
                    log.exception("MQTT sink failed on %r; the message stays unacknowledged", p.topic)
            else:
                self._control(p)
        if receipt_acks:
            self.ack(receipt_acks)

    # ------------------------------------------------------------------------------------------
    def _control(self, p: wire.Packet) -> None:
        if isinstance(p, wire.ConnAck):
            if not self.connack.done():
                self.connack.set_result(p)
        elif isinstance(p, wire.SubAck):
            if not self.suback.done():
                self.suback.set_result(p)
        elif isinstance(p, wire.Disconnect):
            self._abort(wire.MqttError(f"broker sent DISCONNECT (reason 0x{p.code:02x})"))
        elif isinstance(p, wire.OtherPacket):
            log.warning("ignoring unexpected MQTT packet type %d", p.type)
        # PINGRESP: any traffic already counts as a sign of life (last_received).

    def write(self, data: bytes) -> None:
        if self.is_open and self.transport is not None:
            self.transport.write(data)

    def ack(self, packet_ids: list[int]) -> None:
        """PUBACK these packet ids as one write; a no-op once this connection is gone."""
        if self.is_open and self.transport is not None and packet_ids:
            self.transport.write(wire.encode_pubacks(packet_ids))

    def _fail(self, exc: Exception) -> None:
        for fut in (self.connack, self.suback, self.closed):
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved: a handshake that never awaited it must not warn

    def _abort(self, exc: Exception) -> None:
        log.error("MQTT protocol error, dropping the connection: %s", exc)
        self.is_open = False
        self._fail(exc)
        if self.transport is not None:
            self.transport.abort()


class MqttIngest:
    """Subscribes to every device topic (QoS 1) and hands each message to ``sink``.

    ``sink(topic, payload, ack)`` must not block or raise; ``ack`` is an :data:`AckToken` to pass
    to :func:`ack_all` once the message is durably stored, or None (QoS 0, or already acknowledged).
    """

    def __init__(
        self, host: str, port: int, client_id: str, prefix: str, sink: Sink, protocol: str = "5"
    ) -> None:
        if protocol not in ("5", "3.1.1"):
            raise ValueError(f"MQTT protocol must be '5' or '3.1.1', not {protocol!r}")
        self.protocol = protocol
        self.host = host
        self.port = port
        self.client_id = client_id
        self.prefix = prefix
        self.sink = sink
        self.keepalive_s = KEEPALIVE_S
        self.connected = asyncio.Event()
        self._conn: _Connection | None = None
        self._established = False  # the current connection got as far as subscribed

    @property
    def version(self) -> int:
        return wire.V5 if self.protocol == "5" else wire.V311

    def topics(self) -> list[str]:
        return [f"{self.prefix}/{t}" if self.prefix else t for t in SUBSCRIPTIONS]

    def ack(self, tokens: Iterable[AckToken]) -> None:
        """Acknowledge stored messages; tokens of an earlier connection are ignored."""
        ack_all(tokens)

    async def run(self) -> None:
        """Connect, subscribe and receive until cancelled; reconnect with capped backoff + jitter."""
        backoff = Backoff(0.5, 30.0)
        while True:
            self._established = False
            try:
                await self._session()
            except (wire.MqttError, OSError, TimeoutError) as exc:
                if self._established:  # it worked for a while: start the backoff afresh
                    backoff.reset()
                wait = backoff.next_wait()
                log.warning("MQTT connection lost (%s); reconnecting in %.1fs", exc, wait)
                await asyncio.sleep(wait)

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        ack_on_receipt = self.version == wire.V311
        _, conn = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Connection(self.sink, self.version, ack_on_receipt), self.host, self.port
            ),
            HANDSHAKE_TIMEOUT_S,
        )
        self._conn = conn
        try:
            max_packet = MAX_PACKET_BYTES if self.version == wire.V5 else None
            conn.write(wire.encode_connect(self.client_id, self.keepalive_s, self.version, max_packet_bytes=max_packet))
            connack = await asyncio.wait_for(asyncio.shield(conn.connack), HANDSHAKE_TIMEOUT_S)
            if connack.code != 0:
                raise wire.MqttError(f"broker refused the connection (code 0x{connack.code:02x})")
            topics = self.topics()
            conn.write(wire.encode_subscribe(1, topics, self.version, qos=1))
            suback = await asyncio.wait_for(asyncio.shield(conn.suback), HANDSHAKE_TIMEOUT_S)
            refused = [t for t, code in zip(topics, suback.codes, strict=False) if code != 1]
            if refused or len(suback.codes) != len(topics):
                log.error("MQTT subscription refused or downgraded: %s (codes %s)", refused, suback.codes)
                raise wire.MqttError(f"subscription refused: {refused} (codes {list(suback.codes)})")
            self._established = True
            self.connected.set()
            log.info("MQTT connected to %s:%s as %s", self.host, self.port, self.client_id)
            await self._keepalive(conn)
        finally:
            self.connected.clear()
            if conn.is_open:
                # Cancelled (shutdown) or failed: say goodbye if we still can. Never awaits, so a
                # broker that doesn't answer cannot hold the shutdown; unacknowledged messages stay
                # in the session and are redelivered on the next connection.
                conn.write(wire.DISCONNECT_PACKET)
                conn.is_open = False
            if conn.transport is not None:
                conn.transport.close()
            self._conn = None

    async def _keepalive(self, conn: _Connection) -> None:
        """PINGREQ every keepalive/2 s; give up after keepalive × 1.5 s without any traffic."""
        interval = self.keepalive_s / 2
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(conn.closed), interval)
            silent = conn.loop.time() - conn.last_received
            if silent > self.keepalive_s * 1.5:
                raise wire.MqttError(f"no traffic from the broker for {silent:.0f}s")
            conn.write(wire.PINGREQ_PACKET)
