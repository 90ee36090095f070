"""The ingest pipeline: raw messages in, batched decode → store → live state → consumers.

The MQTT receive loop only appends raw bytes to a queue (microseconds); everything else happens
here, per batch: one PostgreSQL transaction on one connection, sent as one libpq pipeline, and one
pipelined Redis round trip. A failing store is retried with capped backoff and the batch is kept: a
valid fix is never dropped.

**Several batches in flight** (``inflight``, ``EMON_INGEST_INFLIGHT``): while batch N is evaluated,
batches N+1..N+k are decoded, stored and cached concurrently. Their PostgreSQL transactions take
turns in batch order (each starts once the previous one has committed) and so do their Redis updates:
every row of a batch is stamped after every row of the batches before it, which the evaluation
watermark and the journal's batch ranges rely on (:mod:`emon.evaluation`), and a device's fixes
reach storage, Redis and evaluation in the order received. Decoding, acknowledging and the wait for
the database overlap; evaluation consumes the batches strictly in order.

**Group commit** (``batch_max``, ``batch_wait_s``: ``EMON_BATCH_MAX``, ``EMON_BATCH_WAIT_MS``): a batch
is taken at once when every batch before it has reached the consumers, so on an idle pipeline a fix's
transaction starts as soon as it is received. Otherwise the next batch collects until the batch before
it has been handed to the consumers (stored, and the consumers done with the one before: the batch
could not be stored or evaluated earlier anyway, transactions and evaluation take turns), until it
holds ``batch_max`` messages, or until its oldest message has waited ``batch_wait_s`` — an upper
bound, not a fixed delay. Batches are therefore as large as the load, the commit time and the
consumers make them: one message when idle, ``batch_max`` under overload. Waiting for the consumers,
not only for the commit, matters: every batch costs them a transaction of their own, and batches
taken at every commit (1.6 times as many at 1,000 fixes/s) left the consumers behind.

A bad message costs one dead letter, never the line: decoding refuses hostile input before it reaches
PostgreSQL (:mod:`emon.ingest.decode`), and should PostgreSQL still refuse a batch's *content*
(:class:`~emon.storage.postgres.ContentRefused`), the batch is split in halves until the message that
brought the refused rows is found; it is dead-lettered and the rest stored. Only infrastructure errors
(connection lost, timeout) are retried. Dead letters are one row per message, within a global budget
(:mod:`emon.deadletters`).

QoS 1 messages carry an ack token; the batch's tokens are acknowledged to the broker right after
its rows (fixes, events, dead letters) are committed to PostgreSQL, and before Redis, evaluation
and alerting, whose failures are isolated and must not hold acknowledgements. A crash before the
commit leaves the messages unacknowledged: the broker redelivers them (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, Protocol

import numpy as np

from emon import metrics
from emon.backoff import Backoff
from emon.deadletters import DeadLetterBudget, DeadLetterPolicy, DeadLetterRow, estimated_size, row_for
from emon.device import DeviceRegistry
from emon.fix import DeadLetter, DeviceEvent, Fix
from emon.ingest.decode import (
    Decoded,
    DecodeLimits,
    decode_event,
    decode_owntracks,
    fix_message,
)
from emon.ingest.mqtt import AckToken, ack_all
from emon.ingest.topics import MessageKind, TopicRoute, route
from emon.settings import Settings
from emon.storage.live import LiveState
from emon.storage.postgres import ContentRefused
from emon.storage.records import Records

log = logging.getLogger(__name__)


class RawMessage(NamedTuple):
    """One received message. A named tuple: built per message, it is the cheapest immutable record."""

    topic: str
    payload: bytes
    received_at: float  # time.time() at receipt
    received_mono: float  # time.monotonic() at receipt
    ack: AckToken | None = None  # acknowledge once stored (None: QoS 0 or acknowledged on receipt)


# RawMessage(...) without the named tuple's ``__new__`` (a Python function): 0.3 µs less per message.
_new_raw: Callable[[tuple[str, bytes, float, float, AckToken | None]], RawMessage] = functools.partial(
    tuple.__new__, RawMessage
)


class BatchConsumer(Protocol):
    """Something that acts on newly stored fixes and events (evaluation, alerting), batch by batch in
    the order they were stored. ``stored_at`` is the storing time (PostgreSQL's clock) of the batch's
    last new row: later than every row of this and earlier batches, earlier than every later batch's."""

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


@dataclass(slots=True)
class Part:
    """One message's share of a batch: what it decoded to, and the dead-letter row that records it."""

    msg: RawMessage
    fixes: list[Fix] = field(default_factory=list)
    events: list[DeviceEvent] = field(default_factory=list)
    dead: DeadLetterRow | None = None


@dataclass(slots=True)
class Turn:
    """One batch's place in the ordered storing steps: set once its transaction has committed (or given
    up, on cancellation), and once its Redis update is done; the next batch waits for each."""

    stored: asyncio.Event = field(default_factory=asyncio.Event)
    cached: asyncio.Event = field(default_factory=asyncio.Event)


class Health(NamedTuple):
    """The pipeline's progress as readiness and the metrics report it (seconds, monotonic clock)."""

    waiting: int  # messages received and not yet committed (queued or in batches being stored)
    oldest_wait_s: float  # how long the oldest of them has waited
    since_commit_s: float  # since the last batch was committed (or the pipeline started)
    stalled: bool  # messages have waited longer than the stall limit and nothing was committed since


class Pipeline:
    def __init__(
        self,
        records: Records,
        live: LiveState,
        registry: DeviceRegistry,
        *,
        prefix: str = "",
        limits: DecodeLimits | None = None,
        batch_max: int = 1000,
        batch_wait_s: float = 0.02,
        dead_letters: DeadLetterPolicy | None = None,
        stall_s: float = 30.0,
        inflight: int = 3,
    ) -> None:
        if inflight < 1:
            raise ValueError(f"inflight must be at least 1, not {inflight}")
        self.records = records
        self.live = live
        self.registry = registry
        self.prefix = prefix
        self.limits = limits or DecodeLimits()
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.budget = DeadLetterBudget(dead_letters or DeadLetterPolicy())
        self.stall_s = stall_s
        self.inflight = inflight
        self.consumers: list[BatchConsumer] = []
        self.ack_handler: AckHandler | None = None
        self._queue: deque[RawMessage] = deque()
        self._wakeup = asyncio.Event()
        self._take = asyncio.Event()  # the collecting batch is to be taken now (see _collect)
        self._unhanded = 0  # batches taken and not yet handed to the consumers
        # Batches popped from the queue and not yet committed, oldest first (by identity: a list).
        self._storing: list[list[RawMessage]] = []
        self._last_turn: Turn | None = None  # the latest batch's turn: the next batch waits for it
        self._last_commit = time.monotonic()

    @classmethod
    def from_settings(
        cls, settings: Settings, records: Records, live: LiveState, registry: DeviceRegistry
    ) -> Pipeline:
        s = settings
        return cls(
            records,
            live,
            registry,
            prefix=s.mqtt_topic_prefix,
            limits=DecodeLimits(
                s.max_payload_bytes,
                timedelta(seconds=s.max_future_s),
                max_depth=s.max_json_depth,
                max_elements=s.max_json_elements,
                max_string=s.max_json_string,
            ),
            batch_max=s.batch_max,
            batch_wait_s=s.batch_wait_ms / 1000,
            dead_letters=DeadLetterPolicy(
                payload_bytes=s.dead_letter_payload_bytes,
                rows_per_min=s.dead_letter_rows_per_min,
                bytes_per_min=s.dead_letter_bytes_per_min,
                max_total_bytes=int(s.dead_letter_max_mb * 1024 * 1024),
                retention_s=s.dead_letter_retention_days * 86_400,
            ),
            stall_s=s.stall_s,
            inflight=s.ingest_inflight,
        )

    def submit(self, topic: str, payload: bytes, ack: AckToken | None = None) -> None:
        """Called by the receive loop for every message; never blocks, never raises.

        ``ack`` is acknowledged once the message's batch is committed to PostgreSQL.
        """
        # The queue-depth gauge is updated per batch in run(), not here: a gauge set costs ~1 µs
        # (a lock), a third of this function at 10,000 messages/s.
        queue = self._queue
        if not queue:
            # run() waits for the wake-up only once the queue is empty, and clears it only then: while
            # the queue holds messages it is set already (no call to Event.set per message).
            self._wakeup.set()
        queue.append(_new_raw((topic, payload, time.time(), time.monotonic(), ack)))
        if len(queue) >= self.batch_max:
            self._take.set()

    @property
    def pending(self) -> int:
        """Messages received and not yet committed (queued, or in batches being stored)."""
        return len(self._queue) + sum(len(b) for b in self._storing)

    def health(self, now: float) -> Health:
        """Progress at monotonic time ``now``: stalled when a message has waited more than ``stall_s``
        and no batch was committed in the last ``stall_s`` seconds (a slow but moving pipeline is
        not stalled; a stuck store is, even while the queue is empty)."""
        storing = next((b[0] for b in self._storing if b), None)
        oldest = storing if storing is not None else (self._queue[0] if self._queue else None)
        oldest_wait = 0.0 if oldest is None else max(0.0, now - oldest.received_mono)
        since_commit = max(0.0, now - self._last_commit)
        stalled = oldest_wait > self.stall_s and since_commit > self.stall_s
        return Health(self.pending, oldest_wait, since_commit, stalled)

    async def run(self) -> None:
        """Up to ``inflight`` batches are stored (decoded, committed, acknowledged, cached) while the
        consumers evaluate and alert the batch before them; consumers see batches in storing order."""
        # Bounded: a batch is taken from the queue only while fewer than ``inflight`` batches are being
        # stored or wait for the consumers, so a slow evaluation leaves messages unacknowledged in the
        # queue (readiness sees them) rather than piling up stored batches in memory.
        room = asyncio.Semaphore(self.inflight)
        self._unhanded = 0
        handoff: asyncio.Queue[asyncio.Task[Stored]] = asyncio.Queue()
        consumer = asyncio.create_task(self._consume_loop(handoff, room), name="ingest-consumers")
        n = 0
        try:
            while True:
                if not self._queue:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                await room.acquire()
                await self._collect()
                batch = [self._queue.popleft() for _ in range(min(self.batch_max, len(self._queue)))]
                n += 1
                self._unhanded += 1
                after, turn = self._enter(batch)
                task = asyncio.create_task(self._store_in_turn(batch, after, turn), name=f"ingest-store-{n}")
                # Also when cancelled before it ever ran (shutdown): the batches after it must not wait.
                task.add_done_callback(functools.partial(self._leave, batch, turn))
                handoff.put_nowait(task)
                if consumer.done():
                    consumer.result()  # a consumer loop that died takes the pipeline down loudly
        finally:
            consumer.cancel()
            while not handoff.empty():
                handoff.get_nowait().cancel()

    async def _collect(self) -> None:
        """Return once the queued messages are to be taken as the next batch (group commit).

        At once when every batch taken before has reached the consumers: its transaction starts
        straight away and its evaluation as soon as it is stored. Otherwise the batch could not be
        evaluated earlier anyway (transactions take turns, the consumers take batches in order), so it
        collects until the batch before it has been handed to the consumers, it holds ``batch_max``
        messages, or its oldest message has waited ``batch_wait_s``, whichever comes first."""
        if self._unhanded == 0 or len(self._queue) >= self.batch_max:
            return
        self._take.clear()  # set again when the batch before reaches the consumers, or the queue is full
        delay = self._queue[0].received_mono + self.batch_wait_s - time.monotonic()
        if delay <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._take.wait()

    async def _consume_loop(
        self, handoff: asyncio.Queue[asyncio.Task[Stored]], room: asyncio.Semaphore
    ) -> None:
        while True:
            stored = await (await handoff.get())
            room.release()  # the consumers have it: the next batch may be taken
            self._unhanded -= 1
            if self._unhanded == 0:
                self._take.set()  # the batch collecting behind it is taken now (see _collect)
            await self.hand_on(stored)

    async def process(self, batch: list[RawMessage]) -> None:
        """Store one batch and hand it on (both stages, one after the other)."""
        await self.hand_on(await self.store(batch))

    async def store(self, batch: list[RawMessage]) -> Stored:
        """Decode and store one batch (retrying storage until it succeeds), then acknowledge it.

        Concurrent calls are fine: each batch's transaction starts only after the previous call's has
        committed, and its Redis update after the previous call's (calls take turns in call order)."""
        after, turn = self._enter(batch)
        return await self._store_in_turn(batch, after, turn)

    def _enter(self, batch: list[RawMessage]) -> tuple[Turn | None, Turn]:
        """Give ``batch`` its turn, after the latest batch's. Synchronous, in :meth:`run` itself: the turns
        follow the order in which batches are taken, not the order in which their tasks first run."""
        after, turn = self._last_turn, Turn()
        self._last_turn = turn
        self._storing.append(batch)
        metrics.QUEUE_DEPTH.set(self.pending)
        return after, turn

    def _leave(self, batch: list[RawMessage], turn: Turn, _task: object = None) -> None:
        """``batch`` is stored or given up (idempotent): the batches after it must not wait for it."""
        turn.stored.set()
        turn.cached.set()
        if any(b is batch for b in self._storing):
            self._storing = [b for b in self._storing if b is not batch]
            metrics.QUEUE_DEPTH.set(self.pending)

    async def _store_in_turn(self, batch: list[RawMessage], after: Turn | None, turn: Turn) -> Stored:
        try:
            now = datetime.now(UTC)
            parts, acks, seen = self.decode(batch, now)
            tokens = [m.ack for m in batch if m.ack is not None]
            stored_fixes, stored_events, stored_at = await self._store(parts, seen, tokens, after, turn)
        finally:
            # Whatever happened (cancelled while waiting), the batches after this one must not wait for it.
            self._leave(batch, turn)
        if stored_fixes:
            done = time.time()  # the lag from the fix's own clock: wall time, as ``ts`` is
            stamps = np.array([f.ts.timestamp() for f in stored_fixes])
            metrics.INGEST_LAG.observe_many(np.maximum(done - stamps, 0.0))
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
                    consumer.consume(
                        stored.fixes, stored.events, stored.now, stored.received_mono, stored.stored_at
                    ),
                    type(consumer).__name__,
                )

    def decode(
        self, batch: list[RawMessage], now: datetime
    ) -> tuple[list[Part], list[tuple[str, bytes]], dict[str, datetime]]:
        """Every message → one :class:`Part`; no exception escapes (an unexpected one dead-letters the
        message as ``internal_error``)."""
        parts: list[Part] = []
        acks: list[tuple[str, bytes]] = []
        seen: dict[str, datetime] = {}
        # Counted per batch, not per message: a labelled counter costs a dict lookup and a lock.
        kinds: dict[MessageKind, int] = {}
        valid_fix_messages = 0  # counted apart from ``kinds``: nearly every message, a dict update less
        fixes_received = 0
        prefix, registry = self.prefix, self.registry
        kind: MessageKind | None
        device_id: str | None
        part: Decoded | list[Fix]
        for msg in batch:
            try:
                kind, device_id, part = self._decode_one(msg, route(msg.topic, prefix, registry), now, acks)
            except Exception as exc:  # a bug, not the message's fault: still, one message only
                log.exception("decoding a message on %r failed", msg.topic[:200])
                kind, device_id = None, None
                part = Decoded(
                    dead=[DeadLetter(msg.topic, "internal_error", f"{type(exc).__name__}", msg.payload)]
                )
            if device_id is not None:
                seen[device_id] = now
            if isinstance(part, list):  # a fix message whose every fix is valid: no dead letter to consider
                valid_fix_messages += 1
                fixes_received += len(part)
                parts.append(Part(msg, part, []))
                continue
            if kind is not None:
                kinds[kind] = kinds.get(kind, 0) + 1
                if kind is not MessageKind.EVENT:
                    fixes_received += len(part.fixes) + len(part.dead) + sum(part.more_dead.values())
            parts.append(self._part(msg, part))
        if valid_fix_messages:
            kinds[MessageKind.FIX] = kinds.get(MessageKind.FIX, 0) + valid_fix_messages
        for kind, n in kinds.items():
            metrics.MESSAGES_RECEIVED.labels(kind.value).inc(n)
        if fixes_received:
            metrics.FIXES_RECEIVED.inc(fixes_received)
        return parts, acks, seen

    def _decode_one(
        self, msg: RawMessage, r: TopicRoute | None, now: datetime, acks: list[tuple[str, bytes]]
    ) -> tuple[MessageKind | None, str | None, Decoded | list[Fix]]:
        """One message, routed to ``r``: a fix message whose every fix is valid is just its fixes (the
        common case, decoded once, no :class:`Decoded` built)."""
        if r is None:
            return None, None, Decoded(dead=[DeadLetter(msg.topic, "unknown_topic", "", msg.payload)])
        kind, device_id, topic_key = r  # once, not an attribute lookup per use
        if device_id is None or device_id not in self.registry.by_id:
            letter = DeadLetter(msg.topic, "unknown_device", device_id or topic_key, msg.payload, device_id)
            return kind, None, Decoded(dead=[letter])
        part: Decoded | list[Fix]
        if kind is MessageKind.FIX:  # first: nearly every message is one
            part = fix_message(msg.topic, device_id, msg.payload, now, self.limits)
        elif kind is MessageKind.ACK:
            acks.append((device_id, msg.payload))
            part = Decoded()
        elif kind is MessageKind.EVENT:
            part = decode_event(msg.topic, device_id, msg.payload, now, self.limits)
        else:
            part = decode_owntracks(msg.topic, device_id, msg.payload, now, self.limits)
        return kind, device_id, part

    def _part(self, msg: RawMessage, decoded: Decoded) -> Part:
        part = Part(msg, decoded.fixes, decoded.events)
        if decoded.dead:
            counts = dict(decoded.more_dead)
            for letter in decoded.dead:
                counts[letter.reason] = counts.get(letter.reason, 0) + 1
            for reason, n in counts.items():
                metrics.REJECTED.labels(reason).inc(n)
            if self._admit(msg, decoded.dead[0].reason, time.monotonic()):
                more = sum(decoded.more_dead.values())
                part.dead = row_for(
                    msg.topic, msg.payload, decoded.dead, self.budget.policy.payload_bytes, more
                )
        return part

    def _admit(self, msg: RawMessage, reason: str, now_mono: float) -> bool:
        """True if the dead-letter budget has room for this message's row; otherwise it is only counted."""
        if self.budget.admit(
            estimated_size(msg.topic, msg.payload, self.budget.policy.payload_bytes), now_mono
        ):
            return True
        metrics.DEAD_LETTERS_OVER_BUDGET.labels(reason).inc()
        return False

    async def _store(
        self,
        parts: list[Part],
        seen: dict[str, datetime],
        tokens: list[AckToken],
        after: Turn | None,
        turn: Turn,
    ) -> tuple[list[Fix], list[DeviceEvent], datetime]:
        """Store a batch in PostgreSQL (retried until it succeeds, the message whose content PostgreSQL
        refuses isolated), acknowledge it, update Redis; each step once ``after``'s is done."""
        if after is not None:
            await after.stored.wait()
        backoff = Backoff(
            0.1, 1.0
        )  # ≤ 1.5 s between attempts: storing resumes within 2 s of PostgreSQL's return
        # Parts are removed from ``todo`` once committed: a retry after a partial isolation must not
        # insert their fixes again, or they would come back as "duplicates" and never be evaluated.
        todo = list(parts)
        new_fixes: list[Fix] = []
        new_events: list[DeviceEvent] = []
        stored_at: datetime | None = None
        while todo:
            try:
                stored_at = await self._store_isolating(todo, new_fixes, new_events) or stored_at
                break
            except Exception as exc:  # infrastructure (or a bug): never lose the batch, retry
                metrics.STORAGE_ERRORS.labels("postgres").inc()
                log.error("storing batch failed, retrying: %s", exc)
            await asyncio.sleep(backoff.next_wait())
        self._last_commit = time.monotonic()
        # Committed: now, and only now, the broker may forget these messages. Redis below is a cache
        # and may fail without harm.
        ack_all(tokens)
        turn.stored.set()
        metrics.DEAD_LETTERS_STORED.inc(sum(p.dead is not None for p in parts))
        metrics.FIXES_ACCEPTED.inc(len(new_fixes))
        metrics.FIXES_DUPLICATE.inc(sum(len(p.fixes) for p in parts) - len(new_fixes))
        for e in new_events:
            metrics.EVENTS_ACCEPTED.labels(e.type.value).inc()
        if after is not None:
            await after.cached.wait()  # last-seen times must not go back: Redis in batch order too
        try:  # latest fixes and last-heard times in one round trip
            await self.live.update(new_fixes, seen)
        except Exception as exc:  # Redis is a cache of PostgreSQL: degrade, don't stop
            metrics.STORAGE_ERRORS.labels("redis").inc()
            log.error("updating live state in Redis failed: %s", exc)
        turn.cached.set()
        if stored_at is None:  # nothing new stored: no consumer is handed this batch
            stored_at = datetime.now(UTC)
        return new_fixes, new_events, stored_at

    async def _store_isolating(
        self, todo: list[Part], new_fixes: list[Fix], new_events: list[DeviceEvent]
    ) -> datetime | None:
        """Store ``todo`` in one transaction; if PostgreSQL refuses its content, halve it until the
        refused message is alone, dead-letter that message and store the others. Committed parts
        are removed from ``todo`` and their new rows appended, so an infrastructure error part way
        through loses nothing and repeats nothing. Returns the storing time of the last new row (None
        when nothing new was stored)."""
        stack = [list(todo)]
        stored_at: datetime | None = None
        while stack:
            group = stack.pop()
            try:
                fixes, events, at = await self.records.store_batch(
                    [f for p in group for f in p.fixes],
                    [e for p in group for e in p.events],
                    [p.dead for p in group if p.dead is not None],
                )
            except ContentRefused as exc:
                metrics.STORAGE_REFUSED.inc()
                if len(group) > 1:
                    half = len(group) // 2
                    stack.extend([group[half:], group[:half]])  # first half first: keeps the order
                    continue
                log.warning("PostgreSQL refused a message on %r: %s", group[0].msg.topic[:200], exc)
                self._refuse(group[0], str(exc))
                stack.append(group)  # once more, as a dead letter only
                continue
            new_fixes.extend(fixes)
            new_events.extend(events)
            stored_at = at or stored_at
            done = {id(p) for p in group}
            todo[:] = [p for p in todo if id(p) not in done]
        return stored_at

    def _refuse(self, part: Part, why: str) -> None:
        """Turn a message whose content PostgreSQL refused into a dead letter (its rows dropped)."""
        if part.dead is not None and part.dead.reason == "storage_refused":
            # Even its dead letter was refused (cannot happen: its texts are cleaned): count it only.
            part.dead = None
            metrics.DEAD_LETTERS_OVER_BUDGET.labels("storage_refused").inc()
            return
        device = (
            part.fixes[0].device_id if part.fixes else (part.events[0].device_id if part.events else None)
        )
        part.fixes, part.events = [], []
        letter = DeadLetter(part.msg.topic, "storage_refused", why[:500], part.msg.payload, device)
        metrics.REJECTED.labels("storage_refused").inc()
        admitted = self._admit(part.msg, "storage_refused", time.monotonic())
        part.dead = (
            row_for(part.msg.topic, part.msg.payload, [letter], self.budget.policy.payload_bytes)
            if admitted
            else None
        )

    async def maintain_dead_letters(self, interval_s: float = 60.0) -> None:
        """Every ``interval_s``: delete dead letters past retention, and measure the table for the
        budget's total-size cap."""
        while True:
            try:
                cutoff = datetime.now(UTC) - timedelta(seconds=self.budget.policy.retention_s)
                deleted = await self.records.prune_dead_letters(cutoff)
                rows, size = await self.records.dead_letter_totals()
                self.budget.total_bytes = size
                metrics.DEAD_LETTER_ROWS.set(rows)
                metrics.DEAD_LETTER_BYTES.set(size)
                if deleted:
                    log.info("deleted %d dead letters older than %s", deleted, cutoff.isoformat())
            except Exception as exc:
                metrics.STORAGE_ERRORS.labels("postgres").inc()
                log.error("dead-letter maintenance failed (retried): %s", exc)
            await asyncio.sleep(interval_s)


async def _isolated(awaitable: Awaitable[None], what: str) -> None:
    """Run a consumer; its failure is logged and counted, never stops ingest."""
    try:
        await awaitable
    except Exception:
        metrics.STORAGE_ERRORS.labels(what).inc()
        log.exception("%s failed", what)
