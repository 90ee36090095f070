"""The ingest pipeline: raw messages in, batched decode → store → live state → consumers.

The MQTT receive loop only appends raw bytes to a queue (microseconds); everything else happens
here, one batch at a time: one COPY to PostgreSQL, one pipelined Redis round trip. A failing store
is retried with capped backoff and the batch is kept: a valid fix is never dropped.

QoS 1 messages carry an ack token; the batch's tokens are acknowledged to the broker right after
its rows (fixes, events, dead letters) are committed to PostgreSQL, and before Redis, evaluation
and alerting, whose failures are isolated and must not hold acknowledgements. A crash before the
commit leaves the messages unacknowledged: the broker redelivers them (at least once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from emon import metrics
from emon.backoff import Backoff
from emon.errors import EmonError
from emon.fix import DeadLetter, DeviceEvent, Fix
from emon.ingest.decode import Decoded, Limits, decode_event, decode_fixes, decode_owntracks
from emon.ingest.mqtt import AckToken, ack_all
from emon.ingest.topics import DeviceRegistry, MessageKind, route
from emon.storage.live import LiveState
from emon.storage.records import Records

log = logging.getLogger(__name__)


class RawMessage(NamedTuple):
    """One received message. A named tuple: built per message, it is the cheapest immutable record."""

    topic: str
    payload: bytes
    received_at: float  # time.time() at receipt
    received_mono: float  # time.monotonic() at receipt
    ack: AckToken | None = None  # acknowledge once stored (None: QoS 0 or acknowledged on receipt)


class BatchConsumer(Protocol):
    """Something that acts on newly stored fixes and events (evaluation, alerting), batch by batch in
    the order they were stored. ``stored_at`` is PostgreSQL's clock just after the batch committed."""

    async def consume(
        self,
        fixes: Sequence[Fix],
        events: Sequence[DeviceEvent],
        now: datetime,
        received_mono: float,
        stored_at: datetime | None = None,
    ) -> None: ...


class Stored(NamedTuple):
    """A batch that is committed (and acknowledged), waiting to be handed to the consumers."""

    fixes: list[Fix]
    events: list[DeviceEvent]
    acks: list[tuple[str, bytes]]  # victim devices' acknowledgements of warnings
    now: datetime
    received_mono: float
    stored_at: datetime


AckHandler = Callable[[str, bytes, datetime], Awaitable[None]]


