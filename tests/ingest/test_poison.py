"""The issue's two poison messages through the real Mosquitto: each costs one dead letter, and a valid
fix published after them is stored within a second — also when they wait in the persistent session
while emon is down."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from tests.harness import Running, eventually, publish, running_emon, start
from tests.ingest.test_ingest_integration import register

pytestmark = pytest.mark.integration

DEEP = b"[" * 3000 + b"]" * 3000


def nul_event() -> bytes:
    return json.dumps(
        {"type": "battery_low", "ts": datetime.now(UTC).isoformat(), "note": "a\u0000b"}
    ).encode()


def valid_fix(seq: int) -> bytes:
    return json.dumps(
        {"ts": datetime.now(UTC).isoformat(), "lat": 52.09, "lon": 5.12, "acc": 8, "seq": seq}
    ).encode()


async def publish_poison(em: Running, device: str) -> None:
    await publish(em.topic(f"emon/v1/fix/{device}"), DEEP)
    await publish(em.topic(f"emon/v1/event/{device}"), nul_event())


async def stored_within(em: Running, seq: int, seconds: float) -> float:
    """Wait for fix ``seq`` of tag-p in PostgreSQL; return how long it took (fails past ``seconds``)."""
    start_t = time.monotonic()

    async def stored() -> bool:
        track = await em.runtime.records.track(
            "tag-p", datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC), 100
        )
        return any(f.seq == seq for f in track)

    await eventually(stored, within=seconds, interval=0.02)
    return time.monotonic() - start_t


async def assert_poison_dead_lettered_and_ready(em: Running) -> None:
    async def both_dead() -> bool:
        return {"too_deep", "bad_text"} <= {d.reason for d in await em.runtime.records.dead_letters()}

    await eventually(both_dead, within=5)
    reasons = sorted(d.reason for d in await em.runtime.records.dead_letters())
    assert reasons == ["bad_text", "too_deep"]  # one row per message
    assert em.runtime.dead_tasks() == []
    async with em.client(token=None) as c:
        r = await c.get("/readyz")
    assert r.status_code == 200, r.text


async def test_poison_then_a_valid_fix_is_stored_within_a_second(emon: Running) -> None:
    await register(emon, "tag-p")
    await publish_poison(emon, "tag-p")
    await publish(emon.topic("emon/v1/fix/tag-p"), valid_fix(1))
    assert await stored_within(emon, 1, 1.0) <= 1.0
    await assert_poison_dead_lettered_and_ready(emon)


async def test_poison_queued_in_the_persistent_session_across_a_restart() -> None:
    async with running_emon() as em:
        await register(em, "tag-p")
        await em.stop()
        # While emon is down the broker queues the poison and a valid fix behind it.
        await publish_poison(em, "tag-p")
        await publish(em.topic("emon/v1/fix/tag-p"), valid_fix(2))
        again = await start(em.settings)
        try:
            assert await stored_within(again, 2, 1.0) <= 1.0
            await assert_poison_dead_lettered_and_ready(again)
            # A second restart finds nothing left to choke on: the poison was acknowledged.
            await again.stop()
            third = await start(em.settings)
            try:
                await publish(em.topic("emon/v1/fix/tag-p"), valid_fix(3))
                assert await stored_within(third, 3, 1.0) <= 1.0
                assert len(await third.runtime.records.dead_letters()) == 2
            finally:
                await third.stop()
        finally:
            if not again.task.done():
                await again.stop()
