"""The end-to-end benchmark with several ``emon serve`` instances (cluster mode, issue 11 item 4).

    .venv/bin/python -m benchmarks.e2e --devices 10000 --rate 3000 --duration 20 --instances 1,2,4

Per device count and per instance count N: one schema with the devices and cases of ``benchmarks.e2e``,
then N ``emon serve`` subprocesses on it, each with its own ``EMON_INSTANCE_ID`` (so cluster mode, also
for N = 1), MQTT client id and HTTP port, sharing the broker, PostgreSQL, the Redis prefix and the topic
prefix. The same load generator sends ``--rate`` fixes/s QoS 1 for ``--duration`` s.

**Every instance subscribes to every device topic and stores every message** (storage deduplicates on
the fix's key; docs/architecture.md): N instances do N times the ingest work for the same fixes, while
the cases' evaluation is spread over them by partition. So ingest throughput does not grow with N — on a
machine with 2 cores it shrinks once the instances saturate it. What N buys is continuity
(docs/reliability.md), not capacity. Reported per N: stored / loss, throughput, publish → stored per
fix (from the rows), fix → alert decided (the instances' histograms merged), each instance's CPU and
the whole machine's (``psutil.cpu_times``: every process on it, the load generator and servers too),
both over the run until the slowest instance has handled every fix (stored it, or found it stored).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from benchmarks.e2e_metrics import histogram, ms, parse_prometheus, quantile, sample
from benchmarks.e2e_setup import (
    EmonProcess,
    bench_cases,
    clear_redis,
    db_figures,
    emon_env,
    prepare_schema,
    publish,
    start_emon,
)
from emon.demo import free_port
from emon.storage.postgres import drop_schema
from simulators.load import LoadStats

DRAIN_STALL_S = 15.0
DRAIN_MAX_S = 180.0


@dataclass
class InstancesResult:
    n_devices: int
    instances: int
    load: LoadStats
    stored: int = 0
    throughput: float = 0.0
    latency_db: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    alert_decided_p99: float = math.nan
    duplicates: int = 0  # fixes an instance found already stored by another
    instance_cores: list[float] = field(default_factory=list)
    machine_cores: float = 0.0
    machine_percent: float = 0.0
    load_avg: float = 0.0  # 1-minute load average at the end: other work on the machine shows here

    @property
    def loss(self) -> int:
        return self.load.acked - self.stored


def _busy() -> tuple[float, float]:
    """(busy seconds, total seconds) of all cores since boot."""
    t = psutil.cpu_times()
    total = sum(t)
    return total - t.idle - getattr(t, "iowait", 0.0), total


def _merged(texts: list[dict[str, float]], name: str) -> list[tuple[float, float]]:
    """One histogram's buckets summed over the instances."""
    summed: dict[float, float] = {}
    for samples in texts:
        for le, count in histogram(samples, name):
            summed[le] = summed.get(le, 0.0) + count
    return sorted(summed.items())


async def _all_metrics(client: httpx.AsyncClient, ems: list[EmonProcess]) -> list[dict[str, float]]:
    return [parse_prometheus(await em.metrics_text(client)) for em in ems]


