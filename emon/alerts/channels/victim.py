"""The victim's device: an MQTT QoS 1 publish on ``{prefix/}emon/v1/notify/{device_id}``.

Only victim devices are ever addressed (the registry is asked); nothing is ever sent to an
offender's tag. The body is built by :mod:`emon.alerts.messages` and carries no positions.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

import aiomqtt

from emon.alerts.channels import DeliveryError
from emon.device import DeviceKind
from emon.ingest.topics import DeviceRegistry

log = logging.getLogger(__name__)


class VictimChannel:
    """One long-lived MQTT connection, (re)made on demand; a failed publish raises :class:`DeliveryError`."""

    def __init__(self, host: str, port: int, topic_prefix: str, registry: DeviceRegistry, *,
                 client_id: str | None = None, timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.prefix = topic_prefix
        self.registry = registry
        self.client_id = client_id or f"emon-alerts-{uuid.uuid4().hex[:8]}"
        self.timeout_s = timeout_s
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    def topic(self, device_id: str) -> str:
        suffix = f"emon/v1/notify/{device_id}"
        return f"{self.prefix}/{suffix}" if self.prefix else suffix

    async def _connected(self) -> aiomqtt.Client:
        if self._client is None:
            client = aiomqtt.Client(self.host, self.port, identifier=self.client_id, timeout=self.timeout_s)
            await client.__aenter__()
            self._client = client
        return self._client

    async def send(self, device_id: str, body: bytes) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK."""
        device = self.registry.by_id.get(device_id)
        if device is not None and device.kind is not DeviceKind.VICTIM_DEVICE:
            raise DeliveryError(f"refusing to notify {device_id}: not a victim device")
        async with self._lock:
            try:
                client = await self._connected()
                await asyncio.wait_for(client.publish(self.topic(device_id), body, qos=1), self.timeout_s)
            except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
                await self._drop()
                raise DeliveryError(f"mqtt publish to {device_id} failed: {exc}") from exc

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
