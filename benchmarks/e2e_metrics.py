"""Reading what the benchmark measures: Prometheus text, histogram quantiles, process CPU and memory."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import psutil


def parse_prometheus(text: str) -> dict[str, float]:
    """``name{labels}`` → value for every sample line (labels kept verbatim in the key)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            continue
    return out


def histogram(samples: dict[str, float], name: str, label: str = "") -> list[tuple[float, float]]:
    """Cumulative buckets ``[(le, count), …]`` of a histogram, sorted by ``le``; of its series with
    ``label`` (e.g. ``'stage="alerting"'``) when given."""
    prefix = f"{name}_bucket{{"
    buckets = []
    for key, value in samples.items():
        if key.startswith(prefix) and label in key and (le := re.search(r'le="([^"]+)"', key)):
            buckets.append((math.inf if le[1] == "+Inf" else float(le[1]), value))
    return sorted(buckets)


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus-style ``histogram_quantile``: linear interpolation inside the bucket (seconds)."""
    if not buckets or buckets[-1][1] == 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower_le  # beyond the last finite bucket: report its bound
            if count == lower_count:
                return le
            return lower_le + (le - lower_le) * (rank - lower_count) / (count - lower_count)
        lower_le, lower_count = le, count
    return math.nan


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_s: float  # user + system seconds since the process started
    rss: int  # bytes


def sample(proc: psutil.Process) -> ProcSample:
    t = proc.cpu_times()
    return ProcSample(t.user + t.system, proc.memory_info().rss)


def find_process(name: str) -> psutil.Process | None:
    for p in psutil.process_iter(["name"]):
        if p.info["name"] == name:
            return p
    return None


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1e3:.1f}"