async def run_one(
    n: int, instances: int, rate: float, duration: float, batch_max: int, batch_wait_ms: float, keep: bool
) -> InstancesResult:
    tag = f"e2e{n}x{instances}_{int(time.time())}"
    base = emon_env(tag, free_port(), batch_max, batch_wait_ms)
    cases = await asyncio.to_thread(bench_cases, n)
    await asyncio.to_thread(prepare_schema, base, n, cases)
    await asyncio.to_thread(clear_redis, base["EMON_REDIS_PREFIX"])
    ems: list[EmonProcess] = []
    try:
        for i in range(1, instances + 1):
            port = free_port()
            env = dict(base)
            env.update(
                EMON_INSTANCE_ID=f"b{i}",
                EMON_MQTT_CLIENT_ID=f"{base['EMON_MQTT_CLIENT_ID']}-b{i}",
                EMON_HTTP_PORT=str(port),
            )
            log = Path(f"/tmp/emon-bench-{tag}-b{i}.log")
            ems.append(await start_emon(env, port, log))
        await asyncio.sleep(3.0)  # the lease is taken and the cases restored; start-up garbage settles
        procs = [psutil.Process(em.proc.pid) for em in ems]
        async with httpx.AsyncClient() as client:
            cpu0 = [sample(p).cpu_s for p in procs]
            machine0 = _busy()
            wall0 = t_start = time.perf_counter()
            load_task = asyncio.create_task(publish(n, rate, duration, base["EMON_MQTT_TOPIC_PREFIX"], 0))
            stored, handled, last_change, t_done = 0, 0, t_start, t_start
            while True:
                await asyncio.sleep(0.5)
                now = time.perf_counter()
                metrics = await _all_metrics(client, ems)
                accepted = sum(int(m.get("emon_fixes_accepted_total", 0)) for m in metrics)
                # Fixes each instance has handled (stored, or found stored by another): the slowest
                # instance's count says when every instance has worked through the load.
                slowest = min(
                    int(m.get("emon_fixes_accepted_total", 0) + m.get("emon_fixes_duplicate_total", 0))
                    for m in metrics
                )
                if accepted != stored:
                    stored, t_done, last_change = accepted, now, now
                if slowest != handled:
                    handled, last_change = slowest, now
                if load_task.done() and (
                    slowest >= load_task.result().acked
                    or now - last_change > DRAIN_STALL_S
                    or now - t_start > duration + DRAIN_MAX_S
                ):
                    break
            wall = time.perf_counter() - wall0
            machine1 = _busy()
            cpu1 = [sample(p).cpu_s for p in procs]
        r = InstancesResult(n, instances, load_task.result())
        r.throughput = stored / (t_done - t_start) if t_done > t_start else 0.0
        r.instance_cores = [(b - a) / wall for a, b in zip(cpu0, cpu1, strict=True)]
        busy, total = machine1[0] - machine0[0], machine1[1] - machine0[1]
        r.machine_cores = busy / wall
        r.machine_percent = 100 * busy / total if total else 0.0
        r.load_avg = os.getloadavg()[0]
        r.duplicates = int(sum(m.get("emon_fixes_duplicate_total", 0) for m in metrics))
        r.alert_decided_p99 = quantile(_merged(metrics, "emon_fix_to_alert_decided_seconds"), 0.99)
        r.stored, r.latency_db = await asyncio.to_thread(db_figures, base["EMON_DB_SCHEMA"])
        return r
    finally:
        for em in ems:
            em.stop()
        if not keep:
            await drop_schema(base["EMON_DATABASE_URL"], base["EMON_DB_SCHEMA"])
            await asyncio.to_thread(clear_redis, base["EMON_REDIS_PREFIX"])


def report(results: list[InstancesResult], rate: float, duration: float) -> None:
    print()
    print(
        f"machine: {psutil.cpu_count()} cores, shared by the load generator, Mosquitto, PostgreSQL, Redis "
        "and every instance"
    )
    print(f"offered: {rate:,.0f} fixes/s QoS 1 for {duration:.0f} s per run (one fix per message)")
    print(
        "every instance ingests every message (storage deduplicates), the cases' evaluation is spread over them "
        "by partition: N instances do N× the ingest work, so ingest does not scale with N"
    )
    print()
    print(
        "| devices | instances | stored / loss | throughput | publish→stored p50 / p99 (ms) "
        "| fix→alert decided p99 (ms) | duplicates refused | CPU per instance (cores) | whole machine | load avg |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        cores = " / ".join(f"{c:.2f}" for c in r.instance_cores)
        print(
            f"| {r.n_devices:,} | {r.instances} | {r.stored:,} / {r.loss:,} | {r.throughput:,.0f}/s "
            f"| {ms(r.latency_db[0])} / {ms(r.latency_db[2])} | {ms(r.alert_decided_p99)} "
            f"| {r.duplicates:,} | {cores} | {r.machine_cores:.2f} cores ({r.machine_percent:.0f} %) "
            f"| {r.load_avg:.1f} |"
        )


async def main_async(devices: list[int], counts: list[int], args: argparse.Namespace) -> None:
    results = []
    for n in devices:
        for k in counts:
            print(f"running {n:,} devices on {k} instance(s) …", flush=True)
            results.append(
                await run_one(n, k, args.rate, args.duration, args.batch_max, args.batch_wait_ms, args.keep)
            )
    report(results, args.rate, args.duration)
