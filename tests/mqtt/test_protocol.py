"""The MQTT session rules without a broker: bytes and times in, events and bytes out."""

from __future__ import annotations

import struct

import pytest

from emon.mqtt import wire
from emon.mqtt.protocol import Close, PublishAcked, Ready, Session, SessionOptions, State, connack_meaning
from emon.mqtt.wire import OtherPacket, PacketReader, Publish

SUBS = (("p/emon/v1/fix/+", 1), ("p/owntracks/+/+", 1))


# ------------------------------------------------------------------ what a broker would send
def connack(session_present: bool = False, code: int = 0, *, v5: bool = True, props: bytes = b"") -> bytes:
    body = bytes((int(session_present), code)) + ((wire.encode_varint(len(props)) + props) if v5 else b"")
    return b"\x20" + wire.encode_varint(len(body)) + body


def suback(packet_id: int, codes: list[int], *, v5: bool = True) -> bytes:
    body = struct.pack("!H", packet_id) + (b"\x00" if v5 else b"") + bytes(codes)
    return b"\x90" + wire.encode_varint(len(body)) + body


def puback(packet_id: int, code: int | None = None) -> bytes:
    return (
        b"\x40\x02" + struct.pack("!H", packet_id)
        if code is None
        else b"\x40\x03" + struct.pack("!HB", packet_id, code)
    )


PINGRESP = b"\xd0\x00"


def sent(session: Session) -> list[wire.Packet]:
    """What the session queued for the socket, decoded (CONNECT, SUBSCRIBE, PINGREQ come out as
    OtherPacket by type; PUBLISH and PUBACK keep their own types)."""
    return PacketReader(session.options.version).feed(session.data_to_send())


def types(packets: list[wire.Packet]) -> list[int]:
    out = []
    for p in packets:
        if isinstance(p, OtherPacket):
            out.append(p.type)
        elif isinstance(p, Publish):
            out.append(wire.PUBLISH)
        elif isinstance(p, wire.PubAck):
            out.append(wire.PUBACK)
        else:
            out.append(-1)
    return out


def ready_session(
    now: float = 0.0, *, subscriptions: tuple[tuple[str, int], ...] = (), **options: object
) -> Session:
    s = Session(SessionOptions("emon-test", subscriptions=subscriptions, **options))  # type: ignore[arg-type]
    s.connect(now)
    s.data_to_send()
    events = s.receive_data(connack(), now)
    if subscriptions:
        [subscribe] = sent(s)
        assert isinstance(subscribe, OtherPacket)
        events = s.receive_data(
            suback(struct.unpack("!H", subscribe.body[:2])[0], [1] * len(subscriptions)), now
        )
    assert [type(e) for e in events] == [Ready]
    s.data_to_send()
    return s


# ------------------------------------------------------------------------------------ handshake
def test_connect_carries_credentials_and_the_session_wish() -> None:
    s = Session(SessionOptions("emon", username="emon", password="pw", keepalive_s=20))
    s.connect(100.0)
    assert s.data_to_send() == wire.encode_connect(
        "emon",
        20,
        wire.V5,
        session_expiry_s=wire.SESSION_NEVER_EXPIRES,
        max_packet_bytes=16 * 1024 * 1024,
        username="emon",
        password="pw",
    )
    assert s.state is State.CONNECTING
    assert s.next_deadline() == 110.0  # the CONNACK must come within the handshake timeout


