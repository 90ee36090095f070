"""On the real PostgreSQL: a message whose content is refused costs one dead letter, never the batch;
poison that decoding catches never reaches PostgreSQL; dead letters stay within their budget."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from emon import metrics
from emon.deadletters import DeadLetterPolicy
from emon.storage.postgres import ContentRefused
from tests.harness import eventually
from tests.storage.helpers import Store, message

pytestmark = pytest.mark.integration


def fix(seq: int, device: str = "tag-1") -> bytes:
    ts = datetime.now(UTC) - timedelta(seconds=60 - seq / 100)
    return json.dumps(
        {"ts": ts.isoformat(), "lat": 52.0, "lon": 5.0 + seq / 10_000, "acc": 5, "seq": seq}
    ).encode()


def event(i: int, **data: object) -> bytes:
    ts = datetime.now(UTC) - timedelta(seconds=120 - i)
    return json.dumps({"ts": ts.isoformat(), "type": "tamper", **data}).encode()


def sha(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()


class Acker:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, packet_ids: list[int]) -> None:
        self.acked.extend(packet_ids)


async def test_refused_content_is_found_by_halving_and_only_that_message_is_dead_lettered(
    store: Store,
) -> None:
    # A refusal the decoder cannot know about (here a CHECK constraint): PostgreSQL's word decides.
    await store.execute("ALTER TABLE device_events ADD CONSTRAINT no_poison CHECK (NOT data ? 'poison')")
    pipeline = store.pipeline()
    acker = Acker()
    batch = [message("emon/v1/fix/tag-1", fix(i)) for i in range(30)]
    batch += [message("emon/v1/event/tag-1", event(i)) for i in range(9)]
    poison = event(50, poison=True)
    batch.insert(17, message("emon/v1/event/tag-1", poison))
    batch = [m._replace(ack=(acker, n)) for n, m in enumerate(batch, start=1)]
    refused_before = metrics.STORAGE_REFUSED._value.get()

    stored = await pipeline.store(batch)

    assert (len(stored.fixes), len(stored.events)) == (30, 9)
    assert await store.scalar("SELECT count(*) FROM fixes") == 30
    assert await store.scalar("SELECT count(*) FROM device_events") == 9
    (dead,) = await store.records.dead_letters()
    assert (dead.reason, dead.device_id, dead.payload_sha256) == ("storage_refused", "tag-1", sha(poison))
    assert "no_poison" in dead.detail
    assert sorted(acker.acked) == list(range(1, 41))  # every message acknowledged, once, after commit
    # Halving: about two transactions per level, not one per message.
    assert store.records.calls <= 2 * math.ceil(math.log2(40)) + 2
    assert metrics.STORAGE_REFUSED._value.get() - refused_before <= 2 * math.ceil(math.log2(40))


async def test_the_issues_poison_never_reaches_postgresql(store: Store) -> None:
    pipeline = store.pipeline()
    deep = b"[" * 3000 + b"]" * 3000
    nul = json.dumps(
        {"type": "battery_low", "ts": datetime.now(UTC).isoformat(), "note": "a\u0000b"}
    ).encode()
    batch = [
        message("emon/v1/fix/tag-1", deep),
        message("emon/v1/event/tag-1", nul),
        message("emon/v1/fix/\u0000tag", fix(1)),  # a NUL in the topic itself
        message("emon/v1/fix/tag-1", fix(2)),
    ]
    stored = await pipeline.store(batch)
    assert store.records.calls == 1  # one transaction: nothing was refused, nothing bisected
    assert [f.seq for f in stored.fixes] == [2]
    assert [e.data for e in stored.events] == [{"invalid_data": "bad_text"}]  # the event is kept
    rows = {d.payload_sha256: d for d in await store.records.dead_letters()}
    assert rows[sha(deep)].reason == "too_deep"
    assert rows[sha(nul)].reason == "bad_text"
    assert len(rows) == 3


async def test_direct_refusals_are_translated_as_content(store: Store) -> None:
    from emon.fix import DeviceEvent, EventType

    bad = DeviceEvent("tag-1", datetime.now(UTC), EventType.TAMPER, {"note": "a\u0000b"})
    with pytest.raises(ContentRefused):
        await store.records.store_batch([], [bad], [])
    assert await store.scalar("SELECT count(*) FROM device_events") == 0


async def test_one_row_per_message_and_a_global_budget(store: Store) -> None:
    pipeline = store.pipeline(dead_letters=DeadLetterPolicy(rows_per_min=5, payload_bytes=100))
    over_before = metrics.DEAD_LETTERS_OVER_BUDGET.labels("unknown_device")._value.get()
    bad_batch = json.dumps([{"lat": 99}] * 6_000).encode()
    batch = [message("emon/v1/fix/tag-1", bad_batch)]
    # Random device ids and topics: each one new, all drawing on the same budget.
    batch += [message(f"emon/v1/fix/rand-{i}", fix(i)) for i in range(50)]
    batch.append(message("emon/v1/fix/tag-1", fix(99)))
    stored = await pipeline.store(batch)
    assert [f.seq for f in stored.fixes] == [99]
    assert await store.scalar("SELECT count(*) FROM dead_letters") == 5
    first = (await store.records.dead_letters())[-1]
    assert (first.bad_elements, len(first.payload), first.payload_len) == (6_000, 100, len(bad_batch))
    assert metrics.DEAD_LETTERS_OVER_BUDGET.labels("unknown_device")._value.get() - over_before == 46


async def test_retention_and_the_measured_total_cap(store: Store) -> None:
    pipeline = store.pipeline(dead_letters=DeadLetterPolicy(retention_s=3_600, max_total_bytes=1_000))
    await pipeline.store([message("emon/v1/fix/ghost", b"x" * 10), message("emon/v1/fix/ghost2", b"y" * 10)])
    await store.execute(
        "UPDATE dead_letters SET received_at = now() - interval '2 hours' WHERE payload = 'xxxxxxxxxx'"
    )
    rows, size = await store.records.dead_letter_totals()
    assert rows == 2 and size > 400
    # Another process filled the table meanwhile: the periodic measurement, not only this process's
    # own count, decides.
    await store.execute(
        "INSERT INTO dead_letters (topic, reason, payload) VALUES ('t', 'x', decode(repeat('ab', 800), 'hex'))"
    )
    maintenance = asyncio.create_task(pipeline.maintain_dead_letters(interval_s=60))
    try:

        async def measured() -> bool:
            return (
                pipeline.budget.total_bytes > 0
                and await store.scalar("SELECT count(*) FROM dead_letters") == 2
            )

        await eventually(measured, within=5)
    finally:
        maintenance.cancel()
    assert pipeline.budget.full
    await pipeline.store([message("emon/v1/fix/ghost3", b"z")])  # over the cap: only counted
    assert await store.scalar("SELECT count(*) FROM dead_letters") == 2
