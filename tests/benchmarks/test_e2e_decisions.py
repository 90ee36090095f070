"""Reading a run's decisions and the machine's CPU: per-decision quantiles and counts, /proc/stat."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks import e2e_machine
from benchmarks.e2e_decisions import MIN_DECISIONS, decided

NAME = "emon_fix_to_alert_decided_seconds"


def scrape(buckets: dict[str, float]) -> dict[str, float]:
    return {f'{NAME}_bucket{{le="{le}"}}': count for le, count in buckets.items()}


def test_decided_counts_decisions_and_the_exact_share_within_50_ms() -> None:
    # 1,200 decisions: 900 ≤ 10 ms, 1,164 ≤ 50 ms, 12 beyond 100 ms
    d = decided(scrape({"0.01": 900, "0.025": 1100, "0.05": 1164, "0.1": 1188, "+Inf": 1200}))
    assert d.count == 1200 and d.enough
    assert d.within_target == pytest.approx(0.97)
    assert d.p50 == pytest.approx(0.01 * 600 / 900)
    assert 0.025 < d.p95 < 0.05 and 0.05 < d.p99 <= 0.1


def test_too_few_decisions_are_said_so() -> None:
    d = decided(scrape({"0.05": MIN_DECISIONS - 1, "+Inf": MIN_DECISIONS - 1}))
    assert not d.enough and d.within_target == 1.0
    none = decided({})
    assert none.count == 0 and not none.enough and math.isnan(none.p99)


def test_a_quantile_beyond_the_last_bucket_is_not_read_as_its_bound() -> None:
    d = decided(scrape({"0.05": 10, "10.0": 50, "+Inf": 100}))
    assert d.p50 == pytest.approx(10.0) and math.isinf(d.p95) and math.isinf(d.p99)


def test_machine_cores_from_proc_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    tick = e2e_machine._TICK_S
    # user nice system idle iowait irq softirq steal guest guest_nice; iowait counts as idle
    stat.write_text("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n")
    a = e2e_machine.read(str(stat))
    stat.write_text("cpu  250 0 100 900 150 0 0 0 0 0\n")
    b = e2e_machine.read(str(stat))
    assert b.busy_s - a.busy_s == pytest.approx(200 * tick)
    cores, percent = e2e_machine.busy_cores(a, b, wall_s=200 * tick)
    assert cores == pytest.approx(1.0) and percent == pytest.approx(50.0)


def test_postgres_cpu_counts_only_processes_alive_at_the_end() -> None:
    """A backend that ended during the run no longer subtracts its whole life's CPU."""
    from benchmarks.e2e import _cpu_spent

    before = {1: 10.0, 2: 50.0}
    after = {1: 12.5, 3: 0.5}  # 2 ended, 3 started
    assert _cpu_spent(before, after) == 3.0
