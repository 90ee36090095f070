"""What a benchmark run decided: alert changes counted in the schema, and fix → alert latency per decision.

Issue #14's target is a p99 over at least ``MIN_DECISIONS`` decisions, each one an alert change (opened,
worsened, updated, resolved …) decided from a fix and committed with its outbox rows. The rows
(``alert_history``, one per change) say how many there were and when; the histogram
``emon_fix_to_alert_decided_seconds`` (one sample per change) says how long each took from the MQTT
receipt of its batch's first message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from benchmarks.e2e_metrics import histogram, quantile

MIN_DECISIONS = 1_000
TARGET_S = 0.050
HISTOGRAM = "emon_fix_to_alert_decided_seconds"
LAST_BUCKET_S = 10.0  # the histogram's last finite bucket (emon/alerts/metrics.py)


@dataclass(frozen=True, slots=True)
class Decided:
    """Fix → alert decided over the run: samples, p50/p95/p99 (seconds), share within ``TARGET_S``."""

    count: int
    p50: float
    p95: float
    p99: float
    within_target: float  # 0..1

    @property
    def enough(self) -> bool:
        return self.count >= MIN_DECISIONS


def decided(samples: dict[str, float]) -> Decided:
    """From one scrape of emon's metrics. ``TARGET_S`` is a bucket bound, so the share is exact."""
    buckets = histogram(samples, HISTOGRAM)
    total = buckets[-1][1] if buckets else 0.0
    within = next((c for le, c in buckets if math.isclose(le, TARGET_S)), math.nan)
    return Decided(
        int(total),
        _quantile(buckets, 0.5),
        _quantile(buckets, 0.95),
        _quantile(buckets, 0.99),
        within / total if total else math.nan,
    )


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """As :func:`benchmarks.e2e_metrics.quantile`, but ``inf`` beyond the last finite bucket (which that
    function reports as the bucket's bound: a 10 s p99 would read as if it were measured)."""
    finite = [c for le, c in buckets if not math.isinf(le)]
    if buckets and finite and q * buckets[-1][1] > finite[-1]:
        return math.inf
    return quantile(buckets, q)


# History rows that record a notification not sent (no webhook, no victim device), not a decision.
_NOTES = ("police_not_notified", "victim_not_notified")


@dataclass(frozen=True, slots=True)
class Changes:
    """Alert changes stored in the schema: per action, the alerts per (current) type, the notification
    notes beside them, and how many changes were decided before the end of the warm-up."""

    by_action: dict[str, int]
    by_type: dict[str, int]
    notes: dict[str, int]
    before: int

    @property
    def total(self) -> int:
        return sum(self.by_action.values())


def stored_changes(pg_url: str, schema: str, since: datetime) -> Changes:
    """Count the ``alert_history`` rows of ``schema`` that are decided changes (one per change; the
    notes of notifications not sent are counted apart); ``since`` (UTC) is the end of the warm-up."""
    with psycopg.connect(pg_url) as conn:
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        rows = conn.execute(
            "SELECT action, count(*) FROM alert_history GROUP BY action ORDER BY 2 DESC"
        ).fetchall()
        types = conn.execute("SELECT type, count(*) FROM alerts GROUP BY type ORDER BY 2 DESC").fetchall()
        early = conn.execute(
            "SELECT count(*) FROM alert_history WHERE at < %s AND action <> ALL(%s)", (since, list(_NOTES))
        ).fetchone()
    actions = {str(a): int(c) for a, c in rows}
    return Changes(
        {a: c for a, c in actions.items() if a not in _NOTES},
        {str(t): int(c) for t, c in types},
        {a: c for a, c in actions.items() if a in _NOTES},
        int(early[0]) if early else 0,
    )


def warmup_end(start_wall_s: float, warmup_s: float) -> datetime:
    """The end of the warm-up as a UTC datetime, from the load's start (Unix seconds)."""
    return datetime.fromtimestamp(start_wall_s + warmup_s, UTC)
