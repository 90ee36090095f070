"""Group commit, on the real PostgreSQL and Redis (no MQTT): an idle pipeline stores a message at once,
not after ``batch_wait``; while a batch is being stored, the next one collects until that batch has
committed, it is full, or its oldest message has waited ``batch_wait``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from emon.deadletters import DeadLetterRow
from emon.fix import DeviceEvent, Fix
from emon.ingest.pipeline import Pipeline
from emon.storage.live import LiveState
from emon.storage.records import Records
from tests.harness import eventually
from tests.ingest.test_inflight import HeldConsumer
from tests.storage.helpers import Store, message, open_store

pytestmark = pytest.mark.integration


class HeldRecords(Records):
    """The real records; the first transaction is held until ``release`` is set. Records the number of
    fixes of every transaction, in call order."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.db)
        self.sizes: list[int] = []
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def store_batch(
        self, fixes: Sequence[Fix], events: Sequence[DeviceEvent], dead: Sequence[DeadLetterRow]
    ) -> tuple[list[Fix], list[DeviceEvent], datetime | None]:
        self.sizes.append(len(fixes))
        if len(self.sizes) == 1:
            self.holding.set()
            await self.release.wait()
        return await super().store_batch(fixes, events, dead)


def fix(seq: int) -> bytes:
    ts = datetime.now(UTC) - timedelta(seconds=100 - seq / 10)
    return json.dumps({"ts": ts.isoformat(), "lat": 52.0, "lon": 5.0, "acc": 5, "seq": seq}).encode()


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    async with open_store() as s:
        yield s


async def running(pipeline: Pipeline) -> asyncio.Task[None]:
    return asyncio.create_task(pipeline.run())


async def stop(runner: asyncio.Task[None]) -> None:
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def stored(store: Store, n: int) -> bool:
    return await store.scalar("SELECT count(*) FROM fixes") == n


async def test_an_idle_pipeline_stores_a_message_at_once_not_after_batch_wait(store: Store) -> None:
    pipeline = store.pipeline(batch_wait_s=5.0)
    runner = await running(pipeline)
    try:
        pipeline.submit("emon/v1/fix/tag-1", fix(1))
        await eventually(lambda: stored(store, 1), within=2.0, interval=0.01)
        # Idle again once committed: the next message does not wait either.
        pipeline.submit("emon/v1/fix/tag-1", fix(2))
        await eventually(lambda: stored(store, 2), within=2.0, interval=0.01)
    finally:
        await stop(runner)


async def test_messages_received_while_a_batch_is_stored_are_taken_as_one_batch(store: Store) -> None:
    records = HeldRecords(store)
    pipeline = Pipeline(records, store.live, store.registry, batch_wait_s=5.0)
    runner = await running(pipeline)
    try:
        pipeline.submit("emon/v1/fix/tag-1", fix(1))
        await asyncio.wait_for(records.holding.wait(), 3.0)  # taken at once, and held
        for seq in range(2, 7):  # trickling in: a pipeline taking every message at once would store 5 batches
            pipeline.submit("emon/v1/fix/tag-1", fix(seq))
            await asyncio.sleep(0.05)
        records.release.set()
        await eventually(lambda: stored(store, 6), within=3.0, interval=0.01)  # not after batch_wait (5 s)
    finally:
        await stop(runner)
    assert records.sizes == [1, 5]


async def test_messages_received_while_the_consumers_are_behind_are_taken_as_one_batch(store: Store) -> None:
    # Stored batches wait for the consumers, which take them in order: a batch taken while one is already
    # waiting for them would be evaluated no sooner, and each batch costs the consumers a transaction.
    pipeline = store.pipeline(batch_wait_s=5.0)
    consumer = HeldConsumer()
    pipeline.consumers.append(consumer)
    runner = await running(pipeline)
    try:
        pipeline.submit("emon/v1/fix/tag-1", fix(1))
        await asyncio.wait_for(consumer.holding.wait(), 3.0)
        for seq in range(2, 7):  # the first of them is taken at once (the consumers have every batch before)
            pipeline.submit("emon/v1/fix/tag-1", fix(seq))
            await asyncio.sleep(0.05)
        await eventually(lambda: _at_least(store, 2), within=3.0, interval=0.01)
        consumer.release.set()
        await eventually(lambda: _consumed(consumer, 6), within=3.0, interval=0.01)  # not after batch_wait
    finally:
        await stop(runner)
    assert consumer.sizes() == [1, 1, 4]


async def _at_least(store: Store, n: int) -> bool:
    count = await store.scalar("SELECT count(*) FROM fixes")
    return isinstance(count, int) and count >= n


async def _consumed(consumer: HeldConsumer, n: int) -> bool:
    return sum(consumer.sizes()) == n


async def test_a_collecting_batch_is_taken_when_full_while_the_one_before_it_is_stored(store: Store) -> None:
    records = HeldRecords(store)
    pipeline = Pipeline(records, store.live, store.registry, batch_wait_s=5.0, batch_max=3)
    runner = await running(pipeline)
    try:
        pipeline.submit("emon/v1/fix/tag-1", fix(1))
        await asyncio.wait_for(records.holding.wait(), 3.0)
        for seq in range(2, 9):
            pipeline.submit("emon/v1/fix/tag-1", fix(seq))
            await asyncio.sleep(0.02)
        await eventually(lambda: _pending_in_queue(pipeline, 1), within=3.0, interval=0.01)
        records.release.set()
        await eventually(lambda: stored(store, 8), within=3.0, interval=0.01)
    finally:
        await stop(runner)
    assert records.sizes == [1, 3, 3, 1]


async def test_batch_wait_bounds_how_long_a_batch_collects_behind_a_slow_store(store: Store) -> None:
    records = HeldRecords(store)
    pipeline = Pipeline(records, store.live, store.registry, batch_wait_s=0.2)
    runner = await running(pipeline)
    try:
        pipeline.submit("emon/v1/fix/tag-1", fix(1))
        await asyncio.wait_for(records.holding.wait(), 3.0)
        pipeline.submit("emon/v1/fix/tag-1", fix(2))
        pipeline.submit("emon/v1/fix/tag-1", fix(3))
        await eventually(
            lambda: _pending_in_queue(pipeline, 0), within=3.0, interval=0.01
        )  # taken: waited 0.2 s
        pipeline.submit("emon/v1/fix/tag-1", fix(4))
        records.release.set()
        await eventually(lambda: stored(store, 4), within=3.0, interval=0.01)
    finally:
        await stop(runner)
    assert records.sizes == [1, 2, 1]


async def _pending_in_queue(pipeline: Pipeline, n: int) -> bool:
    return len(pipeline._queue) == n


class CountingLive(LiveState):
    """The real Redis state, counting the writes a batch costs."""

    def __init__(self, live: LiveState) -> None:
        super().__init__(live.client, live.latest_key.removesuffix(":latest"))
        self.updates = 0

    async def update(self, fixes: Collection[Fix], seen: Mapping[str, datetime]) -> None:
        self.updates += 1
        await super().update(fixes, seen)


async def test_a_batch_updates_latest_fixes_and_last_seen_in_redis_in_one_write(store: Store) -> None:
    live = CountingLive(store.live)
    pipeline = Pipeline(store.records, live, store.registry)
    stored_batch = await pipeline.store([message("emon/v1/fix/tag-1", fix(1))])
    assert [f.seq for f in stored_batch.fixes] == [1]
    assert live.updates == 1  # one round trip between the commit and the consumers, not two
    assert (await live.latest("tag-1") or {}).get("seq") == 1  # both written all the same
    assert "tag-1" in await live.last_seen()
