"""Schedules: wall-clock windows in Europe/Amsterdam, correct on the nights the clocks change."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from emon.geofence import EvalConfig, is_active
from emon.order import Schedule, Window

from .conftest import Step, build_fixes, circle_zone, engine_for, make_case, run_live, types

NIGHT = Schedule(timezone="Europe/Amsterdam", windows=(Window(start=time(22), end=time(7)),))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "active"),
    [
        # Ordinary night, CET (UTC+1): 22:00-07:00 local = 21:00-06:00 UTC.
        (utc(2026, 3, 2, 20, 59), False),
        (utc(2026, 3, 2, 21, 0), True),
        (utc(2026, 3, 3, 5, 59), True),
        (utc(2026, 3, 3, 6, 0), False),
        # Sat 28 -> Sun 29 March 2026 (clocks 02:00 -> 03:00): 22:00 CET to 07:00 CEST = 21:00-05:00 UTC.
        (utc(2026, 3, 28, 20, 59), False),
        (utc(2026, 3, 28, 21, 0), True),
        (utc(2026, 3, 29, 4, 59), True),
        (utc(2026, 3, 29, 5, 0), False),
        # Sat 24 -> Sun 25 October 2026 (clocks 03:00 -> 02:00): 22:00 CEST to 07:00 CET = 20:00-06:00 UTC.
        (utc(2026, 10, 24, 19, 59), False),
        (utc(2026, 10, 24, 20, 0), True),
        (utc(2026, 10, 25, 5, 59), True),
        (utc(2026, 10, 25, 6, 0), False),
        # Midday is never in the window.
        (utc(2026, 10, 25, 12, 0), False),
    ],
)
def test_night_window_across_dst(when: datetime, active: bool) -> None:
    assert is_active(NIGHT, None, None, when) is active


def test_weekday_window_and_validity() -> None:
    weekend = Schedule(windows=(Window(days=("sat", "sun"), start=time(9), end=time(17)),))
    assert is_active(weekend, None, None, utc(2026, 3, 7, 10))  # Saturday 11:00 CET
    assert not is_active(weekend, None, None, utc(2026, 3, 6, 10))  # Friday
    assert not is_active(None, utc(2026, 3, 7), None, utc(2026, 3, 6))
    assert not is_active(None, None, utc(2026, 3, 7), utc(2026, 3, 7))


CURFEW = make_case(
    inclusion=[circle_zone("home", radius_m=150, schedule=NIGHT.model_dump(mode="json"))],
)


def test_curfew_breach_at_window_start_on_dst_night_then_home() -> None:
    engine = engine_for(CURFEW)
    start = utc(2026, 3, 28, 20, 50)  # 21:50 CET, offender 2 km from home
    run_live(engine, build_fixes([Step(0, 2000), Step(300, 2000)], start=start))
    assert engine.tick(utc(2026, 3, 28, 20, 59, 30)) == []
    # The last fix (2 km out) is the curfew's first evidence; one fix never proves a breach.
    assert types(engine.tick(utc(2026, 3, 28, 21, 0, 30))) == []
    events = run_live(engine, build_fixes([Step(0, 2000)], start=utc(2026, 3, 28, 21, 1)))
    assert types(events) == ["inclusion_breach"]
    assert events[0].episode == utc(2026, 3, 28, 21, 0)  # the window start, not the fix time
    assert events[0].classification.value == "breach"
    assert types(engine.tick(utc(2026, 3, 28, 21, 1, 30))) == []
    home = build_fixes([Step(0, 0), Step(30, 0), Step(60, 0), Step(90, 0)], start=utc(2026, 3, 28, 21, 20))
    assert types(run_live(engine, home)) == ["inclusion_breach_ended"]
    # Out again at 04:30 UTC (06:30 CEST): still curfew; at 05:00 UTC (07:00 CEST) it ends.
    out = build_fixes([Step(0, 2000), Step(30, 2000), Step(60, 2000)], start=utc(2026, 3, 29, 4, 30))
    assert types(run_live(engine, out)) == ["possible_breach", "inclusion_breach"]
    assert types(engine.tick(utc(2026, 3, 29, 4, 59, 30))) == []
    ended = engine.tick(utc(2026, 3, 29, 5, 0, 30))
    assert types(ended) == ["inclusion_breach_ended"] and ended[0].detail["reason"] == "not_enforced"


def test_curfew_start_with_stale_position_is_possible_breach() -> None:
    engine = engine_for(CURFEW, EvalConfig(stale_s=600))
    run_live(engine, build_fixes([Step(0, 0)], start=utc(2026, 3, 2, 20, 0)))  # home, an hour early
    engine.tick(utc(2026, 3, 2, 20, 30))
    events = engine.tick(utc(2026, 3, 2, 21, 0, 10))
    # Silence is not compliance, and not a breach either: a visible possible state and a locate-now.
    assert types(events, locate=True) == ["possible_breach", "locate_request"]
    assert events[0].classification.value == "possible"
    assert events[0].detail["reason"] == "no_fresh_position"
    assert events[1].detail["reason"] == "possible_breach" and events[1].detail["devices"] == ["tag-1"]


def test_curfew_start_fresh_inside_is_quiet() -> None:
    engine = engine_for(CURFEW)
    run_live(engine, build_fixes([Step(0, 0), Step(120, 10)], start=utc(2026, 3, 2, 20, 57)))
    engine.tick(utc(2026, 3, 2, 20, 59))
    assert engine.tick(utc(2026, 3, 2, 21, 0, 5) + timedelta(seconds=0)) == []


def test_expiry_reminder_once_per_valid_until() -> None:
    until = utc(2026, 3, 7, 12)
    case = make_case(
        exclusion=[circle_zone("z", valid_until=utc(2026, 3, 5).isoformat())], valid_until=until.isoformat()
    )
    engine = engine_for(case)
    assert engine.tick(utc(2026, 2, 20)) == []
    first = engine.tick(utc(2026, 3, 2))
    # The order's own term is the orders lifecycle's (emon/orders/lifecycle.py); the engine reminds of zones.
    assert [(e.type.value, e.rule) for e in first] == [("order_expiring", "exclusion:z")]
    assert first[0].episode == utc(2026, 3, 5)
    assert engine.tick(utc(2026, 3, 3)) == []
    # A new valid_until (zone extended) is a new reminder.
    extended = make_case(
        exclusion=[circle_zone("z", valid_until=utc(2026, 3, 8).isoformat())], valid_until=until.isoformat()
    )
    engine.replace_case(extended)
    assert types(engine.tick(utc(2026, 3, 4))) == ["order_expiring"]


def test_curfew_start_without_event_is_persisted() -> None:
    # A curfew starting while the offender is home emits nothing, yet the rule is now enforced:
    # the state saved after that tick must say so, or a restart takes the window start for new
    # and, the position having gone stale meanwhile, raises a possible breach at 21:20.
    engine = engine_for(CURFEW)
    saved: dict[str, dict[str, Any]] = {}

    def persist() -> None:
        saved.update({c: engine.snapshot(c) for c in engine.changed()})

    run_live(engine, build_fixes([Step(0, 0), Step(120, 10)], start=utc(2026, 3, 2, 20, 57)))
    engine.tick(utc(2026, 3, 2, 20, 59))
    persist()
    assert engine.tick(utc(2026, 3, 2, 21, 0, 5)) == []
    persist()
    restarted = engine_for(CURFEW)
    restarted.restore("case-1", saved["case-1"])
    assert restarted.tick(utc(2026, 3, 2, 21, 20)) == engine.tick(utc(2026, 3, 2, 21, 20)) == []
