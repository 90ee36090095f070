"""Violation reports to the prosecutor: the agreed term per (kind, risk) and the on-time overview. Pure.

The terms come from the data table ``report_terms.toml`` (hours). A report is *on time* when it was sent
at or before its due time; a report still open past its due time counts as *late* too.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib import resources

from emon.orders.legal import OrderKind

RISKS = ("low", "medium", "high")


def parse_terms(text: str) -> dict[str, dict[str, float]]:
    """{kind or "default": {risk: hours}}; the default row must name every risk."""
    data = tomllib.loads(text)
    if set(data.get("default", {})) != set(RISKS):
        raise ValueError(f"report terms: [default] must give hours for {RISKS}")
    unknown = set(data) - {"default", *(k.value for k in OrderKind)}
    if unknown:
        raise ValueError(f"report terms: unknown kinds {sorted(unknown)}")
    return {kind: {risk: float(h) for risk, h in row.items()} for kind, row in data.items()}


@cache
def shipped_terms() -> dict[str, dict[str, float]]:
    return parse_terms(resources.files("emon.orders").joinpath("report_terms.toml").read_text("utf-8"))


def report_term(kind: str, risk: str, terms: dict[str, dict[str, float]] | None = None) -> timedelta:
    """The agreed reporting term of a violation of an order of ``kind`` in a case of ``risk``."""
    table = shipped_terms() if terms is None else terms
    hours = table.get(kind, {}).get(risk, table["default"][risk])
    return timedelta(hours=hours)


@dataclass(frozen=True, slots=True)
class ReportRow:
    opened_at: datetime
    due_at: datetime
    reported_at: datetime | None


def overview(rows: Iterable[ReportRow], now: datetime) -> dict[str, float | int | None]:
    """Counts and durations (hours) of violation reports: on time, late (sent late or open past due),
    open within the term; median and maximum time to report of the sent ones."""
    on_time = late = open_in_term = 0
    took: list[float] = []
    for r in rows:
        if r.reported_at is not None:
            took.append((r.reported_at - r.opened_at).total_seconds() / 3600)
            if r.reported_at <= r.due_at:
                on_time += 1
            else:
                late += 1
        elif now > r.due_at:
            late += 1
        else:
            open_in_term += 1
    took.sort()
    median = (
        None
        if not took
        else (
            took[len(took) // 2] if len(took) % 2 else (took[len(took) // 2 - 1] + took[len(took) // 2]) / 2
        )
    )
    return {
        "total": on_time + late + open_in_term,
        "on_time": on_time,
        "late": late,
        "open_in_term": open_in_term,
        "median_hours_to_report": None if median is None else round(median, 2),
        "max_hours_to_report": None if not took else round(took[-1], 2),
    }
