"""MQTT topic names of the device contract, each under an optional prefix (``{prefix}/emon/v1/...``)."""

from __future__ import annotations


def _join(prefix: str, topic: str) -> str:
    return f"{prefix.strip('/')}/{topic}" if prefix.strip("/") else topic


def fix_topic(device_id: str, prefix: str = "") -> str:
    return _join(prefix, f"emon/v1/fix/{device_id}")


def event_topic(device_id: str, prefix: str = "") -> str:
    return _join(prefix, f"emon/v1/event/{device_id}")


def notify_topic(device_id: str, prefix: str = "") -> str:
    return _join(prefix, f"emon/v1/notify/{device_id}")


def ack_topic(device_id: str, prefix: str = "") -> str:
    return _join(prefix, f"emon/v1/ack/{device_id}")


def owntracks_topic(topic: str, prefix: str = "") -> str:
    """``owntracks/{user}/{device}`` under the prefix."""
    return _join(prefix, topic)


def cmd_topic(device_id: str, owntracks_topic: str | None, prefix: str = "") -> str:
    """Where emon sends a device its commands: ``emon/v1/cmd/{id}``, or ``owntracks/{user}/{device}/cmd``."""
    if owntracks_topic is not None:
        return _join(prefix, f"{owntracks_topic}/cmd")
    return _join(prefix, f"emon/v1/cmd/{device_id}")
