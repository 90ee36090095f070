"""Where the bytes go per monitored device (not a test).

    .venv/bin/python -m benchmarks.memory [--devices 100000] [--fixes 5] [--batch 1000] [--top N]

Builds what ``emon serve`` holds for the ``benchmarks.e2e`` population, in-process: N registered
devices, N/10 cases (offender ``bench-i``, victim ``bench-i+1``, 5 zones each: 3 circles, 2 polygons)
made and put in the case book one at a time (it keeps them packed; ``emon serve`` streams them from
PostgreSQL the same way), the geofence engine with every case compiled from the case book's documents
(each built for it and dropped), then ``--fixes`` rounds of one fix per
device evaluated (the state a loaded instance keeps) in batches of ``--batch`` fixes, each batch's
fixes made just before it, as ``emon serve`` decodes and evaluates them (at most ``EMON_BATCH_MAX``,
1000, a batch): one batch of every device's fixes at once would leave resident memory behind that a
serving instance never has (the arenas its temporaries took stay pinned by the state allocated
among them: 1,186 instead of 463 B per device at 10,000 devices). Prints each component's resident-memory growth
(RSS, which also counts GEOS and numpy buffers) and Python allocations (tracemalloc, a second pass),
in bytes per device. ``--top N`` also names, per component, the N source files whose allocations it
holds most of (tracemalloc, grouped by the file that allocated).
"""

from __future__ import annotations

import argparse
import gc
import os
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.e2e_setup import device_positions, each_bench_case
from emon.casebook import CaseBook
from emon.device import Device, DeviceKind, DeviceRegistry
from emon.fix import Fix
from emon.geofence import Engine
from emon.settings import Settings
from simulators.load import bench_device_id

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


BATCH = Settings.model_fields["batch_max"].default


def stages(n: int, rounds: int, batch: int = BATCH) -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    """The components in the order emon builds them; each stores what it keeps in ``held``."""

    def registry(held: dict[str, Any]) -> None:
        kinds = [DeviceKind.VICTIM_DEVICE if i % 10 == 1 else DeviceKind.ANKLE_TAG for i in range(n)]
        held["registry"] = DeviceRegistry(
            [Device(bench_device_id(i), k, None, 5) for i, k in enumerate(kinds)]
        )

    def casebook(held: dict[str, Any]) -> None:
        # As emon serve loads it (emon.storage.open_cases): one document made and put at a time.
        book = CaseBook()
        for case in each_bench_case(n):
            book.put(case)
        held["casebook"] = book

    def compiled(held: dict[str, Any]) -> None:
        engine = Engine()
        for case in held["casebook"].documents():
            engine.add_case(case)
        engine.changed()
        held["engine"] = engine

    def state(held: dict[str, Any]) -> None:
        engine: Engine = held["engine"]
        pos = device_positions(n)
        for r in range(rounds):
            now = T0 + timedelta(seconds=5 * r)
            for a in range(0, n, batch):
                # Every fix its own time and coordinates (as decoded from its message): no object shared.
                fixes = [
                    Fix(
                        bench_device_id(i),
                        now + timedelta(microseconds=i),
                        lat + r * 1e-6,
                        lon,
                        8.0 + r,
                        seq=r,
                    )
                    for i, (lat, lon) in enumerate(pos[a : a + batch], start=a)
                ]
                engine.evaluate_batch(fixes, now)
                del fixes
        engine.changed()

    return [
        ("device registry", registry),
        ("case book (records, packed documents, device index)", casebook),
        ("compiled cases (engine)", compiled),
        (f"evaluation state ({rounds} fixes/device)", state),
    ]


def measure(
    n: int, rounds: int, traced: bool, top: int = 0, batch: int = BATCH
) -> list[tuple[str, int, list[tuple[str, int]]]]:
    """(component, bytes it added, its ``top`` allocating files with their bytes) per component."""
    held: dict[str, Any] = {}
    out = []
    if traced:
        tracemalloc.start()
    for name, build in stages(n, rounds, batch):
        gc.collect()
        snap = tracemalloc.take_snapshot() if traced and top else None
        before = tracemalloc.get_traced_memory()[0] if traced else rss()
        build(held)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] if traced else rss()
        sites: list[tuple[str, int]] = []
        if snap is not None:
            diff = tracemalloc.take_snapshot().compare_to(snap, "filename")
            sites = [(str(d.traceback[0].filename), d.size_diff) for d in diff[:top]]
        out.append((name, after - before, sites))
    if traced:
        tracemalloc.stop()
    return out


def _short(path: str) -> str:
    """``…/site-packages/pydantic/main.py`` as ``pydantic/main.py``, ``/work/…/emon/x.py`` as ``emon/x.py``."""
    parts = path.split(os.sep)
    for root in ("site-packages", "emon", "benchmarks", "simulators"):
        if root in parts:
            k = len(parts) - 1 - parts[::-1].index(root)
            return os.sep.join(parts[k + 1 :] if root == "site-packages" else parts[k:])
    return os.sep.join(parts[-2:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--fixes", type=int, default=5, help="fixes evaluated per device")
    ap.add_argument("--top", type=int, default=0, help="allocating files to name per component")
    ap.add_argument(
        "--batch", type=int, default=BATCH, help="fixes per evaluated batch (emon's EMON_BATCH_MAX)"
    )
    args = ap.parse_args()
    n = args.devices
    by_rss = measure(n, args.fixes, traced=False, batch=args.batch)
    by_py = measure(n, args.fixes, traced=True, top=args.top, batch=args.batch)
    print(f"{n} devices, {n // 10} cases, 5 zones each, fixes in batches of {args.batch}; bytes per device")
    print(f"{'component':52} {'RSS':>8} {'Python':>8}")
    for (name, r, _), (_, p, sites) in zip(by_rss, by_py, strict=True):
        print(f"{name:52} {r / n:8.0f} {p / n:8.0f}")
        for path, size in sites:
            print(f"    {_short(path):48} {'':8} {size / n:8.0f}")
    total_r, total_p = sum(r for _, r, _ in by_rss), sum(p for _, p, _ in by_py)
    print(f"{'total':52} {total_r / n:8.0f} {total_p / n:8.0f}")


if __name__ == "__main__":
    main()