@pytest.mark.parametrize(
    ("version", "code", "meaning", "fatal"),
    [
        (wire.V311, 1, "unacceptable protocol version", True),
        (wire.V311, 2, "client identifier rejected", True),
        (wire.V311, 3, "server unavailable", False),
        (wire.V311, 4, "bad user name or password", True),
        (wire.V311, 5, "not authorized", True),
        (wire.V5, 0x84, "unsupported protocol version", True),
        (wire.V5, 0x85, "client identifier not valid", True),
        (wire.V5, 0x86, "bad user name or password", True),
        (wire.V5, 0x87, "not authorized", True),
        (wire.V5, 0x88, "server unavailable", False),
        (wire.V5, 0x89, "server busy", False),
        (wire.V5, 0x8A, "banned", True),
        (wire.V5, 0x97, "quota exceeded", False),
        (wire.V5, 0x9F, "connection rate exceeded", False),
    ],
)
def test_connack_refusals_close_and_decide_the_wait(
    version: int, code: int, meaning: str, fatal: bool
) -> None:
    assert connack_meaning(version, code) == (meaning, fatal)
    s = Session(SessionOptions("emon", version=version, reconnect_first_s=0.5, reconnect_cap_s=30.0))
    s.connect(0.0)
    s.data_to_send()
    [event] = s.receive_data(connack(code=code, v5=version == wire.V5), 0.1)
    assert isinstance(event, Close)
    assert event.refused_code == code and meaning in event.reason and f"0x{code:02x}" in event.reason
    assert event.needs_operator is fatal
    assert s.state is State.DISCONNECTED and s.data_to_send() == b""
    # Credentials or ACLs that are wrong need an operator, not a hammering: wait the cap at once.
    assert s.reconnect_delay(0.5) == (30.0 if fatal else 0.5)


def test_connack_reason_string_is_in_the_close_reason() -> None:
    s = Session(SessionOptions("emon"))
    s.connect(0.0)
    [event] = s.receive_data(connack(code=0x86, props=b"\x1f\x00\x0bwrong token"), 0.0)
    assert isinstance(event, Close) and "wrong token" in event.reason


def test_no_connack_within_the_handshake_timeout_closes() -> None:
    s = Session(SessionOptions("emon", handshake_timeout_s=10.0))
    s.connect(0.0)
    assert s.tick(9.99) == []
    [event] = s.tick(10.0)
    assert isinstance(event, Close) and "no CONNACK" in event.reason


# ------------------------------------------------------------------------- session present
def test_session_present_decides_whether_to_subscribe_again() -> None:
    s = Session(SessionOptions("emon", subscriptions=SUBS))
    # 1st connection: no session at the broker → SUBSCRIBE; READY only once the SUBACK grants all.
    s.connect(0.0)
    s.data_to_send()
    assert s.receive_data(connack(session_present=False), 0.0) == []
    [subscribe] = sent(s)
    assert isinstance(subscribe, OtherPacket) and subscribe.type == wire.SUBSCRIBE
    assert b"p/emon/v1/fix/+\x01" in subscribe.body and b"p/owntracks/+/+\x01" in subscribe.body
    sub_id = struct.unpack("!H", subscribe.body[:2])[0]
    assert s.receive_data(suback(sub_id, [1, 1]), 0.1) == [Ready(False, True, 0)]
    # 2nd: the broker kept our session → its subscriptions too; no SUBSCRIBE.
    s.connection_lost(5.0)
    s.connect(6.0)
    s.data_to_send()
    assert s.receive_data(connack(session_present=True), 6.0) == [Ready(True, False, 0)]
    assert s.data_to_send() == b""
    # 3rd: a persistent session, but the broker lost it (restarted without persistence, expired):
    # our subscriptions are gone with it, so subscribe again before calling the connection ready.
    s.connection_lost(10.0)
    s.connect(11.0)
    s.data_to_send()
    assert s.receive_data(connack(session_present=False), 11.0) == []
    [again] = sent(s)
    assert isinstance(again, OtherPacket) and again.type == wire.SUBSCRIBE
    assert s.state is State.SUBSCRIBING
    sub_id = struct.unpack("!H", again.body[:2])[0]
    assert s.receive_data(suback(sub_id, [1, 1]), 11.1) == [Ready(False, True, 0)]


@pytest.mark.parametrize("codes", [[1, 0x87], [1, 0], [1]])
def test_a_refused_downgraded_or_missing_subscription_closes(codes: list[int]) -> None:
    s = Session(SessionOptions("emon", subscriptions=SUBS))
    s.connect(0.0)
    s.data_to_send()
    s.receive_data(connack(), 0.0)
    [subscribe] = sent(s)
    assert isinstance(subscribe, OtherPacket)
    [event] = s.receive_data(suback(struct.unpack("!H", subscribe.body[:2])[0], codes), 0.0)
    assert isinstance(event, Close) and "subscription refused" in event.reason and event.needs_operator
    assert s.reconnect_delay(0.5) == s.options.reconnect_cap_s  # an ACL to fix, not a broker to hammer


