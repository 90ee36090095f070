"""Client CPU per fix at emon's storage edges: ``Records.store_batch`` (PostgreSQL) and the live-state
update after it (``LiveState.set_latest`` + ``mark_seen``, Redis), in process, measured with
``time.process_time()`` (CPU of this process only: the servers' work and the waits are not counted, so
the figure is the one the shared cores feel from emon, and is steady under other load).

Each round stores ``--batches`` batches of new fixes (one fix per device, 10,000 devices, fix times
moving forward) of each size, on a real PostgreSQL schema and Redis prefix of its own. The first batches
of a size warm the connection (psycopg prepares a statement on its 5th use) and are not counted.

    .venv/bin/python -m benchmarks.edge_bench [--batches 40] [--sizes 100,1000] [--rounds 3]

To compare two versions of emon, run it alternately against each (``PYTHONPATH=<other checkout>``):
the figures are only comparable when taken in the same minutes on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

import emon
from emon.fix import Fix, FixSource
from emon.storage.live import LiveState
from emon.storage.postgres import Database, drop_schema
from emon.storage.records import Records

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
DEVICES = 10_000
WARMUP = 6


def batches(size: int, count: int, start: datetime) -> list[list[Fix]]:
    """``count`` batches of ``size`` new fixes, each device at most once per batch."""
    out: list[list[Fix]] = []
    n = 0
    for b in range(count):
        batch = []
        for i in range(size):
            device = (b * size + i) % DEVICES
            n += 1
            batch.append(
                Fix(
                    device_id=f"tag-{device:05d}",
                    ts=start + timedelta(milliseconds=n),
                    lat=52.0 + device * 1e-5,
                    lon=5.0 + n * 1e-7,
                    acc_m=4.5,
                    seq=n,
                    batt=81.0,
                    src=FixSource.GNSS,
                    speed_mps=1.25,
                    heading_deg=270.0 if n % 2 else None,
                )
            )
        out.append(batch)
    return out


async def cpu_us(step: Callable[[], Awaitable[object]]) -> float:
    """CPU time of one awaited step of this process, in microseconds."""
    gc.collect()
    t = time.process_time()
    await step()
    return (time.process_time() - t) * 1e6


async def run(size: int, count: int, records: Records, live: LiveState) -> tuple[float, float, float | None]:
    """Median CPU per fix (us) of storing, of the live update as the pipeline makes it (``set_latest``
    then ``mark_seen``) and as one call (``update``, None where this emon has none), over ``count``
    batches."""
    store: list[float] = []
    update: list[float] = []
    single: list[float] = []
    one_call = getattr(live, "update", None)
    start = datetime.now(UTC) + timedelta(days=size)  # new fixes every run
    for i, batch in enumerate(batches(size, count + WARMUP, start)):
        seen = {f.device_id: datetime.now(UTC) for f in batch}

        async def stored(batch: list[Fix] = batch) -> object:
            return await records.store_batch(batch, [], [])

        async def updated(batch: list[Fix] = batch, seen: dict[str, datetime] = seen) -> object:
            await live.set_latest(batch)
            await live.mark_seen(seen)
            return None

        # Newer fixes of the same devices, so that this call writes as much as the two before it.
        later = [replace(f, ts=f.ts + timedelta(microseconds=1)) for f in batch]

        async def updated_once(batch: list[Fix] = later, seen: dict[str, datetime] = seen) -> object:
            assert one_call is not None
            await one_call(batch, seen)
            return None

        s, u = await cpu_us(stored), await cpu_us(updated)
        o = await cpu_us(updated_once) if one_call is not None else None
        if i >= WARMUP:
            store.append(s / size)
            update.append(u / size)
            if o is not None:
                single.append(o / size)
    return statistics.median(store), statistics.median(update), statistics.median(single) if single else None


async def main(sizes: list[int], count: int, rounds: int) -> None:
    tag = uuid.uuid4().hex[:8]
    schema, prefix = f"bench_edge_{tag}", f"bench-edge-{tag}"
    db = Database(PG_URL, schema, max_size=1)
    await db.open()
    live = LiveState.from_url(REDIS_URL, prefix)
    print(f"emon from {emon.__file__}")
    try:
        await db.migrate()
        records = Records(db)
        for r in range(rounds):
            for size in sizes:
                store, update, single = await run(size, count, records, live)
                once = "n/a" if single is None else f"{single:6.2f}"
                print(
                    f"round {r} batch {size:5d}: store_batch {store:6.2f} us/fix, live set_latest+mark_seen "
                    f"{update:6.2f} us/fix, live update() {once} us/fix (median of {count} batches, CPU)"
                )
    finally:
        await live.close()
        await db.close()
        await drop_schema(PG_URL, schema)
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")], args.batches, args.rounds))
