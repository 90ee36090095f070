"""Device commands (locate now, pursuit mode): an MQTT QoS 1 publish of the stored bytes on the stored topic.

The outbox row holds the topic (without the deployment prefix) and the exact body, both built by
:mod:`emon.alerts.commands`; this channel only moves them. Commands go to tags and victim devices
alike, which is why they never carry a reason or a position.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import aiomqtt

from emon.alerts.channels import DeliveryError
from emon.topic import prefixed

log = logging.getLogger(__name__)


class CommandChannel:
    """One long-lived MQTT connection, (re)made on demand; a failed publish raises :class:`DeliveryError`."""

    def __init__(self, host: str, port: int, topic_prefix: str, *, client_id: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.prefix = topic_prefix
        self.client_id = client_id or f"emon-commands-{uuid.uuid4().hex[:8]}"
        self.timeout_s = timeout_s
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    def topic(self, suffix: str) -> str:
        return prefixed(self.prefix, suffix)

    async def send(self, topic: str, body: bytes) -> None:
        """Publish with QoS 1 (the broker queues it for a device that is offline on a persistent
        session) and wait for the broker's PUBACK."""
        async with self._lock:
            try:
                if self._client is None:
                    client = aiomqtt.Client(self.host, self.port, identifier=self.client_id, timeout=self.timeout_s)
                    await client.__aenter__()
                    self._client = client
                await asyncio.wait_for(self._client.publish(self.topic(topic), body, qos=1), self.timeout_s)
            except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
                await self._drop()
                raise DeliveryError(f"mqtt command publish on {topic} failed: {exc}") from exc

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except Exception:
                log.debug("closing a broken MQTT client failed", exc_info=True)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
