"""The MQTT wire format (3.1.1 and 5), sans I/O: bytes in, packets out, and back.

What emon's clients need: encoders for CONNECT (with username/password), SUBSCRIBE, PUBLISH (QoS 0
and 1), PUBACK, PINGREQ and DISCONNECT, and an incremental :class:`PacketReader` that decodes what a
broker sends to a client. It never touches a socket or a clock: the session rules live in
:mod:`emon.mqtt.protocol`, the sockets in :mod:`emon.mqtt.client`, and every byte-level case is a
unit test.

Speed matters: at 20,000 messages/s the reader decodes every packet of a socket read in one pass,
slicing by index; a PUBLISH costs one small slots object, one ``str`` and one ``bytes``.

References: MQTT 3.1.1 (OASIS 2014) §2–3, MQTT 5.0 (OASIS 2019) §2–3.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from emon.errors import EmonError

V311 = 4  # protocol level byte of MQTT 3.1.1
V5 = 5

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)

MAX_REMAINING_LENGTH = 268_435_455  # the largest a 4-byte variable byte integer can say (§1.5.5)
RECEIVE_MAXIMUM = 65_535  # QoS 1 messages the broker may have unacknowledged in flight to us
SESSION_NEVER_EXPIRES = 0xFFFFFFFF

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # v5: remaining length 0 means reason 0x00, normal disconnection
_PUBACK = struct.Struct("!BBH")
_U16 = struct.Struct("!H")


class MqttError(EmonError):
    """The MQTT connection failed or the broker broke the protocol (the transport reconnects)."""


class MalformedPacket(MqttError):
    """Bytes from the broker that are not a valid MQTT packet; the connection must be dropped."""


class PacketTooLarge(MalformedPacket):
    """A packet longer than the reader's configured maximum (bytes)."""


class Publish(NamedTuple):
    """One PUBLISH. A named tuple: built once per message, it is the cheapest immutable record."""

    topic: str
    payload: bytes
    qos: int
    packet_id: int  # 0 for QoS 0 (a real packet id is 1..65535)
    retain: bool = False
    dup: bool = False


@dataclass(frozen=True, slots=True)
class ConnAck:
    session_present: bool
    code: int  # v3 return code / v5 reason code; 0 is success
    receive_maximum: int = 65_535  # v5: QoS 1 publishes the broker takes in flight from us at once
    server_keepalive: int | None = None  # v5: the broker overrides our keepalive (seconds)
    reason: str = ""  # v5 Reason String, if the broker sent one


@dataclass(frozen=True, slots=True)
class PubAck:
    """The broker's answer to one of our QoS 1 publishes; ``code`` >= 0x80 is a refusal (v5)."""

    packet_id: int
    code: int = 0


@dataclass(frozen=True, slots=True)
class SubAck:
    packet_id: int
    codes: tuple[int, ...]  # granted QoS (0, 1, 2) or a failure code (>= 0x80), one per filter


@dataclass(frozen=True, slots=True)
class PingResp:
    pass


@dataclass(frozen=True, slots=True)
class Disconnect:
    code: int  # v5 reason code (0 when absent); always 0 in v3, where brokers never send one


@dataclass(frozen=True, slots=True)
class OtherPacket:
    """Any other packet type (PUBREL, UNSUBACK, …): the transport decides what it means."""

    type: int
    flags: int
    body: bytes


Packet = Publish | ConnAck | PubAck | SubAck | PingResp | Disconnect | OtherPacket

# ---------------------------------------------------------------------------------------------- encode


def encode_varint(n: int) -> bytes:
    """A variable byte integer (§1.5.5): 1–4 bytes, 7 bits each, least significant first."""
    if not 0 <= n <= MAX_REMAINING_LENGTH:
        raise ValueError(f"{n} does not fit a variable byte integer")
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    raw = s.encode()
    if len(raw) > 0xFFFF:
        raise ValueError("an MQTT string is at most 65,535 bytes")
    return _U16.pack(len(raw)) + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_varint(len(body)) + body


