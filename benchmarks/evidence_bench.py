"""What the replay record costs per evaluated batch (not a test).

    .venv/bin/python -m benchmarks.evidence_bench [--cases 1000] [--batches 30]

One batch = ``--cases`` changed case states (real engine snapshots, each case with a full device history)
persisted by ``CaseRecords.save_evaluation`` on the machine's PostgreSQL, in a scratch schema:
(a) as before the journal, (b) with the journal row (batch as a range of receiving times) and 20 % of the
cases due a snapshot (steady state: a case with a fix a minute, a snapshot every 300 s), (c) with every
case snapshotted (a start). Also the size of one case's snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from emon.case import Case
from emon.fix import Fix
from emon.geo import destination
from emon.geofence import Engine
from emon.storage.cases import CaseRecords, JournalStep
from emon.storage.postgres import Database, drop_schema

URL = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def states(n: int) -> dict[str, dict[str, Any]]:
    engine = Engine()
    for i in range(n):
        lat, lon = 52.0 + (i % 100) / 100, 4.5 + (i // 100) / 100
        home = destination(lat, lon, 90, 5000)
        engine.add_case(
            Case.model_validate(
                {
                    "case_id": f"c{i}",
                    "risk": "high",
                    "offender_device": f"t{i}",
                    "victim_device": f"v{i}",
                    "residence": {"lat": home[0], "lon": home[1]},
                    "order": {
                        "contact_ban_m": 500,
                        "exclusion_zones": [
                            {"name": "z", "circle": {"lat": lat, "lon": lon, "radius_m": 300}}
                        ],
                    },
                }
            )
        )
    fixes = []
    for k in range(40):  # fill each device's history (32 kept)
        ts = T0 + timedelta(seconds=60 * k)
        for i in range(n):
            lat, lon = 52.0 + (i % 100) / 100, 4.5 + (i // 100) / 100
            fixes.append(Fix(f"t{i}", ts, *destination(lat, lon, 0, 2000 + k), 8.0))
            fixes.append(Fix(f"v{i}", ts, *destination(lat, lon, 180, 3000), 12.0))
    engine.evaluate_batch(fixes, T0 + timedelta(hours=1))
    return {c: engine.snapshot(c) for c in engine.changed()}


async def run(cases: int, batches: int) -> None:
    schema = f"bench_ev_{uuid.uuid4().hex[:8]}"
    db = Database(URL, schema)
    await db.open()
    await db.migrate()
    records = CaseRecords(db)
    snap = states(cases)
    size = statistics.mean(len(json.dumps(s)) for s in snap.values())
    config = asdict(Engine().config)
    ids = sorted(snap)
    try:
        results = {}
        for label, share in (
            ("a: states only (before)", None),
            ("b: + journal, 20% snapshots", 0.2),
            ("c: + journal, every case snapshotted", 1.0),
        ):
            took = []
            for b in range(batches):
                now = T0 + timedelta(seconds=b)
                step = (
                    None
                    if share is None
                    else JournalStep(
                        "batch",
                        now,
                        (),
                        (),
                        {"stored_after": now.isoformat(), "stored_through": now.isoformat()},
                    )
                )
                due = [] if share is None else ids[: int(len(ids) * share)]
                started = time.perf_counter()
                await records.save_evaluation(
                    snap,
                    [],
                    watermark=now,
                    step=step,
                    snapshot=due,
                    versions={c: 1 for c in ids},
                    config=config,
                )
                took.append(time.perf_counter() - started)
            results[label] = statistics.median(took)
        print(
            f"{cases} changed cases per batch, median of {batches} batches; one snapshot ≈ {size / 1024:.1f} KiB"
        )
        base = results["a: states only (before)"]
        for label, t in results.items():
            print(f"  {label:40s} {t * 1000:8.1f} ms  ({t / base:.2f}×, {t / cases * 1e6:.0f} µs per case)")
    finally:
        await db.close()
        await drop_schema(URL, schema)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=30)
    ns = ap.parse_args()
    asyncio.run(run(ns.cases, ns.batches))


if __name__ == "__main__":
    main()
