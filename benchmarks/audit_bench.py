"""Benchmark of the audit log on the real PostgreSQL (not a test).

    .venv/bin/python -m benchmarks.audit_bench [--records 2000] [--writers 1,4,8] [--instances 2]

Appends one record per call (what an API read costs; concurrent calls are group-committed) from ``writers`` concurrent tasks spread
over ``instances`` connection pools (as several emon instances would), with a signing key and a
checkpoint every 100 records; then verifies the whole chain. Prints records/s and latency per append,
and verification speed. Runs on its own schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from emon.access import Principal, Role
from emon.audit import Entry, Outcome
from emon.signing import key_id
from emon.storage.audit import AuditLog
from emon.storage.postgres import Database, drop_schema

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def run(records: int, writers: list[int], instances: int) -> None:
    schema = f"bench_audit_{uuid.uuid4().hex[:8]}"
    key = Ed25519PrivateKey.generate()
    dbs = [Database(PG_URL, schema, max_size=8) for _ in range(instances)]
    try:
        for db in dbs:
            await db.open()
        await dbs[0].migrate()
        logs = [AuditLog(db, key, checkpoint_every=100) for db in dbs]
        who = Principal("bench", Role.POLICE, frozenset({"police:a"}), "bench", "tok_bench")
        print(f"audit appends, one record per call, {instances} pools, signing key, checkpoint every 100")
        for n in writers:
            latencies: list[float] = []

            async def writer(log: AuditLog, count: int, latencies: list[float] = latencies) -> None:
                for i in range(count):
                    t = time.perf_counter()
                    await log.record(
                        Entry.of(
                            who,
                            datetime.now(UTC),
                            "case.read",
                            Outcome.ALLOWED,
                            purpose="alert_response",
                            case_id=f"case-{i % 50}",
                        )
                    )
                    latencies.append(time.perf_counter() - t)

            per = records // n
            start = time.perf_counter()
            await asyncio.gather(*(writer(logs[i % instances], per) for i in range(n)))
            elapsed = time.perf_counter() - start
            latencies.sort()
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(
                f"  {n:>2} writers: {per * n / elapsed:8.0f} records/s, median {statistics.median(latencies) * 1e3:.2f} ms,"
                f" p99 {p99 * 1e3:.2f} ms"
            )
        start = time.perf_counter()
        verdict = await logs[0].verify({key_id(key.public_key()): key.public_key()})
        elapsed = time.perf_counter() - start
        print(
            f"verify: {verdict.records} records, {verdict.checkpoints} checkpoints, ok={verdict.ok}: "
            f"{verdict.records / elapsed:.0f} records/s"
        )
    finally:
        for db in dbs:
            await db.close()
        await drop_schema(PG_URL, schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--writers", default="1,4,8")
    parser.add_argument("--instances", type=int, default=2)
    ns = parser.parse_args()
    asyncio.run(run(ns.records, [int(w) for w in ns.writers.split(",")], ns.instances))


if __name__ == "__main__":
    main()
