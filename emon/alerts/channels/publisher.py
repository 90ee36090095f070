"""One MQTT publishing session for every channel that publishes to devices (notifications, commands).

emon's own client (:mod:`emon.mqtt.client`): the same stack, TLS and credentials as ingest, on a session of
its own (client id ``{EMON_MQTT_CLIENT_ID}-notify``), started on first use. A publish waits for the
broker's PUBACK; one cut off by a reconnect is resent (DUP) while the caller still waits, and withdrawn
when it gives up — from then on the outbox retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from emon.alerts.channels import DeliveryError
from emon.mqtt import wire
from emon.mqtt.client import MqttClient
from emon.mqtt.endpoint import Endpoint
from emon.mqtt.protocol import SessionOptions

log = logging.getLogger(__name__)

NOTIFY_SESSION_EXPIRY_S = 3600  # the broker forgets our in-flight publishes an hour after we left


class Publisher:
    """A lazily started connection loop around one :class:`MqttClient`; safe to share between channels."""

    def __init__(self, endpoint: Endpoint, client_id: str, *, protocol: str = "5") -> None:
        version = wire.V5 if protocol == "5" else wire.V311
        # MQTT 3.1.1 (the embedded demo broker only) has no session expiry: keep nothing there.
        options = SessionOptions(
            client_id=client_id,
            version=version,
            clean=version == wire.V311,
            session_expiry_s=NOTIFY_SESSION_EXPIRY_S,
        )
        self.endpoint = endpoint
        self.client = MqttClient(endpoint, options)
        self._task: asyncio.Task[None] | None = None

    async def publish(self, topic: str, body: bytes, *, timeout_s: float) -> None:
        """QoS 1, returning once the broker's PUBACK came (at most ``timeout_s`` seconds); a failure raises
        :class:`DeliveryError`."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.client.run(), name="mqtt-notify")
            self._task.add_done_callback(_report_death)
        try:
            await self.client.publish(topic, body, qos=1, timeout_s=timeout_s)
        except (wire.MqttError, ValueError) as exc:
            raise DeliveryError(f"mqtt publish on {topic} failed: {exc}") from exc

    async def close(self) -> None:
        """Stop the connection loop (idempotent: every channel sharing this publisher may call it)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _report_death(task: asyncio.Task[None]) -> None:
    """The connection loop only ends when cancelled; anything else is a bug — say so (the next publish
    starts it again)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("the device-publishing MQTT connection died", exc_info=task.exception())
