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

# The routes of emon topics, by prefix and topic: the same few thousand topics arrive over and over, and
# an emon topic's route depends on the topic alone (not on the registry), so each is worked out once
# (issue #14: a dict lookup instead of a split, a pattern and a tuple per message). Emptied when full, so
# that topics that are never seen again cannot pile up.
_EMON_ROUTES: dict[str, dict[str, TopicRoute | None]] = {}
_EMON_ROUTES_MAX = 100_000  # per prefix: ten times the topics of 10,000 devices' three kinds


def route(topic: str, prefix: str, registry: DeviceRegistry) -> TopicRoute | None:
    """Parse a topic; None when it is not one of ours at all."""
    known = _EMON_ROUTES.get(prefix)
    if known is None:
        known = _EMON_ROUTES[prefix] = {}
    elif topic in known:
        return known[topic]
    if prefix:
        bare = unprefixed(prefix, topic)
        if bare is None:
            return None
        topic_key = bare
    else:
        topic_key = topic
    parts = topic_key.split("/")
    if len(parts) == 4 and parts[0] == "emon" and parts[1] == "v1":
        kind = _EMON_KINDS.get(parts[2])
        # No registry here: a registered id is a valid one (Device checks it), so the pattern decides.
        device_id = parts[3] if DEVICE_ID_RE.match(parts[3]) else None
        r = None if kind is None else _new_route((kind, device_id, topic_key))
        if len(known) >= _EMON_ROUTES_MAX:
            known.clear()
        known[topic] = r
        return r
    if len(parts) == 3 and parts[0] == "owntracks":
        # Not remembered: which device an OwnTracks topic is depends on the registry.
        return _new_route((MessageKind.OWNTRACKS, registry.by_owntracks.get(topic_key), topic_key))
    return None
