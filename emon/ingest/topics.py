"""Which device and which kind of message an MQTT topic is (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from emon.device import DEVICE_ID_RE, Device


class MessageKind(StrEnum):
    FIX = "fix"
    EVENT = "event"
    OWNTRACKS = "owntracks"
    ACK = "ack"


SUBSCRIPTIONS = ("emon/v1/fix/+", "emon/v1/event/+", "emon/v1/ack/+", "owntracks/+/+")


@dataclass(frozen=True, slots=True)
class Route:
    kind: MessageKind
    device_id: str | None  # None: an OwnTracks topic no registered device claims
    topic_key: str  # the topic without the optional prefix


class DeviceRegistry:
    """Registered devices by id and by OwnTracks topic; messages from others are rejected."""

    def __init__(self, devices: list[Device] | None = None) -> None:
        self.by_id: dict[str, Device] = {}
        self.by_owntracks: dict[str, str] = {}
        for d in devices or []:
            self.add(d)

    def add(self, device: Device) -> None:
        self.by_id[device.device_id] = device
        if device.owntracks_topic:
            self.by_owntracks[device.owntracks_topic] = device.device_id

    def replace_all(self, devices: list[Device]) -> None:
        self.by_id.clear()
        self.by_owntracks.clear()
        for d in devices:
            self.add(d)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self.by_id


def route(topic: str, prefix: str, registry: DeviceRegistry) -> Route | None:
    """Parse a topic; None when it is not one of ours at all."""
    if prefix:
        if not topic.startswith(prefix + "/"):
            return None
        topic = topic[len(prefix) + 1 :]
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "emon" and parts[1] == "v1":
        kinds = {"fix": MessageKind.FIX, "event": MessageKind.EVENT, "ack": MessageKind.ACK}
        kind = kinds.get(parts[2])
        if kind is None:
            return None
        device_id = parts[3] if DEVICE_ID_RE.match(parts[3]) else None
        return Route(kind, device_id, topic)
    if len(parts) == 3 and parts[0] == "owntracks":
        return Route(MessageKind.OWNTRACKS, registry.by_owntracks.get(topic), topic)
    return None
