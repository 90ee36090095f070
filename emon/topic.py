"""MQTT topics under the deployment's optional prefix (``EMON_MQTT_TOPIC_PREFIX``; tests run each on
their own). The one place that adds or strips it: ingest, the victim and command channels and
:meth:`emon.settings.Settings.topic` all go through here. Pure."""

from __future__ import annotations


def prefixed(prefix: str, topic: str) -> str:
    """``topic`` under ``prefix`` (``prefix/topic``), or as it is when there is no prefix."""
    return f"{prefix}/{topic}" if prefix else topic


def unprefixed(prefix: str, topic: str) -> str | None:
    """``topic`` without ``prefix/``; None when it is not under the prefix at all."""
    if not prefix:
        return topic
    return topic[len(prefix) + 1 :] if topic.startswith(prefix + "/") else None
