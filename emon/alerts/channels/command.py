"""Device commands (locate now, pursuit mode): an MQTT QoS 1 publish of the stored bytes on the stored topic.

The outbox row holds the topic (without the deployment prefix) and the exact body, both built by
:mod:`emon.alerts.commands`; this channel only moves them. Commands go to tags and victim devices
alike, which is why they never carry a reason or a position. Transport: the
:class:`~emon.alerts.channels.publisher.Publisher` shared with victim notifications (emon's own MQTT
client, with TLS and emon's credentials when configured).
"""

from __future__ import annotations

from emon.alerts.channels.publisher import Publisher
from emon.topic import prefixed


class CommandChannel:
    """Publishes on ``publisher``; a failed publish raises :class:`DeliveryError`."""

    def __init__(self, topic_prefix: str, publisher: Publisher, *, timeout_s: float = 10.0) -> None:
        self.prefix = topic_prefix
        self.publisher = publisher
        self.timeout_s = timeout_s

    def topic(self, suffix: str) -> str:
        return prefixed(self.prefix, suffix)

    async def send(self, topic: str, body: bytes) -> None:
        """Publish with QoS 1 (the broker queues it for a device that is offline on a persistent
        session) and wait for the broker's PUBACK (at most ``timeout_s``)."""
        await self.publisher.publish(self.topic(topic), body, timeout_s=self.timeout_s)

    async def close(self) -> None:
        await self.publisher.close()