def test_no_suback_within_the_handshake_timeout_closes() -> None:
    s = Session(SessionOptions("emon", subscriptions=SUBS, handshake_timeout_s=5.0))
    s.connect(0.0)
    s.receive_data(connack(), 1.0)
    assert s.next_deadline() == 6.0
    [event] = s.tick(6.0)
    assert isinstance(event, Close) and "no SUBACK" in event.reason


# ---------------------------------------------------------------------------------- keepalive
def test_pingreq_is_due_after_half_a_keepalive_of_silence() -> None:
    s = ready_session(0.0, keepalive_s=30)
    assert s.next_deadline() == 15.0
    assert s.tick(14.999) == [] and s.data_to_send() == b""
    assert s.tick(15.0) == []
    assert s.data_to_send() == wire.PINGREQ_PACKET
    assert s.next_deadline() == 30.0  # PINGRESP due within half a keepalive
    assert s.receive_data(PINGRESP, 15.2) == []
    assert s.next_deadline() == 30.0  # next ping: half a keepalive after the last PINGREQ
    assert s.tick(29.0) == [] and s.data_to_send() == b""


def test_sending_alone_does_not_put_the_ping_off() -> None:
    # A half-open connection: we keep writing (PUBACKs, publishes) and hear nothing. The ping still
    # comes half a keepalive after the last thing *received*, so a dead broker is noticed.
    s = ready_session(0.0, keepalive_s=30, ack_on_receipt=False)
    s.publish("p/x", b"1", 1, 10.0)
    s.publish("p/x", b"2", 1, 14.0)
    s.data_to_send()
    assert s.next_deadline() == 15.0
    s.tick(15.0)
    assert s.data_to_send() == wire.PINGREQ_PACKET


def test_traffic_from_the_broker_and_to_it_defers_the_ping() -> None:
    s = ready_session(0.0, keepalive_s=30, ack_on_receipt=True)
    s.receive_data(wire.encode_publish("p/emon/v1/fix/t", b"{}", 1, 7), 12.0)  # auto-acked at 12
    assert s.data_to_send() == wire.encode_puback(7)
    assert s.next_deadline() == 27.0


def test_a_missing_pingresp_is_a_dead_broker() -> None:
    s = ready_session(0.0, keepalive_s=30)
    s.tick(15.0)
    assert s.data_to_send() == wire.PINGREQ_PACKET
    assert s.tick(29.99) == []
    [event] = s.tick(30.0)
    assert isinstance(event, Close) and "no PINGRESP" in event.reason
    assert s.state is State.DISCONNECTED and s.next_deadline() is None


def test_the_broker_can_shorten_our_keepalive() -> None:
    s = Session(SessionOptions("emon", keepalive_s=60))
    s.connect(0.0)
    s.receive_data(connack(props=b"\x13\x00\x0a"), 0.0)  # Server Keep Alive 10 s
    assert s.next_deadline() == 5.0


# ---------------------------------------------------------------------------------- reconnect
def test_reconnect_backoff_doubles_from_first_to_cap_with_jitter_and_resets_when_it_worked() -> None:
    s = Session(SessionOptions("emon", reconnect_first_s=0.5, reconnect_cap_s=30.0))
    bases = []
    for _ in range(9):
        s.connect_failed()  # e.g. connection refused
        base = s.reconnect_delay(0.5)
        # jitter spans 50 % … 150 % of the base
        assert (s.reconnect_delay(0.0), s.reconnect_delay(0.999999)) == pytest.approx(
            (base * 0.5, base * 1.499999)
        )
        bases.append(base)
    assert bases == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert all(0.25 <= s.reconnect_delay(j) < 45.0 for j in (0.0, 0.3, 0.99))
    # A connection that got to READY and was then lost: start afresh.
    s.connect(0.0)
    s.receive_data(connack(), 0.0)
    s.connection_lost(100.0)
    assert s.reconnect_delay(0.5) == 0.5
    # One that was refused for a transient reason counts as a failure like any other.
    s.connect(101.0)
    s.receive_data(connack(code=0x88), 101.0)
    s.connect(102.0)
    s.receive_data(connack(code=0x88), 102.0)
    assert s.reconnect_delay(0.5) == 1.0