def encode_connect(
    client_id: str,
    keepalive_s: int,
    version: int = V5,
    *,
    clean: bool = False,
    session_expiry_s: int = SESSION_NEVER_EXPIRES,
    max_packet_bytes: int | None = None,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """CONNECT: a persistent session unless ``clean``; optional username and password; no will.

    v5 adds Session Expiry Interval ``session_expiry_s`` (0xFFFFFFFF: never, like 3.1.1's clean
    session 0; omitted when 0), Receive Maximum 65,535 and, if given, Maximum Packet Size (bytes) so
    the broker never sends us a packet the reader would refuse.
    """
    if version not in (V311, V5):
        raise ValueError(f"unsupported protocol level {version}")
    if password is not None and username is None and version == V311:
        raise ValueError("MQTT 3.1.1 allows a password only with a username")
    flags = 0x02 if clean else 0x00
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = _string("MQTT") + bytes((version, flags)) + _U16.pack(keepalive_s)
    if version == V5:
        props = b""
        if session_expiry_s:
            props += b"\x11" + session_expiry_s.to_bytes(4, "big")
        props += b"\x21" + _U16.pack(RECEIVE_MAXIMUM)
        if max_packet_bytes is not None:
            props += b"\x27" + max_packet_bytes.to_bytes(4, "big")
        body += encode_varint(len(props)) + props
    body += _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _string(password)
    return _packet(CONNECT << 4, body)


def encode_subscribe(packet_id: int, topics: Sequence[str], version: int = V5, qos: int = 1) -> bytes:
    """SUBSCRIBE to every filter at ``qos``; v5 subscription options: no-local 0, retain handling 0."""
    body = _U16.pack(packet_id)
    if version == V5:
        body += b"\x00"  # no properties
    for topic in topics:
        body += _string(topic) + bytes((qos,))
    return _packet((SUBSCRIBE << 4) | 0x02, body)  # flags 0010 are mandatory (§3.8.1)


def encode_publish(
    topic: str,
    payload: bytes,
    qos: int,
    packet_id: int,
    version: int = V5,
    *,
    dup: bool = False,
    retain: bool = False,
) -> bytes:
    """PUBLISH at QoS 0 (``packet_id`` ignored) or 1; ``dup`` marks a resend of an unacknowledged one."""
    if qos not in (0, 1):
        raise ValueError("emon publishes at QoS 0 or 1 only")
    if not topic or "+" in topic or "#" in topic or "\x00" in topic:
        raise ValueError(f"not a topic name one may publish to: {topic!r}")
    body = _string(topic)
    if qos:
        if not 0 < packet_id <= 0xFFFF:
            raise ValueError(f"packet id {packet_id} outside 1..65535")
        body += _U16.pack(packet_id)
    if version == V5:
        body += b"\x00"  # no properties
    first = (PUBLISH << 4) | (qos << 1) | (0x08 if dup and qos else 0) | (0x01 if retain else 0)
    return _packet(first, body + payload)


def encode_puback(packet_id: int) -> bytes:
    """PUBACK with the 2-byte form (v5: reason 0x00 success is implied by remaining length 2)."""
    return _PUBACK.pack(PUBACK << 4, 2, packet_id)


def encode_pubacks(packet_ids: Iterable[int]) -> bytes:
    """Many PUBACKs as one buffer, in the given order (the order the PUBLISHes arrived); ``packet_ids``
    are ids of received PUBLISHes (1..65535: the reader refuses any other)."""
    table = _puback_table()
    return b"".join([table[pid] for pid in packet_ids])


@functools.cache
def _puback_table() -> list[bytes]:
    """The PUBACK of every packet id, by id: a list lookup per acknowledged message instead of a
    ``struct`` pack (a fifth of the cost, issue #14). Built on first use, by a client that acknowledges
    (65,536 small bytes objects: 3 MB)."""
    return [_PUBACK.pack(PUBACK << 4, 2, pid) for pid in range(0x10000)]


# ---------------------------------------------------------------------------------------------- decode


class PacketReader:
    """Incremental decoder: feed it whatever the socket returned, get every complete packet.

    Handles packets split over reads and many packets per read. A packet whose remaining length
    exceeds ``max_packet_bytes`` (or is malformed) raises :class:`MalformedPacket`; the reader is
    then unusable and the connection must be dropped. An invalid UTF-8 topic (or one holding U+0000)
    never raises: it is repaired with U+FFFD, routes nowhere, and the message is dead-lettered.
    """

    __slots__ = ("_buf", "_need", "max_packet_bytes", "version")

    def __init__(self, version: int = V5, max_packet_bytes: int = MAX_REMAINING_LENGTH) -> None:
        self.version = version
        self.max_packet_bytes = max_packet_bytes
        self._buf = bytearray()
        self._need = 0  # bytes the buffer must hold before parsing is worth trying again

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete packet held back (for tests and diagnostics)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Packet]:
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return []  # a large packet arriving in pieces: don't re-parse its header each time
            data = bytes(self._buf)
            self._buf.clear()
        packets: list[Packet] = []
        pos = self._parse(data, packets)
        if pos < len(data):
            self._buf += memoryview(data)[pos:]
        return packets

    def _parse(self, data: bytes, out: list[Packet]) -> int:
        """Decode complete packets from ``data``; return where the first incomplete one starts."""
        end = len(data)
        pos = 0
        v5 = self.version == V5
        max_bytes = self.max_packet_bytes
        append = out.append
        while pos + 2 <= end:
            first = data[pos]
            # Remaining length: 1 byte for packets < 128 bytes, the common case by far.
            length = data[pos + 1]
            i = pos + 2
            if length & 0x80:
                length &= 0x7F
                shift = 7
                while True:
                    if i >= end:
                        self._need = end - pos + 1
                        return pos
                    byte = data[i]
                    i += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        break
                    shift += 7
                    if shift > 21:
                        raise MalformedPacket("remaining length longer than 4 bytes")
            if length > max_bytes:
                raise PacketTooLarge(f"packet of {length} bytes > the maximum of {max_bytes}")
            stop = i + length
            if stop > end:
                self._need = stop - pos
                return pos
            ptype = first >> 4
            if ptype == PUBLISH:
                append(_publish(data, first, i, stop, v5))
            else:
                append(_control(ptype, first & 0x0F, data[i:stop], v5))
            pos = stop
        self._need = end - pos + 1
        return pos


