"""The ingest subscriber: a persistent QoS 1 session whose messages are acknowledged once stored.

A persistent session with a fixed client id: the broker keeps our subscriptions and queues QoS 1
messages while emon is down, so fixes published meanwhile arrive when it comes back. The MQTT rules
(handshake, session present → resubscribe, keepalive, reconnect backoff) are in
:mod:`emon.mqtt.protocol`; this module only says what ingest subscribes to and how it acknowledges.

**At least once, end to end (MQTT 5).** Every QoS 1 message reaches the sink with an
:data:`AckToken`; the pipeline calls :func:`ack_all` once the batch holding the message is
committed to PostgreSQL (a dead letter counts as stored). Until then the message is unacknowledged
and the broker redelivers it on the resumed session if emon crashes or the connection drops.
Redeliveries are harmless: fixes are deduplicated on (device, ts, seq). A token from an earlier
connection acknowledges nothing (packet ids are per connection; the broker redelivers anyway).

MQTT 5, so that we can announce a large *Receive Maximum*: with MQTT 3.1.1 Mosquitto keeps at most
``max_inflight_messages`` (default 20) unacknowledged QoS 1 messages in flight to us and queues at
most ``max_queued_messages`` (default 1000) behind them; beyond that it **drops** messages for an
online client. Acknowledging after a commit (tens of milliseconds) with a 20-message window would
cap us at a few hundred messages/s, so with ``protocol="3.1.1"`` — used only for the embedded demo
broker, amqtt, which speaks no MQTT 5 — messages are acknowledged on receipt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from emon.ingest.topics import SUBSCRIPTIONS
from emon.mqtt import wire
from emon.mqtt.client import Acker, AckToken, MqttClient, Sink, ack_all
from emon.mqtt.endpoint import Endpoint
from emon.mqtt.protocol import SessionOptions
from emon.topic import prefixed

if TYPE_CHECKING:
    from emon.settings import Settings

__all__ = ["AckToken", "Acker", "MqttIngest", "Sink", "ack_all"]

KEEPALIVE_S = 30
RECEIVE_MAXIMUM = wire.RECEIVE_MAXIMUM
SESSION_NEVER_EXPIRES = wire.SESSION_NEVER_EXPIRES


class MqttIngest:
    """Subscribes to every device topic (QoS 1) and hands each message to ``sink``.

    ``sink(topic, payload, ack)`` must not block or raise; ``ack`` is an :data:`AckToken` to pass
    to :func:`ack_all` once the message is durably stored, or None (QoS 0, or already acknowledged).
    """

    def __init__(
        self,
        endpoint: Endpoint,
        client_id: str,
        prefix: str,
        sink: Sink,
        protocol: str = "5",
        *,
        keepalive_s: int = KEEPALIVE_S,
    ) -> None:
        if protocol not in ("5", "3.1.1"):
            raise ValueError(f"MQTT protocol must be '5' or '3.1.1', not {protocol!r}")
        self.protocol = protocol
        self.endpoint = endpoint
        self.client_id = client_id
        self.prefix = prefix
        version = wire.V5 if protocol == "5" else wire.V311
        options = SessionOptions(
            client_id=client_id,
            version=version,
            keepalive_s=keepalive_s,
            clean=False,
            session_expiry_s=SESSION_NEVER_EXPIRES,
            subscriptions=tuple((t, 1) for t in self.topics()),
            ack_on_receipt=version == wire.V311,
        )
        self.client = MqttClient(endpoint, options, sink)

    @classmethod
    def from_settings(cls, settings: Settings, sink: Sink) -> MqttIngest:
        return cls(
            Endpoint.from_settings(settings),
            settings.mqtt_client_id,
            settings.mqtt_topic_prefix,
            sink,
            settings.mqtt_protocol,
        )

    @property
    def connected(self) -> asyncio.Event:
        """Set while subscribed and receiving."""
        return self.client.connected

    def topics(self) -> list[str]:
        return [prefixed(self.prefix, t) for t in SUBSCRIPTIONS]

    def ack(self, tokens: Iterable[AckToken]) -> None:
        """Acknowledge stored messages; tokens of an earlier connection are ignored."""
        ack_all(tokens)

    async def run(self) -> None:
        """Connect, subscribe and receive until cancelled; reconnect with capped backoff + jitter."""
        await self.client.run()
