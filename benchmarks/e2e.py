"""End-to-end benchmark (not a test): load generator → Mosquitto → ``emon serve`` → PostgreSQL/Redis.

    .venv/bin/python -m benchmarks.e2e [--devices 1000,10000,100000] [--rate 5000] [--duration 10]
                                       [--overload-rate 20000]
                                       [--publishers 0] [--ceiling-devices 10000] [--no-baseline]
                                       [--instances 1,2,4] [--profile DIR]

For every device count: a fresh schema with N devices and N/10 cases (offender + victim device,
5 zones each) inserted with SQL, emon started as a subprocess on its own schema, topic prefix,
Redis prefix and MQTT client id, then ``--rate`` fixes/s QoS 1 for ``--duration`` s from the load
generator (``benchmarks.e2e_publisher``); every offender drives through its first zone once during
the run, after a 2 s warm-up (``benchmarks.e2e_tracks``). Reported:

- throughput: fixes stored ÷ (first publish → last fix stored); loss = PUBACKed publishes − rows
  in the fixes table (must be 0);
- latency publish → stored per fix, from the rows (``received_at − ts``; ``ts`` is the publish
  time, ``received_at`` is the start of the storing transaction), and the emon histograms
  receive → stored and evaluation per batch (p50/p95/p99);
- fix → alert decided per decision (p50/p95/p99, the number of decisions, the share ≤ 50 ms, whether
  the ≥ 1,000 decisions of issue #14 were reached) and the alert changes stored, by action
  (``benchmarks.e2e_decisions``);
- CPU of emon (cores busy, µs per fix), of Mosquitto, of this process (the publisher), of PostgreSQL
  and of the whole machine (``/proc/stat``);
- resident memory of emon idle and after the load, and the marginal memory per monitored device
  (slope between the smallest and the largest device count).

The PostGIS baseline runs first, on a settled machine; after the runs, the ceiling (a bare aiomqtt subscriber under the same load).
``--instances 1,2,4`` runs several instances instead (``benchmarks.e2e_instances``); ``--profile DIR``
samples emon with py-spy over each run's measured window (``benchmarks.e2e_profile``).
Everything runs on 127.0.0.1 and shares the machine's cores; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from benchmarks import e2e_instances, e2e_machine, postgis_baseline
from benchmarks import e2e_tracks as tracks
from benchmarks.e2e_decisions import Changes, Decided, decided, stored_changes, warmup_end
from benchmarks.e2e_metrics import find_process, histogram, parse_prometheus, quantile, sample
from benchmarks.e2e_profile import Profile
from benchmarks.e2e_report import report
from benchmarks.e2e_setup import (
    PG_URL,
    EmonProcess,
    bench_cases,
    clear_redis,
    db_figures,
    device_positions,
    emon_env,
    prepare_schema,
    publish,
    start_emon,
)
from emon.demo import free_port
from emon.storage.postgres import drop_schema
from simulators.load import LoadStats

DRAIN_STALL_S = 15.0  # give up waiting for the last fixes after this long without progress
DRAIN_MAX_S = 180.0
SETTLE_MAX_S = 15.0  # wait at most this long for the last alert decisions after the last fix is stored


@dataclass
class RunResult:
    n_devices: int
    n_cases: int
    startup_s: float
    load: LoadStats
    stored: int = 0
    accepted_metric: int = 0
    throughput: float = 0.0
    drain_s: float = 0.0
    latency_db: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    receive_to_stored: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    evaluation: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    decided: Decided | None = None
    changes: Changes | None = None
    crossings: tuple[int, int, int] = (0, 0, 0)  # offenders, entered, entered and left during the load
    emon_cores: float = 0.0
    emon_cpu_us_per_fix: float = 0.0
    broker_cores: float = math.nan
    publisher_cores: float = 0.0
    postgres_cores: float = math.nan
    machine_cores: float = 0.0
    machine_percent: float = 0.0
    rss_idle: int = 0
    rss_after: int = 0
    rss_peak: int = 0
    notes: list[str] = field(default_factory=list)
    overload: bool = False

    @property
    def loss(self) -> int:
        return self.load.acked - self.stored


def _quantiles(samples: dict[str, float], name: str) -> tuple[float, float, float]:
    b = histogram(samples, name)
    return (quantile(b, 0.5), quantile(b, 0.95), quantile(b, 0.99))


def _gc_pauses(samples: dict[str, float]) -> str:
    """The garbage collector's pauses since emon started, by generation (count, total, longest bucket)."""
    parts = []
    for gen in ("0", "1", "2"):
        n = samples.get(f'emon_gc_pause_seconds_count{{generation="{gen}"}}', 0.0)
        total = samples.get(f'emon_gc_pause_seconds_sum{{generation="{gen}"}}', 0.0)
        buckets = histogram(samples, "emon_gc_pause_seconds", f'generation="{gen}"')
        longest = min((le for le, count in buckets if count >= n), default=math.inf)
        parts.append(f"gen {gen}: {n:,.0f} in {total * 1000:,.0f} ms (each ≤ {longest * 1000:g} ms)")
    return "garbage collector pauses since start: " + "; ".join(parts)