# Publish(...) without the named tuple's ``__new__`` (a Python function): built once per message received.
_new_publish: Callable[[tuple[str, bytes, int, int, bool, bool]], Publish] = functools.partial(
    tuple.__new__, Publish
)


def _varint_at(data: bytes, i: int, stop: int) -> tuple[int, int]:
    """A variable byte integer at ``i`` inside a packet ending at ``stop`` → (value, next index)."""
    value = shift = 0
    while True:
        if i >= stop or shift > 21:
            raise MalformedPacket("truncated or overlong variable byte integer")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def _publish(data: bytes, first: int, i: int, stop: int, v5: bool) -> Publish:
    qos = (first >> 1) & 0x03
    if qos == 3:
        raise MalformedPacket("PUBLISH with QoS 3")
    if i + 2 > stop:
        raise MalformedPacket("PUBLISH without a topic length")
    tlen = (data[i] << 8) | data[i + 1]
    i += 2
    if i + tlen > stop:
        raise MalformedPacket("PUBLISH topic longer than the packet")
    raw_topic = data[i : i + tlen]
    i += tlen
    packet_id = 0
    if qos:
        if i + 2 > stop:
            raise MalformedPacket("PUBLISH without a packet id")
        packet_id = (data[i] << 8) | data[i + 1]
        if packet_id == 0:
            raise MalformedPacket("PUBLISH with packet id 0")
        i += 2
    if v5:
        # Properties (message expiry, content type, …) are not used; skip them. A Topic Alias can't
        # occur: we never announce Topic Alias Maximum, so it stays 0 (§3.1.2.11.5). Should a broker
        # send an empty topic anyway, the message is delivered with topic "" and dead-lettered.
        if i < stop and data[i] < 0x80:  # a 1-byte length (Mosquitto sends 0): no call per message
            i += 1 + data[i]
        else:
            plen, i = _varint_at(data, i, stop)
            i += plen
        if i > stop:
            raise MalformedPacket("PUBLISH properties longer than the packet")
    try:
        topic = raw_topic.decode()
    except UnicodeDecodeError:
        topic = raw_topic.decode("utf-8", "replace")
    if "\x00" in topic:  # U+0000 is forbidden in topics, and PostgreSQL text refuses it
        topic = topic.replace("\x00", "\ufffd")
    # ``!= 0``, not bool(): a comparison, not a call.
    return _new_publish((topic, data[i:stop], qos, packet_id, first & 0x01 != 0, first & 0x08 != 0))


