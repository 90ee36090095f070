"""The MQTT edge: a persistent QoS 1 session that hands every message to the pipeline.

``clean_session=False`` with a fixed client id: the broker keeps our subscriptions and queues QoS 1
messages while emon is down, so fixes published meanwhile arrive when it comes back. Reconnects
use capped exponential backoff with jitter.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import aiomqtt

from emon.ingest.topics import SUBSCRIPTIONS

log = logging.getLogger(__name__)

Sink = Callable[[str, bytes], None]


class MqttIngest:
    def __init__(self, host: str, port: int, client_id: str, prefix: str, sink: Sink) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.prefix = prefix
        self.sink = sink
        self.connected = asyncio.Event()

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
                    clean_session=False,
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