def _decision_stages(samples: dict[str, float]) -> str:
    """Where the decisions' time went (``emon_decision_stage_seconds``), p50/p99 per stage."""
    parts = []
    for stage in ("to_evaluation", "evaluation", "behind", "alerting"):
        buckets = histogram(samples, "emon_decision_stage_seconds", f'stage="{stage}"')
        p50, p99 = quantile(buckets, 0.5), quantile(buckets, 0.99)
        parts.append(f"{stage} {p50 * 1000:.1f}/{p99 * 1000:.1f}")
    stages = "received → evaluation starts, evaluation, behind, alerting"
    return f"decision stages p50/p99 ms ({stages}): " + ", ".join(parts)


def _postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process, by pid."""
    out: dict[int, float] = {}
    for p in psutil.process_iter(["name", "cpu_times"]):
        if p.info["name"] == "postgres" and p.info["cpu_times"] is not None:
            out[p.pid] = p.info["cpu_times"].user + p.info["cpu_times"].system
    return out


def _cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings by the processes alive at the second (a backend that ended
    in between is not counted: a lower bound, never the negative sum a plain difference gave)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


async def _settled(em: EmonProcess, client: httpx.AsyncClient) -> dict[str, float]:
    """A scrape once the alert decisions of the last fixes are in (the count stops moving; bounded)."""
    key = "emon_fix_to_alert_decided_seconds_count"
    samples = parse_prometheus(await em.metrics_text(client))
    deadline = time.monotonic() + SETTLE_MAX_S
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        again = parse_prometheus(await em.metrics_text(client))
        if again.get(key, 0) == samples.get(key, 0):
            return again
        samples = again
    return samples


async def run_one(
    n: int,
    rate: float,
    duration: float,
    publishers: int,
    batch_max: int,
    batch_wait_ms: float,
    keep: bool,
    profile: Path | None = None,
) -> RunResult:
    """One run; with ``profile`` (a file path) py-spy samples emon over the measured window."""
    tag = f"e2e{n}_{os.getpid()}"
    port = free_port()
    env = emon_env(tag, port, batch_max, batch_wait_ms)
    cases = await asyncio.to_thread(bench_cases, n)
    await asyncio.to_thread(prepare_schema, env, n, cases)
    await asyncio.to_thread(clear_redis, env["EMON_REDIS_PREFIX"])
    log_path = Path(tempfile.gettempdir()) / f"emon-bench-{tag}.log"
    t = time.perf_counter()
    em = await start_emon(env, port, log_path)
    startup = time.perf_counter() - t
    proc = psutil.Process(em.proc.pid)
    broker = find_process("mosquitto")
    me = psutil.Process()
    spy: Profile | None = None
    try:
        await asyncio.sleep(1.0)  # let the start-up garbage settle
        idle = sample(proc)
        broker0 = broker.cpu_times() if broker else None
        me0 = me.cpu_times()
        pg0 = _postgres_cpu()
        machine0 = e2e_machine.read()
        wall0 = time.perf_counter()
        peak = idle.rss
        progress: list[tuple[float, int]] = []
        async with httpx.AsyncClient() as client:
            spy = None if profile is None else Profile(em.proc.pid, profile)
            t_start, t_start_wall = time.perf_counter(), time.time()
            load_task = asyncio.create_task(
                publish(n, rate, duration, env["EMON_MQTT_TOPIC_PREFIX"], publishers)
            )
            accepted = 0
            last_change = time.perf_counter()
            while True:
                await asyncio.sleep(0.5)
                samples = parse_prometheus(await em.metrics_text(client))
                now = time.perf_counter()
                new = int(samples.get("emon_fixes_accepted_total", 0))
                if new != accepted:
                    accepted, last_change = new, now
                    progress.append((now, new))
                peak = max(peak, proc.memory_info().rss)
                if load_task.done():
                    target = load_task.result().acked
                    if accepted >= target:
                        break
                    if now - last_change > DRAIN_STALL_S or now - t_start > duration + DRAIN_MAX_S:
                        break
            load = load_task.result()
            profiled = None if spy is None else await asyncio.to_thread(spy.stop)
            t_done = next((tp for tp, c in progress if c >= accepted), time.perf_counter())
            after = sample(proc)
            wall = time.perf_counter() - wall0
            me1 = me.cpu_times()
            pg1 = _postgres_cpu()
            machine1 = e2e_machine.read()
            samples = await _settled(em, client)
        r = RunResult(n, len(cases), startup, load)
        r.accepted_metric = accepted
        r.throughput = accepted / (t_done - t_start) if t_done > t_start else 0.0
        r.drain_s = t_done - t_start - load.elapsed_s
        r.emon_cores = (after.cpu_s - idle.cpu_s) / wall
        r.emon_cpu_us_per_fix = (after.cpu_s - idle.cpu_s) / max(1, accepted) * 1e6
        if broker is not None and broker0 is not None:
            b1 = broker.cpu_times()
            r.broker_cores = (b1.user + b1.system - broker0.user - broker0.system) / wall
        r.publisher_cores = (me1.user + me1.system - me0.user - me0.system) / wall
        r.postgres_cores = _cpu_spent(pg0, pg1) / wall
        r.machine_cores, r.machine_percent = e2e_machine.busy_cores(machine0, machine1, wall)
        r.rss_idle, r.rss_after, r.rss_peak = idle.rss, after.rss, max(peak, after.rss)
        r.receive_to_stored = _quantiles(samples, "emon_receive_to_stored_seconds")
        r.evaluation = _quantiles(samples, "emon_evaluation_seconds")
        if samples.get("emon_fix_to_alert_decided_seconds_count", 0) > 0:
            r.decided = decided(samples)
        schema = env["EMON_DB_SCHEMA"]
        r.changes = await asyncio.to_thread(
            stored_changes, PG_URL, schema, warmup_end(t_start_wall, tracks.WARMUP_S)
        )
        if publishers == 0:
            homes = await asyncio.to_thread(device_positions, n)
            crossing = await asyncio.to_thread(tracks.schedule, n, rate, duration, homes)
            r.crossings = (len(crossing), *tracks.inside_during(crossing, 0.0, load.elapsed_s))
        if profiled is not None:
            r.notes.append(profiled)
        batches = samples.get("emon_receive_to_stored_seconds_count", 0.0)
        if batches:
            r.notes.append(f"batches stored: {batches:,.0f}, {accepted / batches:,.0f} fixes each on average")
        r.notes.append(_gc_pauses(samples))
        if samples.get('emon_decision_stage_seconds_count{stage="alerting"}', 0) > 0:
            r.notes.append(_decision_stages(samples))
        rejected = {k: v for k, v in samples.items() if k.startswith("emon_rejected_total") and v}
        if rejected:
            r.notes.append(f"dead letters: {rejected}")
        r.stored, r.latency_db = await asyncio.to_thread(db_figures, env["EMON_DB_SCHEMA"])
        return r
    finally:
        if spy is not None and spy.proc.poll() is None:
            spy.stop()  # the run failed while sampling: never leave py-spy behind
        em.stop()
        if not keep:
            await drop_schema(PG_URL, env["EMON_DB_SCHEMA"])
            await asyncio.to_thread(clear_redis, env["EMON_REDIS_PREFIX"])


@dataclass(frozen=True, slots=True)
class Ceiling:
    received: int
    load: LoadStats
    rate: float
    cores: float


async def run_ceiling(n: int, rate: float, duration: float, publishers: int) -> Ceiling:
    """The bare subscriber under the same load as emon: how fast can one aiomqtt process receive?"""
    prefix = f"bench/ceiling{os.getpid()}"
    expect = math.floor(rate * duration)
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurement
        [
            sys.executable,
            "-m",
            "benchmarks.e2e_ceiling",
            "--prefix",
            prefix,
            "--expect",
            str(expect),
            "--idle",
            "10",
            "--client-id",
            f"emon-bench-ceiling-{os.getpid()}",
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    ready = await asyncio.to_thread(proc.stdout.readline)
    if not ready:
        raise RuntimeError("ceiling subscriber did not start")
    ps = psutil.Process(proc.pid)
    c0 = sample(ps)
    t0 = time.time()
    load = await publish(n, rate, duration, prefix, publishers)
    line = await asyncio.to_thread(proc.stdout.readline)
    c1 = sample(ps)
    wall = time.time() - t0
    await asyncio.to_thread(proc.wait, 30)
    out = json.loads(line)
    span = out["last"] - t0
    return Ceiling(
        int(out["count"]), load, out["count"] / span if span > 0 else 0.0, (c1.cpu_s - c0.cpu_s) / wall
    )


def _profile_path(directory: str, name: str) -> Path | None:
    """One file per run in ``--profile DIR`` (time-stamped: runs never overwrite each other)."""
    if not directory:
        return None
    return Path(directory) / f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.txt"


async def main_async(args: argparse.Namespace) -> None:
    devices = [int(x) for x in args.devices.split(",")]
    if args.instances:
        await e2e_instances.main_async(devices, [int(x) for x in args.instances.split(",")], args)
        return
    baseline = None
    if not args.no_baseline:
        # First, on a settled machine: run after the overload it read 2–3 times lower than alone.
        print("running the PostGIS baseline …", flush=True)
        baseline = await postgis_baseline.run(args.ceiling_devices, args.baseline_duration, 4)
        if baseline.available:
            await asyncio.to_thread(postgis_baseline.cleanup)
    results = []
    for n in devices:
        print(f"running {n:,} devices …", flush=True)
        results.append(
            await run_one(
                n,
                args.rate,
                args.duration,
                args.publishers,
                args.batch_max,
                args.batch_wait_ms,
                args.keep,
                _profile_path(args.profile, f"e2e-{n}-{args.rate:.0f}"),
            )
        )
    if args.overload_rate > 0:
        print(
            f"running {args.ceiling_devices:,} devices at {args.overload_rate:,.0f}/s (overload) …",
            flush=True,
        )
        over = await run_one(
            args.ceiling_devices,
            args.overload_rate,
            args.duration,
            args.publishers,
            args.batch_max,
            args.batch_wait_ms,
            args.keep,
            _profile_path(args.profile, f"e2e-{args.ceiling_devices}-{args.overload_rate:.0f}-overload"),
        )
        over.overload = True
        results.append(over)
    ceiling = None
    if not args.no_ceiling:
        print("running the ceiling …", flush=True)
        ceiling = await run_ceiling(
            args.ceiling_devices, args.overload_rate or args.rate, args.duration, args.publishers
        )
    report(results, ceiling, baseline, args.rate, args.duration)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", default="1000,10000,100000")
    ap.add_argument("--rate", type=float, default=5_000, help="offered fixes/s of the zero-loss runs")
    ap.add_argument(
        "--overload-rate",
        type=float,
        default=20_000,
        help="offered fixes/s of the capacity run and the ceiling (0: skip the capacity run)",
    )
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument(
        "--publishers",
        type=int,
        default=0,
        help="0: raw-socket generator (benchmarks.e2e_publisher); N: simulators.load with N paho processes",
    )
    ap.add_argument("--batch-max", type=int, default=1000)
    ap.add_argument("--batch-wait-ms", type=float, default=20)
    ap.add_argument("--ceiling-devices", type=int, default=10_000)
    ap.add_argument("--baseline-duration", type=float, default=10)
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the schemas for inspection")
    ap.add_argument(
        "--profile",
        default="",
        metavar="DIR",
        help="py-spy (--nonblocking, raw) on emon over the measured window of each run, one file per run",
    )
    ap.add_argument(
        "--instances",
        default="",
        help="e.g. 1,2,4: run N emon instances (cluster mode) per device count instead of the default "
        "runs, and print one table (benchmarks.e2e_instances)",
    )
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
