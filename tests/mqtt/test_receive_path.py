"""The receive path's fast paths (issue #14) change nothing but the cost: socket reads however split →
packets → session rules → the sink, and the PUBACKs written after storage, byte for byte."""

from __future__ import annotations

import asyncio
import random
import struct

import pytest

from emon.mqtt import wire
from emon.mqtt.client import AckToken, MqttClient, _Link, ack_all
from emon.mqtt.endpoint import Endpoint
from emon.mqtt.protocol import Close, Ready, Session, SessionOptions, State
from emon.mqtt.wire import PacketReader, Publish
from tests.mqtt.test_protocol import connack, suback
from tests.mqtt.test_wire import publish_packet

# ------------------------------------------------------------------------------------------ wire


def test_every_packet_id_has_its_own_puback() -> None:
    """The PUBACKs come from a table by packet id: every id a PUBLISH can carry, each its own bytes."""
    for pid in range(1, 0x10000):
        assert wire.encode_pubacks([pid]) == wire.encode_puback(pid) == b"\x40\x02" + struct.pack("!H", pid)
    ids = [65535, 1, 256, 255, 7, 7, 40_000]  # in the order given, repeats included
    assert wire.encode_pubacks(ids) == b"".join(wire.encode_puback(p) for p in ids)
    assert wire.encode_pubacks([]) == b""


@pytest.mark.parametrize("props", [b"", b"\x01\x01", b"\x26\x00\x01k\x00\x7av" + b"x" * 0x7A, bytes(200)])
def test_publish_properties_of_any_length_are_skipped(props: bytes) -> None:
    """A 1-byte properties length is read in place; a longer one (≥ 128 bytes) as a variable integer."""
    packet = publish_packet("emon/v1/fix/tag-1", b"{}", 1, 9, props=props, retain=True)
    (got,) = PacketReader(wire.V5).feed(packet)
    assert got == Publish("emon/v1/fix/tag-1", b"{}", 1, 9, True, False)
    assert type(got.retain) is bool and type(got.dup) is bool


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x32\x05\x00\x01t\x00\x01", "truncated or overlong variable byte integer"),  # no properties length
        (b"\x32\x07\x00\x01t\x00\x01\x80\x01", "properties longer"),  # 128 bytes of properties announced
        (b"\x32\x07\x00\x01t\x00\x01\x80\x80", "truncated or overlong variable byte integer"),
    ],
)
def test_a_v5_publish_with_a_bad_properties_length_is_refused(data: bytes, error: str) -> None:
    with pytest.raises(wire.MalformedPacket, match=error):
        PacketReader(wire.V5).feed(data)


# --------------------------------------------------------------------------------------- session


def _session() -> Session:
    s = Session(SessionOptions("emon", subscriptions=(("emon/v1/fix/+", 1),), ack_on_receipt=False))
    s.connect(0.0)
    s.data_to_send()
    return s


def test_the_handshake_and_messages_in_one_read_are_all_taken() -> None:
    """The state is checked once per read, and again after each control packet: a PUBLISH behind the
    CONNACK and SUBACK of the same read is delivered."""
    s = _session()
    pub = wire.encode_publish("emon/v1/fix/tag-1", b"{}", 1, 3)
    events = s.receive_data(connack() + pub + suback(1, [1]) + pub, 1.0)
    message = Publish("emon/v1/fix/tag-1", b"{}", 1, 3)
    assert events == [message, Ready(False, True, 0), message]
    assert s.state is State.READY


def test_a_publish_ahead_of_the_connack_in_the_same_read_closes() -> None:
    s = _session()
    events = s.receive_data(wire.encode_publish("emon/v1/fix/tag-1", b"{}", 1, 3) + connack(), 1.0)
    assert len(events) == 1 and isinstance(events[0], Close) and "before CONNACK" in events[0].reason


def test_nothing_is_delivered_after_a_disconnect_in_the_same_read() -> None:
    s = _session()
    s.receive_data(connack() + suback(1, [1]), 1.0)
    pub = wire.encode_publish("emon/v1/fix/tag-1", b"{}", 1, 3)
    events = s.receive_data(pub + b"\xe0\x00" + pub, 2.0)
    assert [type(e) for e in events] == [Publish, Close]


# --------------------------------------------------------------------------- client → sink → acks


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass


def _linked(sink: list[tuple[str, bytes, AckToken | None]]) -> tuple[_Link, _Transport]:
    options = SessionOptions("emon", subscriptions=(("emon/v1/fix/+", 1),), ack_on_receipt=False)
    client = MqttClient(Endpoint("localhost", 1883), options, lambda t, p, a: sink.append((t, p, a)))
    link, transport = _Link(client), _Transport()
    link.connection_made(transport)
    link.data_received(connack() + suback(1, [1]))
    assert client.connected.is_set()
    transport.writes.clear()
    return link, transport


async def test_messages_split_across_reads_reach_the_sink_once_each_in_order() -> None:
    rng = random.Random(14)
    items = [(f"emon/v1/fix/tag-{i % 7}", b'{"seq":%d}' % i, i % 3 != 0, i % 65535 + 1) for i in range(2000)]
    stream = b"".join(
        wire.encode_publish(topic, payload, 1 if qos1 else 0, pid) for topic, payload, qos1, pid in items
    )
    for _ in range(5):
        got: list[tuple[str, bytes, AckToken | None]] = []
        link, transport = _linked(got)
        start = 0
        while start < len(stream):  # reads of 1 byte to 4 KB: packets split anywhere, many per read
            size = rng.choice([1, 2, 3, 50, 200, 4096])
            link.data_received(stream[start : start + size])
            start += size
        assert [(t, p) for t, p, _ in got] == [(t, p) for t, p, _, _ in items]
        assert [a for _, _, a in got] == [(link, pid) if qos1 else None for _, _, qos1, pid in items]
        assert transport.writes == []  # nothing acknowledged before storage
        # Acknowledged as the pipeline does after a commit: one write per batch, in the order received.
        tokens = [a for _, _, a in got if a is not None]
        ack_all(tokens[:700])
        ack_all(iter(tokens[700:]))
        assert transport.writes == [
            wire.encode_pubacks([pid for _, pid in tokens[:700]]),
            wire.encode_pubacks([pid for _, pid in tokens[700:]]),
        ]


async def test_acks_of_two_connections_go_to_each_in_its_own_order() -> None:
    first, second = _linked([]), _linked([])
    (a, a_out), (b, b_out) = first, second
    ack_all([(a, 5), (b, 9), (a, 3), (b, 1), (a, 65535)])
    assert a_out.writes == [wire.encode_pubacks([5, 3, 65535])]
    assert b_out.writes == [wire.encode_pubacks([9, 1])]
    ack_all([])
    ack_all(iter([]))
    assert len(a_out.writes) == len(b_out.writes) == 1
