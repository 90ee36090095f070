"""The report of ``benchmarks.e2e``: one block per run, then memory per device, the ceiling and the baseline."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from benchmarks import e2e_tracks as tracks
from benchmarks.e2e_decisions import LAST_BUCKET_S, MIN_DECISIONS, TARGET_S, Decided
from benchmarks.e2e_metrics import ms

if TYPE_CHECKING:
    from benchmarks import postgis_baseline
    from benchmarks.e2e import Ceiling, RunResult


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _ms(seconds: float) -> str:
    return f"> {LAST_BUCKET_S * 1e3:,.0f}" if math.isinf(seconds) else ms(seconds)


def _report_decisions(r: RunResult, d: Decided) -> None:
    verdict = "holds" if d.enough else "does NOT hold"
    print(
        f"  fix→alert decided per decision (histogram) ms: {_ms(d.p50)}/{_ms(d.p95)}/{_ms(d.p99)} "
        f"over {d.count:,} decisions (≥ {MIN_DECISIONS:,}: {verdict}); "
        f"≤ {TARGET_S * 1e3:.0f} ms: {100 * d.within_target:.1f} %"
    )
    if r.changes is not None:
        c = r.changes
        print(
            f"  alert changes stored: {c.total:,} ({_counts(c.by_action)}); decided in the "
            f"{tracks.WARMUP_S:.0f} s warm-up: {c.before:,}; alerts by type: {_counts(c.by_type)}"
            + (f"; notes, not decisions: {_counts(c.notes)}" if c.notes else "")
        )
    offenders, entered, left = r.crossings
    if offenders:
        print(
            f"  crossings: of {offenders:,} offenders {entered:,} entered their zone during the load, "
            f"{left:,} of them also left it"
        )


def _kib(b: float) -> str:
    return f"{b / 1024:,.0f} KiB"


def report(
    results: list[RunResult],
    ceiling: Ceiling | None,
    baseline: postgis_baseline.BaselineResult | None,
    rate: float,
    duration: float,
) -> None:
    print()
    print(f"machine: {os.cpu_count()} cores; load generator, Mosquitto, emon and PostgreSQL share them")
    print(f"offered: {rate:,.0f} fixes/s QoS 1 for {duration:.0f} s per run (one fix per message)")
    for r in results:
        print()
        if r.overload:
            print(
                f"== OVERLOAD run at {r.load.achieved_rate:,.0f}/s offered: capacity, not a zero-loss figure "
                "(Mosquitto drops beyond ~1,000 queued messages per client)"
            )
        print(
            f"== {r.n_devices:,} devices, {r.n_cases:,} cases ({r.n_cases * 5:,} zones); emon ready in {r.startup_s:.1f} s"
        )
        print(
            f"  published {r.load.sent:,} at {r.load.achieved_rate:,.0f}/s, acked {r.load.acked:,}; "
            f"stored {r.stored:,} (metric {r.accepted_metric:,}); LOSS {r.loss:,}"
        )
        print(
            f"  throughput {r.throughput:,.0f} fixes/s stored (first publish → last stored; "
            f"drain after publishing {r.drain_s:.1f} s)"
        )
        print(f"  publish→stored per fix (DB) p50/p95/p99 ms: {'/'.join(ms(x) for x in r.latency_db)}")
        print(f"  receive→stored per batch (histogram) ms: {'/'.join(ms(x) for x in r.receive_to_stored)}")
        print(f"  evaluation per batch (histogram) ms: {'/'.join(ms(x) for x in r.evaluation)}")
        if r.decided is not None:
            _report_decisions(r, r.decided)
        else:
            decided = tuple(a + b for a, b in zip(r.receive_to_stored, r.evaluation, strict=True))
            print(
                f"  receive→evaluation decided (stored + evaluation, summed quantiles, alerts not wired) ms: "
                f"{'/'.join(ms(x) for x in decided)}"
            )
        print(
            f"  CPU cores busy: emon {r.emon_cores:.2f} ({r.emon_cpu_us_per_fix:.0f} µs/fix), "
            f"mosquitto {r.broker_cores:.2f}, publisher {r.publisher_cores:.2f}, postgres ≥ {r.postgres_cores:.2f}; "
            f"whole machine {r.machine_cores:.2f} of {os.cpu_count()} ({r.machine_percent:.0f} %, /proc/stat)"
        )
        print(
            f"  emon RSS idle {_kib(r.rss_idle)} ({r.rss_idle / r.n_devices:,.0f} B/device incl. the interpreter), "
            f"after load {_kib(r.rss_after)}, peak {_kib(r.rss_peak)}"
        )
        for note in r.notes:
            print(f"  note: {note}")
    sustained = [r for r in results if not r.overload]
    if len(sustained) >= 2:
        lo, hi = min(sustained, key=lambda x: x.n_devices), max(sustained, key=lambda x: x.n_devices)
        dn = hi.n_devices - lo.n_devices
        print()
        print(
            f"memory per monitored device (slope {lo.n_devices:,} → {hi.n_devices:,} devices, 1 case per 10): "
            f"idle {(hi.rss_idle - lo.rss_idle) / dn:,.0f} B, after load {(hi.rss_after - lo.rss_after) / dn:,.0f} B"
        )
    if ceiling is not None:
        print()
        print(
            f"ceiling: bare aiomqtt subscriber (QoS 1, persistent session) received {ceiling.received:,} of "
            f"{ceiling.load.acked:,} acked at {ceiling.rate:,.0f} msg/s ({ceiling.cores:.2f} cores)"
        )
        for r in results:
            if ceiling.rate:
                label = "overload" if r.overload else f"{r.load.achieved_rate:,.0f}/s offered"
                print(
                    f"  emon at {r.n_devices:,} devices ({label}): {r.throughput / ceiling.rate:.2f} of the ceiling"
                )
    if baseline is not None:
        print()
        if not baseline.available:
            print(f"baseline: {baseline.detail}")
        else:
            print(
                f"baseline: one PostGIS ST_DWithin query per fix ({baseline.detail}, {baseline.zones:,} zones): "
                f"{baseline.rate:,.0f} fixes/s"
            )
            for r in results:
                print(f"  emon at {r.n_devices:,} devices / baseline: {r.throughput / baseline.rate:.2f}")
