"""Several batches in flight, on the real PostgreSQL and Redis (no MQTT): while the consumers hold one
batch, the next ``inflight`` are stored and acknowledged; the consumers still get every batch in
order, each stamped after the one before it; one batch is one pool checkout."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from emon.deadletters import row_for
from emon.fix import DeadLetter, DeviceEvent, EventType, Fix
from tests.harness import eventually
from tests.ingest.test_mqtt_ingest import RecordingAcker
from tests.storage.helpers import Store, open_store

pytestmark = pytest.mark.integration
BATCH = 10
INFLIGHT = 4
MESSAGES = 120


class HeldConsumer:
    """Records each batch it is handed; holds the first one until released."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[tuple[str, int]], datetime]] = []
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def consume(
        self,
        fixes: Sequence[Fix],
        events: Sequence[DeviceEvent],
        now: datetime,
        received_mono: float,
        stored_at: datetime | None = None,
    ) -> None:
        assert stored_at is not None
        self.batches.append(([(f.device_id, f.seq or 0) for f in fixes], stored_at))
        if len(self.batches) == 1:
            self.holding.set()
            await self.release.wait()

    def sizes(self) -> list[int]:
        """The number of fixes of every batch handed on so far."""
        return [len(keys) for keys, _ in self.batches]


def fix(device: str, seq: int) -> bytes:
    ts = datetime.now(UTC) - timedelta(seconds=100 - seq / 10)
    return json.dumps({"ts": ts.isoformat(), "lat": 52.0, "lon": 5.0, "acc": 5, "seq": seq}).encode()


async def test_batches_are_stored_ahead_of_a_held_consumer_and_handed_on_in_order() -> None:
    async with open_store() as store:
        pipeline = store.pipeline(batch_max=BATCH, batch_wait_s=0.001, inflight=INFLIGHT)
        consumer, acker = HeldConsumer(), RecordingAcker()
        pipeline.consumers.append(consumer)
        sent = [(f"tag-{1 + i % 2}", i) for i in range(MESSAGES)]
        for n, (device, seq) in enumerate(sent, start=1):
            pipeline.submit(f"emon/v1/fix/{device}", fix(device, seq), (acker, n))
        runner = asyncio.create_task(pipeline.run())
        try:
            await asyncio.wait_for(consumer.holding.wait(), 10)
            # The first batch is with the consumer; the next INFLIGHT are stored and acknowledged...
            ahead = BATCH * (1 + INFLIGHT)
            await eventually(lambda: _at_least(acker, ahead), within=10)
            await asyncio.sleep(0.2)
            # ... and no more: the rest waits, unacknowledged, in the queue.
            assert len(acker.acked) == ahead and await store.scalar("SELECT count(*) FROM fixes") == ahead
            assert pipeline.pending == MESSAGES - ahead
            consumer.release.set()
            await eventually(lambda: _consumed(consumer, MESSAGES), within=10)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        assert sorted(acker.acked) == list(range(1, MESSAGES + 1))
        assert [key for keys, _ in consumer.batches for key in keys] == sent  # in order, each once
        assert all(len(keys) == BATCH for keys, _ in consumer.batches)
        # Each batch's rows are stamped after the previous batch's ``stored_at`` and by its own: the
        # range (previous, stored_at] is exactly the batch, as the evaluation watermark needs.
        previous = datetime.min.replace(tzinfo=UTC)
        for keys, stored_at in consumer.batches:
            assert stored_at > previous
            rows = await _keys_stored_between(store, previous, stored_at)
            assert rows == sorted(keys)
            previous = stored_at


async def test_a_batch_of_fixes_events_and_dead_letters_is_one_checkout_stamped_by_its_rows() -> None:
    async with open_store() as store:
        now = datetime.now(UTC).replace(microsecond=0)
        fixes = [Fix("tag-1", now - timedelta(seconds=s), 52.0, 5.0, 5.0, seq=s) for s in range(5)]
        fixes.append(fixes[0])  # a duplicate within the batch: stored and returned once
        events = [DeviceEvent("tag-2", now, EventType.TAMPER, {"n": 1})] * 2
        dead = [
            row_for(
                "emon/v1/fix/ghost", b"x", [DeadLetter("emon/v1/fix/ghost", "unknown_device", "", b"x")], 64
            )
        ]
        before = store.db.pool.get_stats().get("requests_num", 0)
        new_fixes, new_events, stored_at = await store.records.store_batch(fixes, events, dead)
        assert store.db.pool.get_stats().get("requests_num", 0) - before == 1
        assert new_fixes == fixes[:5] and new_events == events[:1]
        latest = await store.scalar(
            "SELECT greatest((SELECT max(received_at) FROM fixes), (SELECT max(received_at) FROM device_events))"
        )
        assert stored_at == latest  # the storing time of its own last row, not a later clock read
        assert await store.scalar("SELECT count(*) FROM dead_letters") == 1
        again = await store.records.store_batch(fixes, events, [])
        assert again == ([], [], None)  # all duplicates: nothing new, no storing time


async def _at_least(acker: RecordingAcker, n: int) -> bool:
    return len(acker.acked) >= n


async def _consumed(consumer: HeldConsumer, n: int) -> bool:
    return sum(len(keys) for keys, _ in consumer.batches) >= n


async def _keys_stored_between(store: Store, after: datetime, through: datetime) -> list[tuple[str, int]]:
    async with store.db.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT device_id, seq FROM fixes WHERE received_at > %s AND received_at <= %s ORDER BY device_id, seq",
            (after, through),
        )
        return [(str(d), int(s)) for d, s in await cur.fetchall()]


async def test_fixes_with_int_and_float_numbers_in_one_batch_are_stored() -> None:
    # Binary arrays cannot mix ints and floats: a Fix built outside the decoder (an int accuracy) must not
    # turn a whole batch into a content refusal.
    async with open_store() as store:
        now = datetime.now(UTC).replace(microsecond=0)
        fixes = [
            Fix("tag-1", now, 52, 5, 5, seq=1, batt=80, speed_mps=0, heading_deg=90),
            Fix("tag-1", now, 52.5, 5.5, 5.7, seq=2, batt=79.5, speed_mps=1.5, heading_deg=90.5),
        ]
        new_fixes, _, _ = await store.records.store_batch(fixes, [], [])
        assert new_fixes == fixes
        assert await store.scalar("SELECT sum(acc_m) FROM fixes") == 10.7
