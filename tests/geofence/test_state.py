"""State survives a restart: to_dict/from_dict mid-episode gives identical subsequent events."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from emon.geofence import Engine

from .conftest import T0, VICTIM, Step, build_fixes, circle_zone, engine_for, make_case, run_live, types, walk

CASE = make_case(
    exclusion=[circle_zone("z")], contact_ban_m=500, valid_until=(T0 + timedelta(days=3)).isoformat()
)


def steps() -> list[Step]:
    out = []
    for i, d in enumerate([900, 600, 250, 150, 50, 20, 20, 20, 20, 60, 200, 300, 400, 500, 600, 700, 800]):
        out += [Step(i * 20, 5000, device=VICTIM), Step(i * 20 + 1, d, acc_m=30)]
    return out


def test_round_trip_mid_episode_gives_identical_events() -> None:
    fixes = build_fixes(steps())
    half = len(fixes) // 2
    a = Engine()
    a.add_case(CASE)
    first = run_live(a, fixes[:half]) + a.tick(fixes[half - 1].ts)
    assert "exclusion_breach" in types(first)  # mid-episode
    saved = json.loads(json.dumps(a.snapshot("case-1")))  # really JSON
    b = Engine()
    b.add_case(CASE, saved)
    assert b.snapshot("case-1") == a.snapshot("case-1")
    rest_a = run_live(a, fixes[half:]) + a.tick(fixes[-1].ts + timedelta(hours=1))
    rest_b = run_live(b, fixes[half:]) + b.tick(fixes[-1].ts + timedelta(hours=1))
    assert rest_a == rest_b
    assert "exclusion_breach_ended" in types(rest_a)
    assert "order_expiring" not in types(rest_a)  # the reminder was sent before the restart


def test_restore_and_changed_cases() -> None:
    engine = Engine()
    engine.add_case(CASE)
    engine.add_case(make_case(case_id="case-2", exclusion=[circle_zone("z")]))
    assert engine.changed() == ["case-1", "case-2"]
    assert engine.changed() == []
    engine.evaluate_batch(build_fixes(walk([400])), T0)
    assert engine.changed() == ["case-1", "case-2"]  # the same tag is in both cases
    assert engine.cases_for_device("tag-1") == ("case-1", "case-2")
    engine.remove_case("case-2")
    assert engine.cases_for_device("tag-1") == ("case-1",)
    snap = engine.snapshot("case-1")
    engine.restore("case-1", snap)
    assert engine.snapshot("case-1") == snap


def test_restore_replaces_the_state() -> None:
    engine = engine_for(CASE)
    fresh = engine.snapshot("case-1")
    run_live(engine, build_fixes(steps()[:8]))
    assert engine.snapshot("case-1") != fresh
    engine.restore("case-1", fresh)
    assert engine.snapshot("case-1") == fresh
    with pytest.raises(KeyError):
        engine.restore("case-2", fresh)
