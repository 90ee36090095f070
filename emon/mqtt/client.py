"""The asyncio MQTT client: moves bytes between a socket and :class:`emon.mqtt.protocol.Session`.

Every rule (handshake, session present, keepalive, resends, reconnect backoff) is in the sans-I/O
session; this module only opens TCP/TLS connections, writes what the session queues, feeds it what
arrives and the loop clock, and sleeps until its next deadline. ``data_received`` hands every
message of a socket read to the sink directly, with no await per message (20,000 messages/s).

Used by ingest (a persistent QoS 1 subscriber that acknowledges once stored, see
:mod:`emon.ingest.mqtt`) and by the victim notification channel (QoS 1 publishes that wait for the
broker's PUBACK, see :mod:`emon.alerts.channels.victim`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Protocol

from emon.mqtt import wire
from emon.mqtt.endpoint import Endpoint
from emon.mqtt.protocol import Close, PublishAcked, Ready, Session, SessionOptions
from emon.mqtt.wire import MqttError, Publish

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0  # TCP connect and TLS handshake


class PublishRefused(MqttError):
    """The broker answered a QoS 1 publish with a failure reason code (v5, e.g. 0x87 not authorized)."""

    def __init__(self, topic: str, code: int) -> None:
        super().__init__(f"broker refused the publish to {topic!r} (reason 0x{code:02x})")
        self.code = code


class Acker(Protocol):
    """Acknowledges QoS 1 messages by packet id, in the order they were received."""

    def ack(self, packet_ids: list[int]) -> None: ...


AckToken = tuple[Acker, int]  # (the connection that received the message, its packet id)
Sink = Callable[[str, bytes, AckToken | None], None]


def ack_all(tokens: Iterable[AckToken]) -> None:
    """Acknowledge messages (in the order given): one socket write per connection."""
    pairs = tokens if isinstance(tokens, list) else list(tokens)
    if not pairs:
        return
    conns, packet_ids = zip(*pairs, strict=True)
    if conns.count(conns[0]) == len(conns):  # one connection, as nearly always: no loop in Python
        conns[0].ack(list(packet_ids))
        return
    by_conn: dict[Acker, list[int]] = {}
    for conn, packet_id in pairs:
        ids = by_conn.get(conn)
        if ids is None:
            by_conn[conn] = [packet_id]
        else:
            ids.append(packet_id)
    for conn, ids in by_conn.items():
        conn.ack(ids)


def _ignore(topic: str, payload: bytes, ack: AckToken | None) -> None:
    log.warning("MQTT message on %r without a sink; dropped", topic)


class _Link(asyncio.Protocol):
    """One TCP/TLS connection; it belongs to one session generation."""

    def __init__(self, client: MqttClient) -> None:
        self.client = client
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.generation = 0
        self.closed: asyncio.Future[str] = self.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        session = self.client.session
        session.connect(self.loop.time())
        self.generation = session.generation
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.generation == self.client.session.generation:
            self.client.session.connection_lost(self.loop.time())
        self.client.connected.clear()
        if not self.closed.done():
            self.closed.set_result(f"connection lost: {exc or 'closed by the broker'}")

    def data_received(self, data: bytes) -> None:
        events = self.client.session.receive_data(data, self.loop.time())
        if events:
            self.client.handle(events, self)
        self.flush()
        self.client.deadline_changed()

    def flush(self) -> None:
        data = self.client.session.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def ack(self, packet_ids: list[int]) -> None:
        """PUBACK these packet ids as one write; a no-op once this connection is gone."""
        self.client.session.ack(packet_ids, self.generation, self.loop.time())
        self.flush()

    def abort(self, reason: str) -> None:
        if not self.closed.done():
            self.closed.set_result(reason)
        if self.transport is not None:
            self.transport.abort()


class MqttClient:
    """A reconnecting MQTT client. ``run()`` keeps it connected until cancelled.

    ``sink(topic, payload, ack)`` receives every message and must not block or raise; ``ack`` is an
    :data:`AckToken` to pass to :func:`ack_all` once the message is safe (None for QoS 0 or when the
    session acknowledges on receipt).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        options: SessionOptions,
        sink: Sink | None = None,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if endpoint.username is not None or endpoint.password is not None:
            options = _with_credentials(options, endpoint)
        self.endpoint = endpoint
        self.session = Session(options)
        self.sink = sink or _ignore
        self.rng = rng
        self.connected = asyncio.Event()  # READY: subscribed (if asked) and publishing
        self._link: _Link | None = None
        self._waiters: dict[int, tuple[str, asyncio.Future[int]]] = {}
        # The connection loop sleeps until the session's next deadline; what the broker sends can bring
        # that deadline forward (CONNACK/SUBACK: the handshake's deadline becomes the first PINGREQ's).
        self._sleeping_until: float | None = None
        self._woken: asyncio.Future[str] | None = None

    # ---------------------------------------------------------------------------------- receive
    def deadline_changed(self) -> None:
        """Wake the connection loop when the session's next deadline is now earlier than the one it
        sleeps until (cheap: most received data moves no deadline forward)."""
        woken = self._woken
        if woken is None or woken.done():
            return
        deadline = self.session.next_deadline()
        if deadline is not None and (self._sleeping_until is None or deadline < self._sleeping_until):
            woken.set_result("deadline moved")

    def handle(self, events: list[wire.Publish | Ready | PublishAcked | Close], link: _Link) -> None:
        sink = self.sink
        manual_ack = not self.session.options.ack_on_receipt
        for e in events:
            if type(e) is Publish:
                topic, payload, qos, packet_id, _, _ = e  # one unpacking, not four attribute lookups
                token: AckToken | None = (link, packet_id) if manual_ack and qos == 1 else None
                try:
                    sink(topic, payload, token)
                except Exception:  # the sink must not raise; if it does, keep the connection alive
                    fate = "stays unacknowledged (redelivered)" if token is not None else "is lost"
                    log.exception("MQTT sink failed on %r; the message %s", topic, fate)
            elif type(e) is PublishAcked:
                waiter = self._waiters.pop(e.packet_id, None)
                if waiter is not None and not waiter[1].done():
                    waiter[1].set_result(e.code)
            elif type(e) is Ready:
                self.connected.set()
                log.info(
                    "MQTT connected to %s as %s (session present: %s, resent: %d)",
                    self.endpoint,
                    self.session.options.client_id,
                    e.session_present,
                    e.resent,
                )
            elif type(e) is Close:
                log.log(
                    logging.ERROR if e.needs_operator else logging.WARNING,
                    "MQTT connection to %s closed: %s",
                    self.endpoint,
                    e.reason,
                )
                self.connected.clear()
                link.abort(e.reason)

    def ack(self, tokens: Iterable[AckToken]) -> None:
        ack_all(tokens)

    # ---------------------------------------------------------------------------------- publish
    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, timeout_s: float = 10.0) -> None:
        """Publish; at QoS 1 wait (up to ``timeout_s``) for the broker's PUBACK.

        A QoS 1 publish made while disconnected waits in the session and goes out on the next
        connection (resent with DUP after a reconnect). On timeout or cancellation it is withdrawn
        and :class:`MqttError` is raised (the caller's own retry owns it from then on); a refusal
        raises :class:`PublishRefused`.
        """
        loop = asyncio.get_running_loop()
        packet_id = self.session.publish(topic, payload, qos, loop.time())
        self._flush()
        if qos == 0:
            return
        future: asyncio.Future[int] = loop.create_future()
        self._waiters[packet_id] = (topic, future)
        try:
            async with asyncio.timeout(timeout_s):  # not wait_for: it can swallow a cancel on 3.11
                code = await future
        except TimeoutError as exc:
            raise MqttError(f"no PUBACK for {topic!r} within {timeout_s:g}s") from exc
        finally:
            if not future.done() or future.cancelled():
                self.session.forget(packet_id)
            self._waiters.pop(packet_id, None)
        if code >= 0x80:
            raise PublishRefused(topic, code)

    def _flush(self) -> None:
        if self._link is not None:
            self._link.flush()

    # -------------------------------------------------------------------------------- connection
    async def run(self) -> None:
        """Connect and stay connected until cancelled; reconnect with capped backoff + jitter."""
        while True:
            try:
                await self._connection()
            except (MqttError, OSError, TimeoutError) as exc:
                wait = self.session.reconnect_delay(self.rng())
                log.warning(
                    "MQTT connection to %s failed (%s); reconnecting in %.1fs", self.endpoint, exc, wait
                )
                await asyncio.sleep(wait)

    async def _connection(self) -> None:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, link = await loop.create_connection(
                    lambda: _Link(self),
                    ep.host,
                    ep.port,
                    ssl=ep.tls,
                    server_hostname=ep.host if ep.tls else None,
                )
        except ssl.SSLCertVerificationError:
            self.session.connect_failed(needs_operator=True)  # wrong CA or host name: an operator's job
            raise
        except (OSError, TimeoutError):
            self.session.connect_failed()
            raise
        self._link = link
        try:
            while not link.closed.done():
                deadline = self.session.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                self._sleeping_until, self._woken = deadline, loop.create_future()
                done, _ = await asyncio.wait(
                    [link.closed, self._woken], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if link.closed in done:
                    break
                events = self.session.tick(loop.time())
                if events:
                    self.handle(events, link)
                link.flush()
            raise MqttError(link.closed.result())
        finally:
            self.connected.clear()
            self._link = None
            if link.transport is not None and not link.transport.is_closing():
                # Cancelled (shutdown) or failed: say goodbye if we still can. Never awaits, so a
                # broker that doesn't answer cannot hold the shutdown; unacknowledged messages stay
                # in the session and are redelivered on the next connection.
                self.session.disconnect(loop.time())
                link.flush()
                link.transport.close()
            self.session.connection_lost(loop.time())


def _with_credentials(options: SessionOptions, endpoint: Endpoint) -> SessionOptions:
    return replace(options, username=endpoint.username, password=endpoint.password)
