"""On the real Redis: a batch's live state goes in one script call and keeps the rules the per-fix
commands kept — per device the newest fix (of the batch and of what Redis holds) and the later
last-heard time — and a batch that meets an unreachable Redis is held and merged into reads."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from emon.demo import free_port
from emon.fix import Fix, FixSource
from emon.storage.live import LiveState, client_for, fix_to_json
from emon.storage.recall import RecallingLive
from tests.storage.helpers import REDIS_URL, Store

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, 0, 123457, tzinfo=UTC)


def fix(device: str, seconds: float, seq: int) -> Fix:
    return Fix(device_id=device, ts=T0 + timedelta(seconds=seconds), lat=52.0, lon=5.0, acc_m=5.0, seq=seq)


@pytest.fixture
async def live() -> AsyncIterator[LiveState]:
    state = LiveState.from_url(REDIS_URL, f"t-live-{uuid.uuid4().hex[:10]}")
    try:
        yield state
    finally:
        await state.client.delete(state.latest_key, state.latest_key + ":ts", state.seen_key)
        await state.close()


async def seq_of(live: LiveState, device: str) -> object:
    return (await live.latest(device) or {}).get("seq")


@pytest.mark.parametrize(
    ("batch", "kept"),
    [
        ([fix("tag-1", 2, 2), fix("tag-1", 1, 1)], 2),  # newest first
        ([fix("tag-1", 1, 1), fix("tag-1", 2, 2), fix("tag-1", 1.5, 3)], 2),  # newest in the middle
        ([fix("tag-1", 1, 1), fix("tag-1", 1, 4)], 4),  # same fix time: the later in the batch
    ],
)
async def test_a_device_twice_in_a_batch_keeps_its_newest_fix(
    live: LiveState, batch: list[Fix], kept: int
) -> None:
    await live.update(batch, {})
    assert await seq_of(live, "tag-1") == kept
    assert await live.latest_times() == {"tag-1": max(f.ts for f in batch)}


async def test_across_batches_a_late_fix_or_time_never_moves_back_and_a_newer_one_does(
    live: LiveState,
) -> None:
    heard = T0 + timedelta(seconds=100)
    await live.update([fix("tag-1", 10, 10), fix("tag-2", 10, 20)], {"tag-1": heard, "tag-2": heard})
    # tag-1 twice, both older than what Redis holds; tag-2 newer; tag-3 new.
    late = [fix("tag-1", 5, 5), fix("tag-2", 11, 21), fix("tag-1", 9, 9), fix("tag-3", 1, 30)]
    earlier, later = heard - timedelta(seconds=50), heard + timedelta(seconds=1)
    await live.update(late, {"tag-1": earlier, "tag-2": later, "tag-3": earlier})
    assert [await seq_of(live, d) for d in ("tag-1", "tag-2", "tag-3")] == [10, 21, 30]
    assert await live.last_seen() == {"tag-1": heard, "tag-2": later, "tag-3": earlier}
    await live.mark_seen({"tag-2": heard})  # a late batch
    assert (await live.last_seen())["tag-2"] == later


@pytest.mark.parametrize(
    "stored",
    [
        Fix("tag-1", T0, 52.123456789012, 5.987654321098, 4.5, 7, 81.0, FixSource.GNSS, 1.25, 270.0),
        Fix("tag-1", T0, 52, 5, 3),  # ints, and every optional field missing
        Fix("tag-1", T0.replace(microsecond=0), 52.0, 5.0, 3.0),  # a time without a fraction
        Fix("tag-1", T0.replace(microsecond=120_000), 52.0, 5.0, 3.0),  # trailing zeros kept
        Fix("tag-1", T0.replace(tzinfo=timezone(timedelta(0))), 52.0, 5.0, 3.0),  # UTC by another name
        Fix("tag-1", T0.replace(tzinfo=ZoneInfo("UTC")), 52.0, 5.0, 3.0),
        Fix("tag-1", datetime(1, 1, 1, tzinfo=UTC), -90.0, -180.0, 0.0),  # a year of one digit
        Fix('Z","lat":Z', T0, 0.001, 180.0, 100_000.0, 0, 0.0, FixSource.CELL, 0.0, 360.0),
    ],
)
async def test_the_latest_reads_back_as_the_json_it_always_was(live: LiveState, stored: Fix) -> None:
    """The API hands this object out as is (``/devices/{id}/latest``): same keys, same values, the
    time as ``isoformat`` writes it ("+00:00")."""
    await live.set_latest([stored])
    raw = await live.client.hget(live.latest_key, stored.device_id)
    assert raw == json.dumps(fix_to_json(stored), separators=(",", ":")).encode()
    assert await live.latest(stored.device_id) == fix_to_json(stored)


async def test_stored_times_read_back_as_the_same_instant(live: LiveState) -> None:
    """Times travel as doubles and are stored as text: the text must read back as the same double."""
    odd = [T0 + timedelta(microseconds=us) for us in (1, 333_333, 999_999, 10**6 * 86_400 * 365 + 7)]
    fixes = [Fix(device_id=f"tag-{i}", ts=t, lat=52.0, lon=5.0, acc_m=5.0) for i, t in enumerate(odd)]
    await live.update(fixes, {f.device_id: f.ts for f in fixes})
    raw = await live.client.hgetall(live.seen_key)
    assert {k.decode(): float(v) for k, v in raw.items()} == {f.device_id: f.ts.timestamp() for f in fixes}
    assert await live.latest_times() == {
        f.device_id: datetime.fromtimestamp(f.ts.timestamp(), UTC) for f in fixes
    }


async def test_times_of_given_devices_only(live: LiveState) -> None:
    heard = T0 + timedelta(seconds=100)
    await live.update(
        [fix("tag-1", 10, 1), fix("tag-2", 20, 2), fix("tag-3", 30, 3)], {"tag-1": heard, "tag-3": heard}
    )
    assert await live.latest_times(["tag-3", "tag-1", "never"]) == {
        "tag-3": T0 + timedelta(seconds=30),
        "tag-1": T0 + timedelta(seconds=10),
    }
    assert await live.last_seen(["tag-2", "tag-3"]) == {"tag-3": heard}  # tag-2 was never heard (only a fix)
    assert await live.last_seen([]) == {} and await live.latest_times([]) == {}


async def test_more_devices_than_one_script_call_takes_are_all_written(live: LiveState) -> None:
    fixes = [fix(f"tag-{i}", i, i) for i in range(2_500)]
    seen = {f"ack-{i}": T0 for i in range(1_200)}
    await live.update(fixes, seen)
    assert len(await live.latest_times()) == 2_500
    assert len(await live.last_seen()) == 1_200
    assert await seq_of(live, "tag-2499") == 2499


async def test_a_batch_meeting_an_unreachable_redis_is_held_newest_per_device_and_merged_into_reads(
    store: Store,
) -> None:
    down = client_for(f"redis://127.0.0.1:{free_port()}/0")
    live = RecallingLive(down, f"t-held-{uuid.uuid4().hex[:8]}", store.records, lambda: ["tag-1", "ack-1"])
    heard = T0 + timedelta(seconds=60)
    try:
        await live.update([fix("tag-1", 2, 2), fix("tag-1", 3, 3), fix("tag-1", 1, 1)], {"tag-1": heard})
        assert live.breaker.open
        await live.update([fix("tag-1", 0, 0)], {"tag-1": T0, "ack-1": T0})  # skipped: held too
        assert await live.latest_times() == {"tag-1": T0 + timedelta(seconds=3)}
        assert (await live.latest("tag-1") or {})["seq"] == 3
        assert await live.last_seen() == {"tag-1": heard, "ack-1": T0}
    finally:
        await down.aclose()
