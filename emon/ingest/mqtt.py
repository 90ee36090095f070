"""The MQTT edge: a persistent QoS 1 session that hands every message to the pipeline.

A persistent session with a fixed client id: the broker keeps our subscriptions and queues QoS 1
messages while emon is down, so fixes published meanwhile arrive when it comes back. Reconnects
use capped exponential backoff with jitter.

MQTT 5, so that we can announce a large *Receive Maximum*: with MQTT 3.1.1 Mosquitto keeps at most
``max_inflight_messages`` (default 20) unacknowledged QoS 1 messages in flight to us and queues at
most ``max_queued_messages`` (default 1000) behind them; beyond that it **drops** messages for an
online client. At 20,000 fixes/s a 50 ms pause of the event loop was enough to lose fixes, and the
20-message window capped receipt at about 1/RTT × 20. MQTT 5 with ``clean_start=False`` and a
session that never expires keeps the persistent-session behaviour of ``clean_session=False``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from emon.ingest.topics import SUBSCRIPTIONS

log = logging.getLogger(__name__)

Sink = Callable[[str, bytes], None]

RECEIVE_MAXIMUM = 65_535  # QoS 1 messages the broker may have in flight to us (the MQTT 5 maximum)
SESSION_NEVER_EXPIRES = 0xFFFFFFFF


def connect_properties() -> Properties:
    """CONNECT properties of a persistent, high-throughput MQTT 5 subscriber session."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    return props


class MqttIngest:
    def __init__(self, host: str, port: int, client_id: str, prefix: str, sink: Sink, protocol: str = "5") -> None:
        self.protocol = protocol
        self.host = host
        self.port = port
        self.client_id = client_id
        self.prefix = prefix
        self.sink = sink
        self.connected = asyncio.Event()

    def _session_options(self) -> dict[str, Any]:
        if self.protocol == "3.1.1":  # e.g. the embedded demo broker, which speaks no MQTT 5
            return {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": False}
        return {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": False, "properties": connect_properties()}

    def topics(self) -> list[str]:
        return [f"{self.prefix}/{t}" if self.prefix else t for t in SUBSCRIPTIONS]

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self.client_id,
                    **self._session_options(),
                    keepalive=30,
                    max_queued_incoming_messages=0,
                ) as client:
                    for topic in self.topics():
                        await client.subscribe(topic, qos=1)
                    self.connected.set()
                    delay = 0.5
                    log.info("MQTT connected to %s:%s as %s", self.host, self.port, self.client_id)
                    async for message in client.messages:
                        payload = message.payload
                        raw = payload if isinstance(payload, bytes) else str(payload).encode()
                        self.sink(message.topic.value, raw)
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                wait = delay * (0.5 + random.random())
                log.warning("MQTT connection lost (%s); reconnecting in %.1fs", exc, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, 30.0)