def _control(ptype: int, flags: int, body: bytes, v5: bool) -> Packet:
    if ptype == CONNACK:
        if len(body) < 2:
            raise MalformedPacket("CONNACK shorter than 2 bytes")
        if not v5 or len(body) == 2:
            return ConnAck(bool(body[0] & 0x01), body[1])
        return _connack_v5(body)
    if ptype == PUBACK:
        if len(body) < 2:
            raise MalformedPacket("PUBACK shorter than 2 bytes")
        return PubAck((body[0] << 8) | body[1], body[2] if v5 and len(body) > 2 else 0)
    if ptype == SUBACK:
        if len(body) < 3:
            raise MalformedPacket("SUBACK without return codes")
        i = 2
        if v5:
            plen, i = _varint_at(body, 2, len(body))
            i += plen
        return SubAck((body[0] << 8) | body[1], tuple(body[i:]))
    if ptype == PINGRESP:
        return PingResp()
    if ptype == DISCONNECT:
        return Disconnect(body[0] if v5 and body else 0)
    return OtherPacket(ptype, flags, body)


def _connack_v5(body: bytes) -> ConnAck:
    """A v5 CONNACK with its properties: the few that change how we behave, the rest skipped."""
    plen, i = _varint_at(body, 2, len(body))
    stop = i + plen
    if stop > len(body):
        raise MalformedPacket("CONNACK properties longer than the packet")
    receive_maximum, server_keepalive, reason = 65_535, None, ""
    while i < stop:
        prop = body[i]
        i += 1
        size = _PROPERTY_SIZES.get(prop)
        if size is None:
            raise MalformedPacket(f"unknown CONNACK property 0x{prop:02x}")
        if size == -1:  # UTF-8 string or binary data: 2-byte length prefix
            if i + 2 > stop:
                raise MalformedPacket("truncated CONNACK property")
            n = (body[i] << 8) | body[i + 1]
            value = body[i + 2 : i + 2 + n]
            i += 2 + n
            if prop == 0x1F:
                reason = value.decode("utf-8", "replace")
        elif size == -2:  # user property: two strings
            for _ in range(2):
                if i + 2 > stop:
                    raise MalformedPacket("truncated CONNACK property")
                i += 2 + ((body[i] << 8) | body[i + 1])
        else:
            if i + size > stop:
                raise MalformedPacket("truncated CONNACK property")
            number = int.from_bytes(body[i : i + size], "big")
            i += size
            if prop == 0x21:
                if number == 0:
                    raise MalformedPacket("CONNACK with Receive Maximum 0")
                receive_maximum = number
            elif prop == 0x13:
                server_keepalive = number
    if i != stop:
        raise MalformedPacket("CONNACK properties overrun")
    return ConnAck(bool(body[0] & 0x01), body[1], receive_maximum, server_keepalive, reason)


# CONNACK property id → value size in bytes (-1: string/binary, -2: string pair), MQTT 5 §3.2.2.3.
_PROPERTY_SIZES = {
    0x11: 4,
    0x21: 2,
    0x24: 1,
    0x25: 1,
    0x27: 4,
    0x12: -1,
    0x22: 2,
    0x1F: -1,
    0x26: -2,
    0x28: 1,
    0x29: 1,
    0x2A: 1,
    0x13: 2,
    0x1A: -1,
    0x1C: -1,
    0x15: -1,
    0x16: -1,
}
