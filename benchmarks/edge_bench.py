"""Client CPU per fix at emon's storage edges: ``Records.store_batch`` (PostgreSQL) and the live-state
update after it (``LiveState.update``, Redis), in process, measured with
``time.process_time()`` (CPU of this process only: the servers' work and the waits are not counted, so
the figure is the one the shared cores feel from emon, and is steady under other load).

Each round stores ``--batches`` batches of new fixes (one fix per device, 10,000 devices, fix times
moving forward) of each size, on a real PostgreSQL schema and Redis prefix of its own. The first batches
of a size warm the connection (psycopg prepares a statement on its 5th use) and are not counted.

    .venv/bin/python -m benchmarks.edge_bench [--batches 40] [--sizes 100,1000] [--rounds 3]
        [--baseline path/to/other/checkout]

``--baseline`` loads that checkout's ``emon/storage/records.py``, ``arrays.py`` and ``live.py`` beside
this emon's and alternates the batches between the two versions, so that both see the same machine
load (on a shared machine, runs taken minutes apart differ by up to a factor of two).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

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


class Edges(NamedTuple):
    """One version of emon's storage edges: its records (PostgreSQL) and live state (Redis)."""

    records: Any
    live: Any


async def run(size: int, count: int, versions: dict[str, Edges]) -> dict[str, tuple[float, float]]:
    """Median CPU per fix (us) of storing and of the live update (``update``: a batch's fixes and
    last-heard times, one time for the batch as the pipeline passes it), over ``count`` batches of each
    version; with several versions the batches alternate between them, so all see the same machine."""
    figures: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in versions}
    start = datetime.now(UTC) + timedelta(days=size)  # new fixes every run
    names = list(versions)
    for i, batch in enumerate(batches(size, (count + WARMUP) * len(names), start)):
        name = names[i % len(names)]
        edges = versions[name]
        seen = dict.fromkeys((f.device_id for f in batch), datetime.now(UTC))

        async def stored(batch: list[Fix] = batch, edges: Edges = edges) -> object:
            return await edges.records.store_batch(batch, [], [])

        async def updated(
            batch: list[Fix] = batch, seen: dict[str, datetime] = seen, edges: Edges = edges
        ) -> object:
            return await edges.live.update(batch, seen)

        s, u = await cpu_us(stored), await cpu_us(updated)
        if i >= WARMUP * len(names):
            figures[name][0].append(s / size)
            figures[name][1].append(u / size)
    return {n: (statistics.median(st), statistics.median(up)) for n, (st, up) in figures.items()}


def baseline_modules(tree: Path) -> tuple[ModuleType, ModuleType]:
    """``emon/storage/records.py`` (with its ``arrays.py``) and ``live.py`` of another checkout, loaded
    beside this emon's: the rest (``Database``, ``Fix``) is this emon's, so both versions store into one
    schema, interleaved batch by batch."""

    def load(name: str, path: Path, rewire: dict[str, str]) -> ModuleType:
        source = path.read_text(encoding="utf-8")
        for old, new in rewire.items():
            source = source.replace(old, new)
        module = ModuleType(name)
        module.__file__ = str(path)
        sys.modules[name] = module  # dataclasses look their module up there
        exec(compile(source, str(path), "exec"), module.__dict__)  # a checkout named on the command line
        return module

    storage = tree / "emon" / "storage"
    load("edge_baseline_arrays", storage / "arrays.py", {})
    records = load(
        "edge_baseline_records",
        storage / "records.py",
        {"from emon.storage import arrays\n": "import edge_baseline_arrays as arrays\n"},
    )
    return records, load("edge_baseline_live", storage / "live.py", {})


async def main(sizes: list[int], count: int, rounds: int, baseline: Path | None) -> None:
    tag = uuid.uuid4().hex[:8]
    schema, prefix = f"bench_edge_{tag}", f"bench-edge-{tag}"
    db = Database(PG_URL, schema, max_size=1)
    await db.open()
    versions = {"current": Edges(Records(db), LiveState.from_url(REDIS_URL, prefix))}
    if baseline is not None:
        records, live = baseline_modules(baseline)
        versions = {"baseline": Edges(records.Records(db), live.LiveState.from_url(REDIS_URL, prefix + "-b"))}
        versions["current"] = Edges(Records(db), LiveState.from_url(REDIS_URL, prefix))
    print(f"emon from {emon.__file__}" + (f"; baseline storage from {baseline}" if baseline else ""))
    try:
        await db.migrate()
        for r in range(rounds):
            for size in sizes:
                for name, (store, update) in (await run(size, count, versions)).items():
                    print(
                        f"round {r} batch {size:5d} {name:>8}: store_batch {store:6.2f} us/fix, "
                        f"live update {update:6.2f} us/fix (median of {count} batches, CPU)"
                    )
    finally:
        for edges in versions.values():
            await edges.live.close()
        await db.close()
        await drop_schema(PG_URL, schema)
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout whose storage edges to interleave")
    args = parser.parse_args()
    asyncio.run(main([int(s) for s in args.sizes.split(",")], args.batches, args.rounds, args.baseline))
