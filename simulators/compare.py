"""Expected alerts versus observed ones: pure, so it is tested on recorded observations.

Observations come from the alerts API (``opened_at``, ``recipients``) and from the warnings the
simulated victim devices received. Times are converted to *scenario seconds* since the start
(real elapsed seconds x compression) before they are compared with ``within_s``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from emon.alerts.types import AlertType
from simulators.driver import Notification
from simulators.scenario import Expectation

_ROLE_KEYS = ("role", "recipient", "kind")


@dataclass(frozen=True, slots=True)
class Observed:
    """One alert seen by the runner, ``at_s`` scenario seconds after the start."""

    type: str
    recipients: frozenset[str]
    at_s: float
    source: Literal["api", "notify"]
    alert_id: str


def _recipients(raw: Any) -> frozenset[str]:
    """Accepts ``["victim", ...]`` or ``[{"role": "victim", ...}, ...]`` (also ``recipient``/``kind``)."""
    out: set[str] = set()
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, Mapping):
            role = next((item[k] for k in _ROLE_KEYS if isinstance(item.get(k), str)), None)
            if role is not None:
                out.add(role)
    return frozenset(out)


def _parse_ts(raw: Any) -> datetime | None:
    if isinstance(raw, int | float):
        return datetime.fromtimestamp(raw, UTC)
    if not isinstance(raw, str):
        return None
    try:
        ts = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


def observed_from_api(
    alerts: Iterable[Any], *, start: datetime, compression: float
) -> tuple[list[Observed], int]:
    """Alerts from ``GET /api/v1/alerts`` opened since ``start``; also returns how many entries
    could not be read (no ``type`` or no timezone-aware ``opened_at``)."""
    out: list[Observed] = []
    bad = 0
    for alert in alerts:
        opened = _parse_ts(alert.get("opened_at")) if isinstance(alert, Mapping) else None
        if opened is None or not isinstance(alert.get("type"), str):
            bad += 1
            continue
        at_s = (opened - start).total_seconds() * compression
        if at_s < -compression:  # opened before this run (an earlier run of the same case)
            continue
        recipients = _recipients(alert.get("recipients"))
        out.append(Observed(alert["type"], recipients, at_s, "api", str(alert.get("alert_id", ""))))
    return out, bad


def observed_from_notifications(
    notifications: Iterable[Notification], *, start: datetime, compression: float
) -> list[Observed]:
    """Warnings that reached a simulated victim device (recipient ``victim``)."""
    return [
        Observed(
            str(n.payload.get("type", "")),
            frozenset({"victim"}),
            (n.received_at - start).total_seconds() * compression,
            "notify",
            str(n.payload.get("alert_id", "")),
        )
        for n in notifications
    ]


@dataclass(frozen=True, slots=True)
class Row:
    expectation: Expectation
    match: Observed | None

    @property
    def ok(self) -> bool:
        return self.match is not None


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """Expected versus observed for one run; ``passed`` when every expectation is met, no forbidden
    type was seen, and no alert entry was unreadable."""

    scenario: str
    rows: tuple[Row, ...]
    forbidden: tuple[Observed, ...]
    observed: tuple[Observed, ...]
    unreadable: int = 0
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(r.ok for r in self.rows) and not self.forbidden and not self.unreadable

    def report(self) -> str:
        """A plain-text table, one line per expectation and per forbidden alert seen."""
        lines = [f"scenario {self.scenario}: {'PASS' if self.passed else 'FAIL'}"]
        lines.append(f"  {'expected':<44} {'within':>8} {'seen at':>9}  {'via':<6} result")
        for r in self.rows:
            e = r.expectation
            seen = f"{r.match.at_s:8.1f}s" if r.match else "        -"
            via = r.match.source if r.match else ""
            label = f"{e.type.value} -> {e.recipient.value}"
            lines.append(f"  {label:<44} {e.within_s:7.0f}s {seen}  {via:<6} {'ok' if r.ok else 'MISSING'}")
        for o in self.forbidden:
            label = f"{o.type} (forbidden) -> {','.join(sorted(o.recipients)) or '?'}"
            lines.append(f"  {label:<44} {'':>8} {o.at_s:8.1f}s  {o.source:<6} UNEXPECTED")
        if self.unreadable:
            lines.append(f"  {self.unreadable} alert entries without type/opened_at")
        lines.extend(f"  note: {n}" for n in self.notes)
        lines.append(f"  observed: {len(self.observed)} alert(s)/warning(s)")
        return "\n".join(lines)


def compare(
    scenario: str,
    expect: Sequence[Expectation],
    expect_none_of: Iterable[AlertType],
    observed: Sequence[Observed],
    *,
    slack_s: float = 0.0,
    unreadable: int = 0,
    notes: Sequence[str] = (),
) -> ScenarioResult:
    """Match each expectation with the earliest observation of that type naming that recipient
    within ``within_s + slack_s`` scenario seconds; list observations of forbidden types."""
    ordered = sorted(observed, key=lambda o: o.at_s)
    rows = tuple(
        Row(
            e,
            next(
                (
                    o
                    for o in ordered
                    if o.type == e.type.value
                    and e.recipient.value in o.recipients
                    and o.at_s <= e.within_s + slack_s
                ),
                None,
            ),
        )
        for e in expect
    )
    banned = {t.value for t in expect_none_of}
    forbidden = tuple(o for o in ordered if o.type in banned)
    return ScenarioResult(scenario, rows, forbidden, tuple(ordered), unreadable, tuple(notes))