# -------------------------------------------------------------------------- QoS 1 publishing
def test_in_flight_publishes_are_resent_with_dup_after_a_reconnect_to_a_kept_session() -> None:
    s = ready_session(0.0)
    ids = [s.publish("p/emon/v1/notify/v", b"n%d" % i, 1, 1.0) for i in range(3)]
    assert [p for p in sent(s)] == [Publish("p/emon/v1/notify/v", b"n%d" % i, 1, ids[i]) for i in range(3)]
    assert s.receive_data(puback(ids[0]), 1.1) == [PublishAcked(ids[0], 0)]
    s.connection_lost(2.0)  # ids[1], ids[2] are unacknowledged
    late = s.publish("p/emon/v1/notify/v", b"late", 1, 3.0)  # made while disconnected: waits
    assert s.data_to_send() == b""
    s.connect(4.0)
    s.data_to_send()
    assert s.receive_data(connack(session_present=True), 4.0) == [Ready(True, False, 2)]
    assert sent(s) == [
        Publish("p/emon/v1/notify/v", b"n1", 1, ids[1], dup=True),  # same id, DUP: the broker may have it
        Publish("p/emon/v1/notify/v", b"n2", 1, ids[2], dup=True),
        Publish("p/emon/v1/notify/v", b"late", 1, late),  # never sent before: no DUP
    ]
    events = s.receive_data(puback(ids[1]) + puback(ids[2]) + puback(late, 0x10), 4.1)
    assert events == [PublishAcked(ids[1], 0), PublishAcked(ids[2], 0), PublishAcked(late, 0x10)]
    assert s.in_flight == 0


def test_after_a_lost_session_in_flight_publishes_go_again_as_new_messages() -> None:
    s = ready_session(0.0)
    pid = s.publish("p/t", b"x", 1, 1.0)
    s.data_to_send()
    s.connection_lost(2.0)
    s.connect(3.0)
    s.data_to_send()
    assert s.receive_data(connack(session_present=False), 3.0) == [Ready(False, False, 1)]
    assert sent(s) == [Publish("p/t", b"x", 1, pid, dup=False)]


def test_publishes_respect_the_brokers_receive_maximum() -> None:
    s = Session(SessionOptions("emon"))
    s.connect(0.0)
    s.receive_data(connack(props=b"\x21\x00\x02"), 0.0)  # Receive Maximum 2
    s.data_to_send()
    ids = [s.publish("p/t", b"%d" % i, 1, 0.0) for i in range(4)]
    assert [p.packet_id for p in sent(s) if isinstance(p, Publish)] == ids[:2]
    s.receive_data(puback(ids[0]), 0.1)
    assert [p.packet_id for p in sent(s) if isinstance(p, Publish)] == [ids[2]]


def test_a_refused_publish_is_reported_and_a_forgotten_one_never_resent() -> None:
    s = ready_session(0.0)
    refused = s.publish("p/emon/v1/notify/other", b"x", 1, 0.0)
    given_up = s.publish("p/t", b"y", 1, 0.0)
    s.data_to_send()
    [event] = s.receive_data(puback(refused, 0x87), 0.1)
    assert event == PublishAcked(refused, 0x87) and event.refused
    s.forget(given_up)
    assert s.receive_data(puback(given_up), 0.2) == []  # nobody waits for it any more
    s.connection_lost(1.0)
    s.connect(2.0)
    s.data_to_send()
    s.receive_data(connack(session_present=True), 2.0)
    assert s.data_to_send() == b""


def test_qos0_publish_needs_a_connection_and_bad_topics_are_refused_up_front() -> None:
    s = Session(SessionOptions("emon"))
    with pytest.raises(wire.MqttError, match="not connected"):
        s.publish("p/t", b"x", 0, 0.0)
    with pytest.raises(ValueError):
        s.publish("p/+", b"x", 1, 0.0)
    assert s.in_flight == 0


