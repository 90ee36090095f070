"""The victim's device: an MQTT QoS 1 publish on ``{prefix/}emon/v1/notify/{device_id}``.

Only victim devices are ever addressed (the registry is asked); nothing is ever sent to an
offender's tag. The body is built by :mod:`emon.alerts.messages` and carries no positions.

Transport: :class:`~emon.alerts.channels.publisher.Publisher` (emon's own MQTT client, TLS and
credentials as ingest), shared with device commands. At least once: devices deduplicate on
``notification_id``.
"""

from __future__ import annotations

import uuid

from emon.alerts.channels import DeliveryError
from emon.alerts.channels.publisher import Publisher
from emon.device import DeviceKind, DeviceRegistry
from emon.mqtt.client import MqttClient
from emon.mqtt.endpoint import Endpoint
from emon.topic import prefixed


class VictimChannel:
    """Publishes on the shared :class:`Publisher`; a failed publish raises :class:`DeliveryError`."""

    def __init__(
        self,
        host: str,
        port: int,
        topic_prefix: str,
        registry: DeviceRegistry,
        *,
        client_id: str | None = None,
        timeout_s: float = 10.0,
        endpoint: Endpoint | None = None,
        protocol: str = "5",
        publisher: Publisher | None = None,
    ) -> None:
        self.publisher = publisher or Publisher(
            endpoint or Endpoint(host, port),
            client_id or f"emon-alerts-{uuid.uuid4().hex[:8]}",
            protocol=protocol,
        )
        self.endpoint = self.publisher.endpoint
        self.host = self.endpoint.host
        self.port = self.endpoint.port
        self.prefix = topic_prefix
        self.registry = registry
        self.timeout_s = timeout_s

    @property
    def client(self) -> MqttClient:
        return self.publisher.client

    def topic(self, device_id: str) -> str:
        suffix = f"emon/v1/notify/{device_id}"
        return prefixed(self.prefix, suffix)

    async def send(self, device_id: str, body: bytes) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK (at most ``timeout_s``)."""
        device = self.registry.by_id.get(device_id)
        if device is not None and device.kind is not DeviceKind.VICTIM_DEVICE:
            raise DeliveryError(f"refusing to notify {device_id}: not a victim device")
        await self.publisher.publish(self.topic(device_id), body, timeout_s=self.timeout_s)

    async def close(self) -> None:
        await self.publisher.close()
