"""Which device and which kind of message an MQTT topic is (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from emon.device import DEVICE_ID_RE, DeviceRegistry
from emon.topic import unprefixed


class MessageKind(StrEnum):
    FIX = "fix"
    EVENT = "event"
    OWNTRACKS = "owntracks"
    ACK = "ack"


SUBSCRIPTIONS = ("emon/v1/fix/+", "emon/v1/event/+", "emon/v1/ack/+", "owntracks/+/+")


@dataclass(frozen=True, slots=True)
class TopicRoute:
    """Where a message came from: its kind, its device (None when unknown) and its topic."""

    kind: MessageKind
    device_id: str | None  # None: an OwnTracks topic no registered device claims
    topic_key: str  # the topic without the optional prefix


def route(topic: str, prefix: str, registry: DeviceRegistry) -> TopicRoute | None:
    """Parse a topic; None when it is not one of ours at all."""
    bare = unprefixed(prefix, topic)
    if bare is None:
        return None
    topic = bare
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "emon" and parts[1] == "v1":
        kinds = {"fix": MessageKind.FIX, "event": MessageKind.EVENT, "ack": MessageKind.ACK}
        kind = kinds.get(parts[2])
        if kind is None:
            return None
        device_id = parts[3] if DEVICE_ID_RE.match(parts[3]) else None
        return TopicRoute(kind, device_id, topic)
    if len(parts) == 3 and parts[0] == "owntracks":
        return TopicRoute(MessageKind.OWNTRACKS, registry.by_owntracks.get(topic), topic)
    return None
