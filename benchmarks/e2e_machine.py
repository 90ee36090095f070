"""The whole machine's CPU over a run, from ``/proc/stat``: every process counts (load generator, broker,
databases, emon, and whatever else shares the machine), next to the per-process figures."""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    busy_s: float  # all cores, seconds not idle (iowait counts as idle)
    total_s: float  # all cores, seconds


def read(path: str = "/proc/stat") -> CpuTimes:
    """The aggregate ``cpu`` line: user nice system idle iowait irq softirq steal (guest is inside user)."""
    with open(path, encoding="ascii") as f:
        fields = f.readline().split()
    if not fields or fields[0] != "cpu":
        raise RuntimeError(f"unexpected first line of {path}: {fields!r}")
    ticks = [int(x) for x in fields[1:9]]
    idle = ticks[3] + ticks[4]
    return CpuTimes((sum(ticks) - idle) * _TICK_S, sum(ticks) * _TICK_S)


def busy_cores(before: CpuTimes, after: CpuTimes, wall_s: float) -> tuple[float, float]:
    """(cores busy on average, percent of the machine busy) between two readings ``wall_s`` apart."""
    busy = after.busy_s - before.busy_s
    total = after.total_s - before.total_s
    return (busy / wall_s if wall_s > 0 else 0.0), (100.0 * busy / total if total > 0 else 0.0)
