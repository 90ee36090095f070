"""Benchmark of deciding and ticking alerts on the real PostgreSQL and Redis (not a test).

    .venv/bin/python -m benchmarks.alert_bench [--cases 200] [--batch 50] [--rounds 6] [--updates] [--profile FILE]

Each round hands :meth:`AlertService.on_evaluation` batches of ``batch`` evaluation events, one per case,
each opening a new alert (pre-alert, possible breach and proven breach in turn — what the e2e crossing
decides: outbox rows for victim and police, room tasks, locate commands); with ``--updates`` round 0 opens
one proximity breach per case and every later round updates it (a breach update 1 m closer: the
alert changes, nobody is told again — most of what an offender driving through a zone decides). It prints the process CPU time
per decided change (``time.process_time()``: emon's own CPU, not PostgreSQL's, and not the other
engineers' on the shared cores), the wall time per batch (median and p90: what a decision waits for its
batch's transaction, noisy on shared cores), the CPU of one :meth:`AlertService.tick` with every alert
open and none due, and the CPU per delivery attempt of the outbox worker delivering every queued row
(:meth:`OutboxWorker.deliver_due` rounds of ``batch_size``; senders stubbed: victim and command rows
succeed, the webhook fails, so both ways of recording an attempt are measured, not the channels). Runs
on its own schema and Redis prefix, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from emon.alerts.channels import DeliveryError
from emon.alerts.config import AlertConfig
from emon.alerts.outbox import OutboxWorker
from emon.alerts.service import AlertService
from emon.case import Case
from emon.casebook import CaseBook
from emon.device import Device, DeviceKind, DeviceRegistry
from emon.geofence.events import Classification, EvalEvent, EvalEventType, Evidence
from emon.hub import Hub
from emon.settings import Settings
from emon.storage import alerts as st
from emon.storage.live import LiveState
from emon.storage.postgres import Database, drop_schema

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
KINDS = (
    (EvalEventType.PROXIMITY_PRE_ALERT, Classification.BREACH),
    (EvalEventType.POSSIBLE_BREACH, Classification.POSSIBLE),
    (EvalEventType.PROXIMITY_BREACH, Classification.BREACH),
)


def _case(i: int) -> Case:
    return Case.model_validate(
        {
            "case_id": f"case-{i}",
            "risk": "high",
            "offender_device": f"tag-{i}",
            "victim_device": f"vic-{i}",
            "residence": {"lat": 52.09, "lon": 5.12},
            "order": {"contact_ban_m": 500},
        }
    )


def _event(i: int, round_: int, at: datetime, updates: bool) -> EvalEvent:
    if updates:
        kind = EvalEventType.PROXIMITY_BREACH if round_ == 0 else EvalEventType.BREACH_UPDATE
        evidence = (
            Evidence(f"tag-{i}", at, 52.0907, 5.1214, 8.0, 1.0),
            Evidence(f"vic-{i}", at, 52.0910, 5.1230, 15.0, 2.0),
        )
        return EvalEvent(
            kind,
            f"case-{i}",
            "proximity",
            at,
            at,
            T0,
            Classification.BREACH,
            120.0 - round_,
            evidence,
            live=True,
        )
    kind, cls = KINDS[(i + round_) % len(KINDS)]
    evidence = (
        Evidence(f"tag-{i}", at, 52.0907, 5.1214, 8.0, 1.0),
        Evidence(f"vic-{i}", at, 52.0910, 5.1230, 15.0, 2.0),
    )
    return EvalEvent(kind, f"case-{i}", "proximity", at, at, at, cls, 120.0, evidence, live=True)


async def run(cases: int, batch: int, rounds: int, updates: bool, profile: str | None) -> None:
    schema = f"bench_alert_{uuid.uuid4().hex[:8]}"
    db = Database(PG_URL, schema, max_size=4)
    await db.open()
    live = LiveState.from_url(Settings().redis_url, f"bench-alert-{uuid.uuid4().hex[:8]}")
    try:
        await db.migrate()
        settings = Settings(mqtt_topic_prefix=schema, webhook_url="http://127.0.0.1:9/cap", db_schema=schema)
        devices = [Device(f"tag-{i}", DeviceKind.ANKLE_TAG, report_interval_s=3600) for i in range(cases)]
        devices += [
            Device(f"vic-{i}", DeviceKind.VICTIM_DEVICE, report_interval_s=3600) for i in range(cases)
        ]
        svc = AlertService(
            db,
            settings,
            Hub(),
            CaseBook([_case(i) for i in range(cases)]),
            DeviceRegistry(devices),
            live,
            config=AlertConfig(),
        )
        prof = cProfile.Profile(time.process_time) if profile else None
        per_decision: list[float] = []
        walls: list[list[float]] = []
        for r in range(rounds):
            at = T0 + timedelta(minutes=r)
            events = [_event(i, r, at, updates) for i in range(cases)]
            cpu = 0.0
            walls.append([])
            for start in range(0, cases, batch):
                chunk = events[start : start + batch]
                t, wall = time.process_time(), time.perf_counter()
                if prof:
                    prof.enable()
                await svc.on_evaluation(chunk, at, time.monotonic())
                if prof:
                    prof.disable()
                cpu += time.process_time() - t
                walls[-1].append((time.perf_counter() - wall) * 1e3)
            per_decision.append(cpu / cases * 1e6)
            print(f"round {r}: {cases} decisions in batches of {batch}: {per_decision[-1]:.0f} µs CPU each")
        steady = slice(1, None) if rounds > 1 else slice(None)  # round 0 also warms the connections up
        print(
            f"decide: median {statistics.median(per_decision[steady]):.0f} µs CPU per decision (rounds 1..)"
        )
        batches = [w for ws in walls[steady] for w in ws]
        p90 = statistics.quantiles(batches, n=10)[-1] if len(batches) > 1 else batches[0]
        median = statistics.median(batches)
        print(f"decide: wall per batch of {batch}: median {median:.1f} ms, p90 {p90:.1f} ms")
        # Every alert open, none due: what one tick costs while nothing happens.
        now = T0 + timedelta(minutes=rounds, seconds=1)
        await live.client.hset(live.seen_key, mapping={d.device_id: now.timestamp() for d in devices})
        ticks: list[float] = []
        for _ in range(5):
            t = time.process_time()
            await svc.tick(now)
            ticks.append((time.process_time() - t) * 1e3)
        async with db.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM alerts WHERE state <> 'resolved'")
            row = await cur.fetchone()
        print(
            f"tick: {row[0] if row else 0} open alerts, median {statistics.median(ticks):.1f} ms CPU per tick"
        )
        await _deliver(db, svc, now)
        if prof and profile:
            prof.dump_stats(profile)
    finally:
        await live.client.delete(live.seen_key, live.latest_key, f"{live.latest_key}:ts")
        await live.close()
        await db.close()
        await drop_schema(PG_URL, schema)


async def _ok(d: st.Delivery, now: datetime) -> None:
    return None


async def _refused(d: st.Delivery, now: datetime) -> None:
    raise DeliveryError("refused (bench)")


async def _deliver(db: Database, svc: AlertService, now: datetime) -> None:
    """Every queued row delivered once by the outbox worker (stub senders): CPU per attempt."""
    senders = {"victim": _ok, "command": _ok, "dispatch": _refused}
    # Nothing turns "failing" (an alert change of its own): only the attempts are measured.
    config = svc.config.model_copy(update={"failing_after_s": 1e6, "failing_after_attempts": 1000})
    worker = OutboxWorker(db, config, senders, svc._delivery_failing, "bench_alert_outbox_unused")
    due = now + timedelta(hours=1)  # every row due (a pursuit's end too)
    attempts, cpu = 0, 0.0
    while True:
        t = time.process_time()
        sent = await worker.deliver_due(due)
        cpu += time.process_time() - t
        attempts += sent
        if sent < config.batch_size:
            break
    per = cpu / attempts * 1e6 if attempts else 0.0
    print(f"deliver: {attempts} attempts in rounds of {config.batch_size}: {per:.0f} µs CPU each")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--updates", action="store_true", help="open once, then update (see above)")
    parser.add_argument("--profile", help="write cProfile stats of the decisions to this file")
    args = parser.parse_args()
    asyncio.run(run(args.cases, args.batch, args.rounds, args.updates, args.profile))


if __name__ == "__main__":
    main()
