"""The sans-I/O MQTT codec: exact bytes out, packets in however the socket splits them."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emon.mqtt import wire
from emon.mqtt.wire import ConnAck, Disconnect, OtherPacket, PacketReader, PingResp, PubAck, Publish, SubAck


def publish_packet(
    topic: bytes | str,
    payload: bytes,
    qos: int = 1,
    packet_id: int = 1,
    *,
    v5: bool = True,
    props: bytes = b"",
    retain: bool = False,
    dup: bool = False,
) -> bytes:
    """A tiny independent PUBLISH encoder (the broker's side), to check the reader against."""
    raw = topic.encode() if isinstance(topic, str) else topic
    body = struct.pack("!H", len(raw)) + raw
    if qos:
        body += struct.pack("!H", packet_id)
    if v5:
        body += wire.encode_varint(len(props)) + props
    body += payload
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    return bytes((first,)) + wire.encode_varint(len(body)) + body


def feed_chunks(reader: PacketReader, data: bytes, cuts: list[int]) -> list[wire.Packet]:
    out: list[wire.Packet] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        out += reader.feed(data[start:cut])
        start = cut
    return out


# ------------------------------------------------------------------------------------- encoders


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_varint(value: int, encoded: bytes) -> None:
    assert wire.encode_varint(value) == encoded


def test_varint_out_of_range() -> None:
    with pytest.raises(ValueError):
        wire.encode_varint(268_435_456)


@pytest.mark.parametrize(
    ("packet", "expected"),
    [
        (
            wire.encode_connect("emon", 30, wire.V311),
            b"\x10\x10\x00\x04MQTT\x04\x00\x00\x1e\x00\x04emon",
        ),
        (
            wire.encode_connect("emon", 30, wire.V311, clean=True),
            b"\x10\x10\x00\x04MQTT\x04\x02\x00\x1e\x00\x04emon",
        ),
        (
            # props: Session Expiry 0xFFFFFFFF (0x11), Receive Maximum 65535 (0x21)
            wire.encode_connect("emon", 30, wire.V5),
            b"\x10\x19\x00\x04MQTT\x05\x00\x00\x1e\x08\x11\xff\xff\xff\xff\x21\xff\xff\x00\x04emon",
        ),
        (
            wire.encode_connect("e", 60, wire.V5, max_packet_bytes=1 << 24),
            b"\x10\x1b\x00\x04MQTT\x05\x00\x00\x3c\x0d\x11\xff\xff\xff\xff\x21\xff\xff\x27\x01\x00\x00\x00\x00\x01e",
        ),
        (
            wire.encode_connect("c", 30, wire.V311, clean=True, username="u", password="p"),
            b"\x10\x13\x00\x04MQTT\x04\xc2\x00\x1e\x00\x01c\x00\x01u\x00\x01p",
        ),
        (
            # a clean v5 session: no Session Expiry property (0 = ends with the connection)
            wire.encode_connect("e", 30, wire.V5, clean=True, session_expiry_s=0),
            b"\x10\x11\x00\x04MQTT\x05\x02\x00\x1e\x03\x21\xff\xff\x00\x01e",
        ),
        (wire.encode_publish("a/b", b"hi", 1, 7, wire.V5, dup=True), b"\x3a\x0a\x00\x03a/b\x00\x07\x00hi"),
        (wire.encode_publish("a/b", b"hi", 1, 7, wire.V311), b"\x32\x09\x00\x03a/b\x00\x07hi"),
        (
            wire.encode_publish("a/b", b"hi", 0, 0, wire.V311, dup=True),
            b"\x30\x07\x00\x03a/bhi",
        ),  # no DUP at QoS 0
        (
            wire.encode_subscribe(1, ["a/+", "b/#"], wire.V311),
            b"\x82\x0e\x00\x01\x00\x03a/+\x01\x00\x03b/#\x01",
        ),
        (wire.encode_subscribe(7, ["a/+"], wire.V5), b"\x82\x09\x00\x07\x00\x00\x03a/+\x01"),
        (wire.encode_puback(0x1234), b"\x40\x02\x12\x34"),
        (wire.encode_pubacks([1, 65535]), b"\x40\x02\x00\x01\x40\x02\xff\xff"),
        (wire.encode_pubacks([]), b""),
        (wire.PINGREQ_PACKET, b"\xc0\x00"),
        (wire.DISCONNECT_PACKET, b"\xe0\x00"),
    ],
)
def test_encoders(packet: bytes, expected: bytes) -> None:
    assert packet == expected


@pytest.mark.parametrize(
    ("topic", "qos", "packet_id"),
    [("a/+", 1, 1), ("a/#", 1, 1), ("", 1, 1), ("a\x00b", 1, 1), ("a", 2, 1), ("a", 1, 0), ("a", 1, 65536)],
)
def test_publish_encoder_refuses_what_no_broker_may_receive(topic: str, qos: int, packet_id: int) -> None:
    with pytest.raises(ValueError):
        wire.encode_publish(topic, b"x", qos, packet_id)


def test_published_packets_decode_back() -> None:
    for v in (wire.V311, wire.V5):
        data = wire.encode_publish("t/é", b"\x00payload", 1, 513, v, dup=True, retain=True)
        assert PacketReader(v).feed(data) == [Publish("t/é", b"\x00payload", 1, 513, retain=True, dup=True)]


def test_a_received_publish_has_every_field_of_the_named_tuple() -> None:
    """The reader builds a Publish with ``tuple.__new__`` (no defaults, no arity check): a field added to
    the named tuple but not to that call would make a short tuple, whose new field then raises."""
    (packet,) = PacketReader(wire.V5).feed(wire.encode_publish("t", b"p", 1, 1, wire.V5))
    assert len(packet) == len(Publish._fields)
    assert packet == Publish(*packet)


# ------------------------------------------------------------------------------------- decoding

V5_PROPS = b"\x01\x01" + b"\x03\x00\x10application/json" + b"\x02\x00\x00\x00\x3c"  # format, type, expiry


@pytest.mark.parametrize(
    ("version", "data", "expected"),
    [
        (wire.V311, b"\x20\x02\x01\x00", ConnAck(True, 0)),
        (wire.V311, b"\x20\x02\x00\x05", ConnAck(False, 5)),
        (wire.V5, b"\x20\x03\x00\x00\x00", ConnAck(False, 0)),
        (
            wire.V5,
            b"\x20\x08\x01\x00\x05\x21\x00\x14\x25\x00",
            ConnAck(True, 0, receive_maximum=20),
        ),  # + retain avail
        (wire.V5, b"\x20\x06\x00\x00\x03\x13\x00\x3c", ConnAck(False, 0, server_keepalive=60)),
        (wire.V5, b"\x20\x0a\x00\x86\x07\x1f\x00\x04nope", ConnAck(False, 0x86, reason="nope")),
        (
            wire.V5,
            b"\x20\x0c\x00\x00\x09\x26\x00\x01k\x00\x01v\x24\x01",
            ConnAck(False, 0),
        ),  # user prop, max QoS
        (wire.V5, b"\x20\x03\x00\x87\x00", ConnAck(False, 0x87)),  # not authorized
        (wire.V311, b"\x90\x05\x00\x01\x01\x80\x00", SubAck(1, (1, 0x80, 0))),
        (wire.V5, b"\x90\x05\x00\x02\x00\x01\x01", SubAck(2, (1, 1))),
        (wire.V5, b"\x90\x08\x00\x02\x03\x1f\x00\x00\x87\x01", SubAck(2, (0x87, 1))),  # with reason string
        (wire.V311, b"\xd0\x00", PingResp()),
        (wire.V5, b"\xe0\x00", Disconnect(0)),
        (wire.V5, b"\xe0\x02\x8e\x00", Disconnect(0x8E)),  # session taken over
        (wire.V311, b"\xe0\x00", Disconnect(0)),
        (wire.V311, b"\x62\x02\x00\x09", OtherPacket(wire.PUBREL, 2, b"\x00\x09")),
        (wire.V311, b"\x40\x02\x00\x09", PubAck(9, 0)),
        (wire.V5, b"\x40\x02\x12\x34", PubAck(0x1234, 0)),
        (wire.V5, b"\x40\x04\x00\x09\x87\x00", PubAck(9, 0x87)),  # not authorized (ACL)
        (wire.V5, b"\x40\x03\x00\x09\x10", PubAck(9, 0x10)),  # no matching subscribers: accepted
        (wire.V5, publish_packet("t/a", b"{}", 1, 9), Publish("t/a", b"{}", 1, 9)),
        (wire.V5, publish_packet("t/a", b"{}", 1, 9, props=V5_PROPS), Publish("t/a", b"{}", 1, 9)),
        (wire.V311, publish_packet("t/a", b"{}", 1, 9, v5=False), Publish("t/a", b"{}", 1, 9)),
        (wire.V311, publish_packet("t/a", b"", 0, v5=False), Publish("t/a", b"", 0, 0)),
        (wire.V5, publish_packet("t/a", b"", 1, 65535), Publish("t/a", b"", 1, 65535)),
        (
            wire.V5,
            publish_packet("t", b"x", 1, 3, retain=True, dup=True),
            Publish("t", b"x", 1, 3, True, True),
        ),
        (wire.V5, publish_packet("t", b"x", 2, 3), Publish("t", b"x", 2, 3)),
        (wire.V5, publish_packet("tøpic/é", b"x", 0), Publish("tøpic/é", b"x", 0, 0)),
        # Not valid UTF-8 / U+0000: repaired (so it routes nowhere), never an exception out of the reader.
        (wire.V5, publish_packet(b"t/\xff\xfe", b"x", 1, 4), Publish("t/\ufffd\ufffd", b"x", 1, 4)),
        (wire.V5, publish_packet(b"t/\x00", b"x", 1, 4), Publish("t/\ufffd", b"x", 1, 4)),
        # An empty topic (a topic alias we never allowed): delivered, routed nowhere → dead letter.
        (wire.V5, publish_packet("", b"x", 1, 5, props=b"\x23\x00\x01"), Publish("", b"x", 1, 5)),
    ],
)
def test_decode_one(version: int, data: bytes, expected: wire.Packet) -> None:
    assert PacketReader(version).feed(data) == [expected]
    # The same packet byte by byte gives the same result.
    reader = PacketReader(version)
    assert feed_chunks(reader, data, list(range(1, len(data)))) == [expected]
    assert reader.buffered == 0


@pytest.mark.parametrize(
    ("version", "data", "error"),
    [
        (wire.V5, b"\x30\xff\xff\xff\xff\x01", "longer than 4 bytes"),
        (wire.V5, b"\x36\x05\x00\x01t\x00\x01", "QoS 3"),
        (wire.V5, b"\x32\x05\x00\x01t\x00\x00", "packet id 0"),
        (wire.V5, b"\x32\x03\x00\x01t", "without a packet id"),
        (wire.V5, b"\x32\x04\x00\x09ab", "topic longer"),
        (wire.V5, b"\x32\x06\x00\x01t\x00\x01\x05", "properties longer"),
        (wire.V5, b"\x20\x01\x00", "CONNACK"),
        (wire.V5, b"\x20\x05\x00\x00\x02\x21\x00", "truncated CONNACK property"),
        (wire.V5, b"\x20\x05\x00\x00\x02\x7f\x00", "unknown CONNACK property"),
        (wire.V5, b"\x20\x06\x00\x00\x03\x21\x00\x00", "Receive Maximum 0"),
        (wire.V5, b"\x40\x01\x00", "PUBACK"),
        (wire.V5, b"\x90\x02\x00\x01", "SUBACK"),
    ],
)
def test_malformed_packets_raise(version: int, data: bytes, error: str) -> None:
    with pytest.raises(wire.MalformedPacket, match=error):
        PacketReader(version).feed(data)


@pytest.mark.parametrize("remaining", [127, 128, 16_383, 16_384, 2_097_151, 2_097_152])
def test_remaining_length_boundaries(remaining: int) -> None:
    # v3 QoS 1, topic "t": 2 + 1 + 2 bytes of header in the body, the rest is payload.
    payload = bytes(range(256)) * (remaining // 256 + 1)
    packet = publish_packet("t", payload[: remaining - 5], 1, 77, v5=False)
    assert len(packet) == 1 + len(wire.encode_varint(remaining)) + remaining
    whole = PacketReader(wire.V311).feed(packet + b"\xd0\x00")
    assert whole == [Publish("t", payload[: remaining - 5], 1, 77), PingResp()]
    reader = PacketReader(wire.V311)
    step = max(1, remaining // 7)
    cuts = [1, 2, 3, *range(4, len(packet), step)]
    assert feed_chunks(reader, packet + b"\xd0\x00", cuts) == whole


def test_packet_over_the_configured_maximum_is_refused_from_its_header() -> None:
    reader = PacketReader(wire.V5, max_packet_bytes=1000)
    assert reader.feed(publish_packet("t", b"x" * 990)) != []
    with pytest.raises(wire.PacketTooLarge, match="1001 bytes > the maximum of 1000"):
        reader.feed(publish_packet("t", b"x" * 995)[:4])  # only the header has arrived


def test_many_packets_per_read_and_split_everywhere() -> None:
    stream = (
        b"\x20\x03\x01\x00\x00"
        + b"\x90\x04\x00\x01\x00\x01"
        + b"".join(publish_packet(f"p/emon/v1/fix/tag-{i}", b'{"seq": %d}' % i, 1, i + 1) for i in range(50))
        + publish_packet("p/x", b"", 0)
        + b"\xd0\x00"
        + b"\xe0\x00"
    )
    expected = PacketReader(wire.V5).feed(stream)
    assert len(expected) == 55
    assert expected[0] == ConnAck(True, 0) and expected[1] == SubAck(1, (1,))
    assert expected[2] == Publish("p/emon/v1/fix/tag-0", b'{"seq": 0}', 1, 1)
    assert expected[-3:] == [Publish("p/x", b"", 0, 0), PingResp(), Disconnect(0)]
    for size in (1, 2, 3, 7, 64, 1000):
        reader = PacketReader(wire.V5)
        assert feed_chunks(reader, stream, list(range(size, len(stream), size))) == expected


publishes = st.lists(
    st.tuples(
        st.text(min_size=1, max_size=40).filter(lambda t: "\x00" not in t),
        st.binary(max_size=300),
        st.sampled_from([0, 1, 2]),
        st.integers(1, 65535),
        st.booleans(),
        st.binary(max_size=20),  # opaque properties: the reader must skip, not interpret them
    ),
    max_size=20,
)


@settings(max_examples=200, deadline=None)
@given(publishes, st.booleans(), st.lists(st.integers(0, 10_000), max_size=30))
def test_round_trip_in_random_chunks(
    items: list[tuple[str, bytes, int, int, bool, bytes]], v5: bool, cuts: list[int]
) -> None:
    stream = b"".join(
        publish_packet(topic, payload, qos, pid, v5=v5, props=props, retain=retain)
        for topic, payload, qos, pid, retain, props in items
    )
    reader = PacketReader(wire.V5 if v5 else wire.V311)
    got = feed_chunks(reader, stream, [c % (len(stream) + 1) for c in cuts])
    assert got == [
        Publish(topic, payload, qos, pid if qos else 0, retain)
        for topic, payload, qos, pid, retain, _ in items
    ]
    assert reader.buffered == 0
