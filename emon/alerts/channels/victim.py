"""The victim's device: an MQTT QoS 1 publish on ``{prefix/}emon/v1/notify/{device_id}``.

Only victim devices are ever addressed (the registry is asked); nothing is ever sent to an
offender's tag. The body is built by :mod:`emon.alerts.messages` and carries no positions.

Transport: emon's own MQTT client (:mod:`emon.mqtt.client`), the same stack, TLS and credentials as
ingest, on a session of its own (client id ``{EMON_MQTT_CLIENT_ID}-notify``). A send waits for the
broker's PUBACK; a publish cut off by a reconnect is resent (DUP) while the send still waits, and
withdrawn when it gives up — from then on the outbox retries it. At least once: devices deduplicate
on ``notification_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from emon.alerts.channels import DeliveryError
from emon.device import DeviceKind, DeviceRegistry
from emon.mqtt import wire
from emon.mqtt.client import MqttClient
from emon.mqtt.endpoint import Endpoint
from emon.mqtt.protocol import SessionOptions
from emon.topic import prefixed

log = logging.getLogger(__name__)

NOTIFY_SESSION_EXPIRY_S = 3600  # the broker forgets our in-flight publishes an hour after we left


class VictimChannel:
    """One long-lived MQTT connection, started on first use; a failed publish raises :class:`DeliveryError`."""

    def __init__(self, host: str, port: int, topic_prefix: str, registry: DeviceRegistry, *,
                 client_id: str | None = None, timeout_s: float = 10.0, endpoint: Endpoint | None = None,
                 protocol: str = "5") -> None:
        self.endpoint = endpoint or Endpoint(host, port)
        self.host = self.endpoint.host
        self.port = self.endpoint.port
        self.prefix = topic_prefix
        self.registry = registry
        self.client_id = client_id or f"emon-alerts-{uuid.uuid4().hex[:8]}"
        self.timeout_s = timeout_s
        version = wire.V5 if protocol == "5" else wire.V311
        # MQTT 3.1.1 (the embedded demo broker only) has no session expiry: keep nothing there.
        options = SessionOptions(
            client_id=self.client_id, version=version, clean=version == wire.V311,
            session_expiry_s=NOTIFY_SESSION_EXPIRY_S,
        )
        self.client = MqttClient(self.endpoint, options)
        self._task: asyncio.Task[None] | None = None

    def topic(self, device_id: str) -> str:
        suffix = f"emon/v1/notify/{device_id}"
        return prefixed(self.prefix, suffix)

    async def send(self, device_id: str, body: bytes) -> None:
        """Publish with QoS 1 and wait for the broker's PUBACK (at most ``timeout_s``)."""
        device = self.registry.by_id.get(device_id)
        if device is not None and device.kind is not DeviceKind.VICTIM_DEVICE:
            raise DeliveryError(f"refusing to notify {device_id}: not a victim device")
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.client.run(), name="mqtt-notify")
            self._task.add_done_callback(_report_death)
        try:
            await self.client.publish(self.topic(device_id), body, qos=1, timeout_s=self.timeout_s)
        except (wire.MqttError, ValueError) as exc:
            raise DeliveryError(f"mqtt publish to {device_id} failed: {exc}") from exc

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _report_death(task: asyncio.Task[None]) -> None:
    """The connection loop only ends when cancelled; anything else is a bug — say so (the next send
    starts it again)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the notification MQTT connection died", exc_info=task.exception())
