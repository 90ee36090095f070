"""Which device and which kind of message an MQTT topic is (pure)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import NamedTuple

from emon.device import DEVICE_ID_RE, DeviceRegistry
from emon.topic import unprefixed


class MessageKind(StrEnum):
    FIX = "fix"
    EVENT = "event"
    OWNTRACKS = "owntracks"
    ACK = "ack"


SUBSCRIPTIONS = ("emon/v1/fix/+", "emon/v1/event/+", "emon/v1/ack/+", "owntracks/+/+")


class TopicRoute(NamedTuple):
    """Where a message came from: its kind, its device (None when unknown) and its topic.

    A named tuple: one is built per message, and a frozen dataclass's ``__init__`` cost three times as
    much (issue #14)."""

    kind: MessageKind
    device_id: str | None  # None: an OwnTracks topic no registered device claims
    topic_key: str  # the topic without the optional prefix


# TopicRoute(...) without the named tuple's ``__new__`` (a Python function): one is built per message.
_new_route: Callable[[tuple[MessageKind, str | None, str]], TopicRoute] = functools.partial(
    tuple.__new__, TopicRoute
)
_EMON_KINDS = {"fix": MessageKind.FIX, "event": MessageKind.EVENT, "ack": MessageKind.ACK}


def route(topic: str, prefix: str, registry: DeviceRegistry) -> TopicRoute | None:
    """Parse a topic; None when it is not one of ours at all."""
    if prefix:
        bare = unprefixed(prefix, topic)
        if bare is None:
            return None
        topic = bare
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "emon" and parts[1] == "v1":
        kind = _EMON_KINDS.get(parts[2])
        if kind is None:
            return None
        device_id: str | None = parts[3]
        # A registered id is a valid one (Device checks it): the pattern only for the others.
        if device_id not in registry.by_id and not DEVICE_ID_RE.match(parts[3]):
            device_id = None
        return _new_route((kind, device_id, topic))
    if len(parts) == 3 and parts[0] == "owntracks":
        return _new_route((MessageKind.OWNTRACKS, registry.by_owntracks.get(topic), topic))
    return None
