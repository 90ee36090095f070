"""The MQTT client session rules, sans I/O: bytes and ``now`` in, events and bytes out (h11 style).

:class:`Session` decides everything a client must decide — the CONNECT/CONNACK handshake, what a
CONNACK refusal means, whether to (re)subscribe given *session present*, which QoS 1 publishes to
(re)send after a reconnect and with which DUP flag, when a PINGREQ is due, when a missing PINGRESP
means the broker is gone, and how long to wait before reconnecting. It never touches a socket or a
clock: the transport (:mod:`emon.mqtt.client`) feeds it ``receive_data(data, now)``, calls
``tick(now)`` at ``next_deadline()``, writes ``data_to_send()`` and closes the socket when an event
says so. ``now`` is any monotonic clock in seconds.

Delivery semantics: QoS 1 publishes are *at least once*. A publish stays in flight until its PUBACK;
after a reconnect it is sent again — with DUP=1 and its old packet id when the broker kept our
session, as a new message (DUP=0) when it did not — so receivers deduplicate on their own ids.
Incoming QoS 1 messages are acknowledged either on receipt (``ack_on_receipt``) or by the
application calling :meth:`Session.ack` once they are stored; an acknowledgement meant for an earlier
connection is dropped (packet ids are per connection; the broker redelivers those messages anyway).

References: MQTT 3.1.1 (OASIS 2014) §3.1–3.2, §4.4; MQTT 5.0 (OASIS 2019) §3.1–3.2, §4.4, §4.9.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from emon.mqtt import wire
from emon.mqtt.wire import Publish

HANDSHAKE_TIMEOUT_S = 10.0  # CONNACK, and SUBACK after it, must each come within this
MAX_PACKET_BYTES = 16 * 1024 * 1024  # announced to a v5 broker; far above any payload we accept


class State(Enum):
    DISCONNECTED = "disconnected"  # no connection (yet, or any more)
    CONNECTING = "connecting"  # CONNECT sent, waiting for CONNACK
    SUBSCRIBING = "subscribing"  # CONNACK accepted, waiting for SUBACK
    READY = "ready"  # usable: subscribed (if asked to) and publishing


# ------------------------------------------------------------------------------------------ events


@dataclass(frozen=True, slots=True)
class Ready:
    """The connection is usable. ``session_present``: the broker resumed our earlier session."""

    session_present: bool
    subscribed: bool  # a SUBSCRIBE was sent (and granted) on this connection
    resent: int  # in-flight QoS 1 publishes sent again on this connection


@dataclass(frozen=True, slots=True)
class PublishAcked:
    """The broker answered one of our QoS 1 publishes; ``code`` >= 0x80 means it refused it."""

    packet_id: int
    code: int

    @property
    def refused(self) -> bool:
        return self.code >= 0x80


@dataclass(frozen=True, slots=True)
class Close:
    """The session decided the connection is over: the transport must close the socket now.

    ``refused_code`` is set when the broker refused the CONNECT (see :func:`connack_meaning`);
    ``needs_operator`` when retrying cannot help (bad credentials, a subscription the ACL refuses).
    """

    reason: str
    refused_code: int | None = None
    needs_operator: bool = False


Event = Publish | Ready | PublishAcked | Close


# ------------------------------------------------------------------------------------------ options


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """What a client asks of the broker. ``subscriptions`` are (filter, max QoS ≤ 1) pairs.

    ``clean``: start a fresh session on every connect (and let it expire at once); otherwise the
    session is kept for ``session_expiry_s`` (v5; 3.1.1 keeps it until a clean connect).
    """

    client_id: str
    version: int = wire.V5
    keepalive_s: int = 30
    clean: bool = False
    session_expiry_s: int = wire.SESSION_NEVER_EXPIRES
    username: str | None = None
    password: str | None = None
    subscriptions: tuple[tuple[str, int], ...] = ()
    ack_on_receipt: bool = True
    max_packet_bytes: int = MAX_PACKET_BYTES
    handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S
    ping_timeout_s: float | None = None  # default: half the keepalive
    reconnect_first_s: float = 0.5
    reconnect_cap_s: float = 30.0

    def __post_init__(self) -> None:
        if self.version not in (wire.V311, wire.V5):
            raise ValueError(f"unsupported MQTT protocol level {self.version}")
        if not 0 < self.keepalive_s <= 0xFFFF:
            raise ValueError("keepalive must be 1..65535 s")
        if any(q not in (0, 1) for _, q in self.subscriptions):
            raise ValueError("subscriptions are at QoS 0 or 1")


# ------------------------------------------------------------------------------------- CONNACK codes

# Refusals that retrying soon cannot cure: the configuration (credentials, ACL, protocol) is wrong.
_V3_REFUSALS = {
    1: ("unacceptable protocol version", True),
    2: ("client identifier rejected", True),
    3: ("server unavailable", False),
    4: ("bad user name or password", True),
    5: ("not authorized", True),
}
_V5_REFUSALS = {
    0x80: ("unspecified error", False),
    0x81: ("malformed packet", True),
    0x82: ("protocol error", True),
    0x83: ("implementation specific error", False),
    0x84: ("unsupported protocol version", True),
    0x85: ("client identifier not valid", True),
    0x86: ("bad user name or password", True),
    0x87: ("not authorized", True),
    0x88: ("server unavailable", False),
    0x89: ("server busy", False),
    0x8A: ("banned", True),
    0x8C: ("bad authentication method", True),
    0x90: ("topic name invalid", True),
    0x95: ("packet too large", True),
    0x97: ("quota exceeded", False),
    0x99: ("payload format invalid", True),
    0x9A: ("retain not supported", True),
    0x9B: ("QoS not supported", True),
    0x9C: ("use another server", False),
    0x9D: ("server moved", True),
    0x9F: ("connection rate exceeded", False),
}


def connack_meaning(version: int, code: int) -> tuple[str, bool]:
    """(what a CONNACK refusal code says, whether it needs a fix rather than a retry)."""
    table = _V5_REFUSALS if version == wire.V5 else _V3_REFUSALS
    return table.get(code, (f"unknown refusal code 0x{code:02x}", False))


# ------------------------------------------------------------------------------------------ session


class _Outgoing:
    """One QoS 1 publish of ours that the broker has not acknowledged yet."""

    __slots__ = ("payload", "sent_on", "topic")

    def __init__(self, topic: str, payload: bytes) -> None:
        self.topic = topic
        self.payload = payload
        self.sent_on = 0  # the connection (generation) it was last written on; 0: never


class Session:
    """One client's MQTT state across connections: feed it bytes and time, send what it returns."""

    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self.state = State.DISCONNECTED
        self.generation = 0  # +1 per connection; acknowledgements carry the one they belong to
        self._reader = wire.PacketReader(options.version, options.max_packet_bytes)
        self._out = bytearray()
        self._inflight: dict[int, _Outgoing] = {}  # insertion order = publish order
        self._orphans: set[int] = set()  # forgotten but on the wire: the broker counts them until PUBACK
        self._next_id = 1
        self._window = wire.RECEIVE_MAXIMUM  # the broker's Receive Maximum for our publishes
        self._unacked_on_wire = 0
        self._subscribed = False  # the broker holds our subscriptions (this session)
        self._sub_id = 0
        self._session_present = False  # of the current connection's CONNACK
        self._keepalive_s = float(options.keepalive_s)
        self._deadline: float | None = None  # CONNACK / SUBACK due
        self._last_sent = 0.0
        self._last_received = 0.0
        self._ping_sent_at: float | None = None
        self._established = False  # the current connection got as far as READY
        self._failures = 0  # consecutive connection attempts that did not get READY
        self._fatal_refusal = False  # the last attempt was refused for a reason retrying can't cure

    # -------------------------------------------------------------------------------- connection
    def connect(self, now: float) -> None:
        """A new transport connection is open: queue CONNECT. Any earlier connection is over."""
        if self.state is not State.DISCONNECTED:
            self.connection_lost(now)
        o = self.options
        self.generation += 1
        self._reader = wire.PacketReader(o.version, o.max_packet_bytes)
        self._out.clear()
        self._keepalive_s = float(o.keepalive_s)
        self._ping_sent_at = None
        self._last_received = now
        self._window = wire.RECEIVE_MAXIMUM
        self._unacked_on_wire = 0
        self._orphans.clear()
        self._established = False
        self._fatal_refusal = False
        expiry = 0 if o.clean else o.session_expiry_s
        self._write(
            wire.encode_connect(
                o.client_id,
                o.keepalive_s,
                o.version,
                clean=o.clean,
                session_expiry_s=expiry,
                max_packet_bytes=o.max_packet_bytes if o.version == wire.V5 else None,
                username=o.username,
                password=o.password,
            ),
            now,
        )
        self.state = State.CONNECTING
        self._deadline = now + o.handshake_timeout_s

    def connection_lost(self, now: float) -> None:
        """The transport connection is gone (either side closed it). In-flight publishes are kept."""
        if self.state is State.DISCONNECTED:
            return
        if not self._established:
            self._failures += 1
        self.state = State.DISCONNECTED
        self._deadline = None
        self._ping_sent_at = None
        self._out.clear()
        if self.options.clean:
            self._subscribed = False

    def connect_failed(self, *, needs_operator: bool = False) -> None:
        """The transport could not even open a connection (refused, unreachable, TLS handshake);
        ``needs_operator``: retrying cannot help (the broker's certificate does not verify)."""
        self._failures += 1
        self._fatal_refusal = needs_operator

    def disconnect(self, now: float) -> None:
        """Say goodbye (DISCONNECT queued); the transport then closes the socket."""
        if self.state is not State.DISCONNECTED:
            self._write(wire.DISCONNECT_PACKET, now)

    def reconnect_delay(self, jitter: float) -> float:
        """Seconds to wait before the next connection attempt, for ``jitter`` drawn from [0, 1).

        Capped exponential backoff (``reconnect_first_s`` × 2ⁿ up to ``reconnect_cap_s``), jittered
        to 50–150 % so clients that failed together don't return together. It starts afresh after a
        connection that got as far as READY; a refusal that retrying can't cure (bad credentials,
        not authorized, …) waits the cap at once — an operator must fix it, and a broker should not
        be hammered meanwhile.
        """
        o = self.options
        if self._fatal_refusal:
            base = o.reconnect_cap_s
        else:
            base = min(o.reconnect_first_s * 2 ** max(self._failures - 1, 0), o.reconnect_cap_s)
        return base * (0.5 + jitter)

    # ------------------------------------------------------------------------------------- bytes
    def data_to_send(self) -> bytes:
        """Everything queued for the socket since the last call (b"" when nothing is)."""
        if not self._out:
            return b""
        data = bytes(self._out)
        self._out.clear()
        return data

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Bytes from the socket → events, in order. Incoming messages are :class:`wire.Publish`."""
        if self.state is State.DISCONNECTED:
            return []
        self._last_received = now
        try:
            packets = self._reader.feed(data)
        except wire.MalformedPacket as exc:
            return [self._close(f"malformed packet from the broker: {exc}")]
        events: list[Event] = []
        append = events.append
        auto_ack: list[int] | None = [] if self.options.ack_on_receipt else None
        # Only a control packet changes the state: checked once per read, not per message.
        connected = self.state is State.READY or self.state is State.SUBSCRIBING
        for p in packets:
            if type(p) is Publish:
                if not connected:
                    events.append(self._close("PUBLISH before CONNACK"))
                    return events
                qos = p.qos
                if qos == 2:  # we subscribe at QoS ≤ 1, so the broker must not send QoS 2
                    events.append(self._close("QoS 2 PUBLISH on a QoS 1 subscription"))
                    return events
                if qos == 1 and auto_ack is not None:
                    auto_ack.append(p.packet_id)
                append(p)
            else:
                event = self._control(p, now)
                connected = self.state is State.READY or self.state is State.SUBSCRIBING
                if event is not None:
                    append(event)
                    if type(event) is Close:
                        return events
        if auto_ack:
            self._write(wire.encode_pubacks(auto_ack), now)
        return events

    def ack(self, packet_ids: Sequence[int], generation: int, now: float) -> None:
        """PUBACK incoming messages of connection ``generation``, in the order given; a no-op when
        that connection is gone (the broker will redeliver them on the next one)."""
        if generation == self.generation and self.state is not State.DISCONNECTED and packet_ids:
            self._write(wire.encode_pubacks(packet_ids), now)

    # ----------------------------------------------------------------------------------- publish
    def publish(self, topic: str, payload: bytes, qos: int, now: float) -> int:
        """Queue a publish; returns its packet id (QoS 1) or 0 (QoS 0).

        A QoS 1 publish is sent now if the connection is READY and the broker's receive window has
        room, otherwise when it has; it stays in flight until its PUBACK (see :meth:`forget`). A
        QoS 0 publish is sent only when READY and is otherwise refused with :class:`wire.MqttError`.
        """
        version = self.options.version
        if qos == 0:
            if self.state is not State.READY:
                raise wire.MqttError("not connected: a QoS 0 publish would be lost")
            self._write(wire.encode_publish(topic, payload, 0, 0, version), now)
            return 0
        wire.encode_publish(topic, payload, qos, 1, version)  # validate before it is queued
        packet_id = self._allocate_id()
        self._inflight[packet_id] = _Outgoing(topic, payload)
        if self.state is State.READY:
            self._send_waiting(now)
        return packet_id

    def forget(self, packet_id: int) -> None:
        """Stop trying to deliver a publish (its sender gave up); a later PUBACK for it is ignored.

        If it is already on the wire, the broker counts it against its Receive Maximum until it
        answers, so its packet id and window slot stay taken until then (or a new connection)."""
        item = self._inflight.pop(packet_id, None)
        if item is not None and item.sent_on == self.generation and self.state is not State.DISCONNECTED:
            self._orphans.add(packet_id)

    @property
    def in_flight(self) -> int:
        """QoS 1 publishes not yet acknowledged (sent or waiting to be)."""
        return len(self._inflight)

    # ---------------------------------------------------------------------------------- timing
    def next_deadline(self) -> float | None:
        """When :meth:`tick` must next be called (same clock as ``now``), or None."""
        if self.state is State.DISCONNECTED:
            return None
        if self.state is not State.READY:
            return self._deadline
        if self._ping_sent_at is not None:
            return self._ping_sent_at + self._ping_timeout()
        return self._ping_due()

    def tick(self, now: float) -> list[Event]:
        """Time-based rules: handshake timeout, PINGREQ when due, a PINGRESP that never came."""
        if self.state is State.DISCONNECTED:
            return []
        if self.state is not State.READY:
            if self._deadline is not None and now >= self._deadline:
                what = "CONNACK" if self.state is State.CONNECTING else "SUBACK"
                return [self._close(f"no {what} within {self.options.handshake_timeout_s:g}s")]
            return []
        if self._ping_sent_at is not None:
            if now >= self._ping_sent_at + self._ping_timeout():
                return [self._close(f"no PINGRESP within {self._ping_timeout():g}s: the broker is gone")]
            return []
        if now >= self._ping_due():
            self._write(wire.PINGREQ_PACKET, now)
            self._ping_sent_at = now
        return []

    def _ping_due(self) -> float:
        # Ping after half a keepalive of silence in either direction: the broker must hear from us
        # within the keepalive (it drops us after 1.5×), and we want to notice a dead broker (a
        # half-open TCP connection) within about one keepalive even while we are only sending.
        half = self._keepalive_s / 2
        return min(self._last_sent, self._last_received) + half

    def _ping_timeout(self) -> float:
        return (
            self.options.ping_timeout_s if self.options.ping_timeout_s is not None else self._keepalive_s / 2
        )

    # --------------------------------------------------------------------------------- internals
    def _write(self, data: bytes, now: float) -> None:
        self._out += data
        self._last_sent = now

    def _close(self, reason: str, refused_code: int | None = None, *, needs_operator: bool = False) -> Close:
        if not self._established:
            self._failures += 1
        self.state = State.DISCONNECTED
        self._deadline = None
        self._ping_sent_at = None
        self._fatal_refusal = needs_operator
        if self.options.clean:
            self._subscribed = False
        return Close(reason, refused_code, needs_operator)

    def _control(self, p: wire.Packet, now: float) -> Event | None:
        if isinstance(p, wire.PubAck):
            item = self._inflight.pop(p.packet_id, None)
            if item is None:
                if p.packet_id in self._orphans:  # forgotten: nobody waits, but its slot frees up
                    self._orphans.discard(p.packet_id)
                    self._unacked_on_wire -= 1
                    self._send_waiting(now)
                return None
            if item.sent_on == self.generation:
                self._unacked_on_wire -= 1
            self._send_waiting(now)
            return PublishAcked(p.packet_id, p.code)
        if isinstance(p, wire.PingResp):
            self._ping_sent_at = None
            return None
        if isinstance(p, wire.ConnAck):
            return self._connack(p, now)
        if isinstance(p, wire.SubAck):
            return self._suback(p, now)
        if isinstance(p, wire.Disconnect):
            return self._close(f"broker sent DISCONNECT (reason 0x{p.code:02x})")
        assert isinstance(p, wire.OtherPacket)
        return self._close(f"unexpected MQTT packet type {p.type} for a QoS ≤ 1 client")

    def _connack(self, p: wire.ConnAck, now: float) -> Event | None:
        if self.state is not State.CONNECTING:
            return self._close("a second CONNACK")
        if p.code != 0:
            meaning, fatal = connack_meaning(self.options.version, p.code)
            detail = f" ({p.reason})" if p.reason else ""
            return self._close(
                f"broker refused the connection: {meaning} (0x{p.code:02x}){detail}",
                p.code,
                needs_operator=fatal,
            )
        if p.server_keepalive is not None and p.server_keepalive > 0:
            self._keepalive_s = float(p.server_keepalive)
        self._window = p.receive_maximum
        self._session_present = p.session_present
        if not p.session_present:
            # The broker has no session for us (first connect, expired, or lost with the broker's
            # disk): our subscriptions are gone, and so is its record of our in-flight packet ids.
            self._subscribed = False
        if self.options.subscriptions and not self._subscribed:
            self._sub_id = self._allocate_id()
            filters = [f for f, _ in self.options.subscriptions]
            qos = max(q for _, q in self.options.subscriptions)
            self._write(wire.encode_subscribe(self._sub_id, filters, self.options.version, qos=qos), now)
            self.state = State.SUBSCRIBING
            self._deadline = now + self.options.handshake_timeout_s
            return None  # READY once the SUBACK grants every filter
        return self._ready(subscribed=False, now=now)

    def _suback(self, p: wire.SubAck, now: float) -> Event | None:
        if self.state is not State.SUBSCRIBING or p.packet_id != self._sub_id:
            return None  # not ours to judge (a late SUBACK); harmless
        wanted = self.options.subscriptions
        refused = [f for (f, q), code in zip(wanted, p.codes, strict=False) if code >= 0x80 or code < q]
        if refused or len(p.codes) != len(wanted):
            return self._close(
                f"subscription refused or downgraded: {refused} (codes {list(p.codes)})", needs_operator=True
            )
        self._subscribed = True
        return self._ready(subscribed=True, now=now)

    def _ready(self, *, subscribed: bool, now: float) -> Ready:
        self.state = State.READY
        self._deadline = None
        self._established = True
        self._failures = 0
        resent = sum(1 for item in self._inflight.values() if item.sent_on)
        if not self._session_present:
            for item in self._inflight.values():  # a new session: to the broker these are new
                item.sent_on = 0
        self._unacked_on_wire = 0
        self._send_waiting(now)
        return Ready(self._session_present, subscribed, resent)

    def _send_waiting(self, now: float) -> None:
        """Send, in publish order, what is not yet on this connection while the broker's receive
        window has room: a publish sent on an earlier connection of a resumed session goes with
        DUP=1 and its old packet id (MQTT 5 §4.4)."""
        if self.state is not State.READY:
            return
        version = self.options.version
        generation = self.generation
        for packet_id, item in self._inflight.items():
            if self._unacked_on_wire >= self._window:
                return
            if item.sent_on == generation:
                continue
            dup = item.sent_on != 0
            self._write(wire.encode_publish(item.topic, item.payload, 1, packet_id, version, dup=dup), now)
            item.sent_on = generation
            self._unacked_on_wire += 1

    def _allocate_id(self) -> int:
        if len(self._inflight) + len(self._orphans) >= 0xFFFF - 1:
            raise wire.MqttError("65,534 publishes in flight: the broker is not acknowledging")
        while True:
            pid = self._next_id
            self._next_id = pid % 0xFFFF + 1
            if pid not in self._inflight and pid not in self._orphans and pid != self._sub_id:
                return pid