class Pipeline:
    def __init__(
        self,
        records: Records,
        live: LiveState,
        registry: DeviceRegistry,
        *,
        prefix: str = "",
        limits: Limits | None = None,
        batch_max: int = 1000,
        batch_wait_s: float = 0.02,
    ) -> None:
        self.records = records
        self.live = live
        self.registry = registry
        self.prefix = prefix
        self.limits = limits or Limits()
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.consumers: list[BatchConsumer] = []
        self.ack_handler: AckHandler | None = None
        self._queue: deque[RawMessage] = deque()
        self._wakeup = asyncio.Event()

    def submit(self, topic: str, payload: bytes, ack: AckToken | None = None) -> None:
        """Called by the receive loop for every message; never blocks, never raises.

        ``ack`` is acknowledged once the message's batch is committed to PostgreSQL.
        """
        # The queue-depth gauge is updated per batch in run(), not here: a gauge set costs ~1 µs
        # (a lock), a third of this function at 10,000 messages/s.
        self._queue.append(RawMessage(topic, payload, time.time(), time.monotonic(), ack))
        self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        """Two stages: storing batch N+1 overlaps with evaluating and alerting batch N (their database
        round trips are the pipeline's latency); consumers still see batches in storing order."""
        handoff: asyncio.Queue[Stored] = asyncio.Queue(maxsize=2)
        consumer = asyncio.create_task(self._consume_loop(handoff), name="ingest-consumers")
        try:
            while True:
                if not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                if len(self._queue) < self.batch_max:
                    await asyncio.sleep(self.batch_wait_s)
                metrics.QUEUE_DEPTH.set(len(self._queue))
                batch = [self._queue.popleft() for _ in range(min(self.batch_max, len(self._queue)))]
                metrics.QUEUE_DEPTH.set(len(self._queue))
                await handoff.put(await self.store(batch))
                if consumer.done():
                    consumer.result()  # a consumer loop that died takes the pipeline down loudly
        finally:
            consumer.cancel()

    async def _consume_loop(self, handoff: asyncio.Queue[Stored]) -> None:
        while True:
            await self.hand_on(await handoff.get())

    async def process(self, batch: list[RawMessage]) -> None:
        """Store one batch and hand it on (both stages, one after the other)."""
        await self.hand_on(await self.store(batch))

    async def store(self, batch: list[RawMessage]) -> Stored:
        """Decode and store one batch (retrying storage until it succeeds), then acknowledge it."""
        now = datetime.now(UTC)
        decoded, acks = self.decode(batch, now)
        tokens = [m.ack for m in batch if m.ack is not None]
        stored_fixes, stored_events, stored_at = await self._store(decoded, tokens)
        done = datetime.now(UTC)
        for f in stored_fixes:
            metrics.INGEST_LAG.observe(max(0.0, (done - f.ts).total_seconds()))
        first = batch[0].received_mono if batch else time.monotonic()
        if batch:
            metrics.RECEIVE_TO_STORED.observe(time.monotonic() - first)
        return Stored(stored_fixes, stored_events, acks, now, first, stored_at)

    async def hand_on(self, stored: Stored) -> None:
        """Give a stored batch to the ack handler and the consumers; their failures are isolated."""
        for device_id, payload in stored.acks:
            if self.ack_handler is not None:
                await _isolated(self.ack_handler(device_id, payload, stored.now), "ack handler")
        if stored.fixes or stored.events:
            for consumer in self.consumers:
                await _isolated(
                    consumer.consume(stored.fixes, stored.events, stored.now, stored.received_mono, stored.stored_at),
                    type(consumer).__name__,
                )

    def decode(self, batch: list[RawMessage], now: datetime) -> tuple[Decoded, list[tuple[str, bytes]]]:
        out = Decoded()
        acks: list[tuple[str, bytes]] = []
        # Counted per batch, not per message: a labelled counter costs a dict lookup and a lock.
        kinds: dict[MessageKind, int] = {}
        fixes_received = 0
        registry, prefix, limits = self.registry, self.prefix, self.limits
        for msg in batch:
            r = route(msg.topic, prefix, registry)
            if r is None:
                self._dead(out, DeadLetter(msg.topic, "unknown_topic", "", msg.payload))
                continue
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
            if r.device_id is None or r.device_id not in registry:
                self._dead(
                    out,
                    DeadLetter(
                        msg.topic, "unknown_device", r.device_id or r.topic_key, msg.payload, r.device_id
                    ),
                )
                continue
            if r.kind is MessageKind.ACK:
                acks.append((r.device_id, msg.payload))
                continue
            if r.kind is MessageKind.FIX:
                part = decode_fixes(msg.topic, r.device_id, msg.payload, now, limits)
            elif r.kind is MessageKind.EVENT:
                part = decode_event(msg.topic, r.device_id, msg.payload, now, limits)
            else:
                part = decode_owntracks(msg.topic, r.device_id, msg.payload, now, limits)
            if r.kind is not MessageKind.EVENT:
                fixes_received += len(part.fixes) + len(part.dead)
            out.seen[r.device_id] = now
            out.fixes.extend(part.fixes)
            out.events.extend(part.events)
            for d in part.dead:
                self._dead(out, d)
        for kind, n in kinds.items():
            metrics.MESSAGES_RECEIVED.labels(kind.value).inc(n)
        if fixes_received:
            metrics.FIXES_RECEIVED.inc(fixes_received)
        return out, acks

    @staticmethod
    def _dead(out: Decoded, letter: DeadLetter) -> None:
        metrics.REJECTED.labels(letter.reason).inc()
        out.dead.append(letter)

    async def _store(
        self, decoded: Decoded, tokens: list[AckToken]
    ) -> tuple[list[Fix], list[DeviceEvent], datetime]:
        """Store a batch in PostgreSQL (retried until it succeeds), acknowledge it, update Redis."""
        backoff = Backoff(0.1, 10.0)
        # Each step is kept once it has committed: a retry of a later step must not insert the fixes
        # again, or they would come back as "duplicates" and never be evaluated.
        new_fixes: list[Fix] | None = None
        new_events: list[DeviceEvent] | None = None
        while True:
            try:
                await self.records.insert_dead_letters(decoded.dead)
                decoded.dead = []
                if new_fixes is None:
                    new_fixes = await self.records.insert_fixes(decoded.fixes)
                if new_events is None:
                    new_events = await self.records.insert_events(decoded.events)
                stored_at = await self.records.clock()
                break
            except (EmonError, OSError) as exc:
                metrics.STORAGE_ERRORS.labels("postgres").inc()
                log.error("storing batch failed, retrying: %s", exc)
            except Exception as exc:  # a psycopg pool error or the like: never lose the batch
                metrics.STORAGE_ERRORS.labels("postgres").inc()
                log.exception("storing batch failed, retrying: %s", exc)
            await asyncio.sleep(backoff.next_wait())
        # Committed (each insert is its own transaction, all three succeeded): now, and only now,
        # the broker may forget these messages. Redis below is a cache and may fail without harm.
        ack_all(tokens)
        metrics.FIXES_ACCEPTED.inc(len(new_fixes))
        metrics.FIXES_DUPLICATE.inc(len(decoded.fixes) - len(new_fixes))
        for e in new_events:
            metrics.EVENTS_ACCEPTED.labels(e.type.value).inc()
        try:
            await self.live.set_latest(new_fixes)
            await self.live.mark_seen(decoded.seen)
        except Exception as exc:  # Redis is a cache of PostgreSQL: degrade, don't stop
            metrics.STORAGE_ERRORS.labels("redis").inc()
            log.error("updating live state in Redis failed: %s", exc)
        return new_fixes, new_events, stored_at


async def _isolated(awaitable: Awaitable[None], what: str) -> None:
    """Run a consumer; its failure is logged and counted, never stops ingest."""
    try:
        await awaitable
    except Exception:
        metrics.STORAGE_ERRORS.labels(what).inc()
        log.exception("%s failed", what)