# ---------------------------------------------------------------------------- receiving
def test_acks_after_storage_belong_to_their_connection() -> None:
    s = ready_session(0.0, ack_on_receipt=False)
    events = s.receive_data(
        wire.encode_publish("p/a", b"1", 1, 5) + wire.encode_publish("p/a", b"2", 1, 6), 1.0
    )
    assert events == [Publish("p/a", b"1", 1, 5), Publish("p/a", b"2", 1, 6)]
    assert s.data_to_send() == b""  # nothing acknowledged until the application says so
    first = s.generation
    s.ack([5], first, 1.5)
    assert s.data_to_send() == wire.encode_puback(5)
    s.connection_lost(2.0)
    s.connect(3.0)
    s.receive_data(connack(session_present=True), 3.0)
    s.data_to_send()
    s.ack([6], first, 3.5)  # packet 6 of the old connection: the broker redelivers it instead
    assert s.data_to_send() == b""


def test_ack_on_receipt_acknowledges_each_read_in_one_write() -> None:
    s = ready_session(0.0, ack_on_receipt=True)
    data = b"".join(wire.encode_publish("p/a", b"%d" % i, 1, i + 1) for i in range(3))
    data += wire.encode_publish("p/a", b"q0", 0, 0)
    assert len(s.receive_data(data, 1.0)) == 4
    assert s.data_to_send() == wire.encode_pubacks([1, 2, 3])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (wire.encode_publish("p/a", b"x", 1, 1)[:1] + b"\xff\xff\xff\xff\x01", "malformed"),
        (b"\x34\x06\x00\x01a\x00\x01\x00", "QoS 2"),
        (b"\x62\x02\x00\x01", "unexpected MQTT packet type 6"),  # PUBREL: we never use QoS 2
        (b"\xe0\x02\x8e\x00", "DISCONNECT (reason 0x8e)"),  # session taken over
        (connack(), "a second CONNACK"),
    ],
)
def test_protocol_violations_and_broker_disconnects_close(data: bytes, reason: str) -> None:
    s = ready_session(0.0)
    events = s.receive_data(data, 1.0)
    assert isinstance(events[-1], Close) and reason in events[-1].reason
    assert s.state is State.DISCONNECTED
    assert s.receive_data(wire.encode_publish("p/a", b"x", 1, 1), 2.0) == []  # nothing after the close


def test_a_publish_before_connack_is_a_protocol_error() -> None:
    s = Session(SessionOptions("emon"))
    s.connect(0.0)
    [event] = s.receive_data(wire.encode_publish("p/a", b"x", 1, 1), 0.1)
    assert isinstance(event, Close) and "before CONNACK" in event.reason


def test_disconnect_says_goodbye_only_when_connected() -> None:
    s = Session(SessionOptions("emon"))
    s.disconnect(0.0)
    assert s.data_to_send() == b""
    s = ready_session(0.0)
    s.disconnect(1.0)
    assert s.data_to_send() == wire.DISCONNECT_PACKET


def test_a_forgotten_publish_keeps_its_window_slot_until_the_broker_answers() -> None:
    s = Session(SessionOptions("emon"))
    s.connect(0.0)
    s.receive_data(connack(props=b"\x21\x00\x01"), 0.0)  # Receive Maximum 1
    s.data_to_send()
    first = s.publish("p/t", b"1", 1, 0.0)
    second = s.publish("p/t", b"2", 1, 0.0)
    assert [p.packet_id for p in sent(s) if isinstance(p, Publish)] == [first]
    s.forget(first)  # its sender gave up, but the broker still counts it as in flight
    third = s.publish("p/t", b"3", 1, 0.0)
    assert third != first and s.data_to_send() == b""  # sending now would exceed the broker's maximum
    assert s.receive_data(puback(first), 0.1) == []  # nobody waits for it; the slot frees up
    assert [p.packet_id for p in sent(s) if isinstance(p, Publish)] == [second]
