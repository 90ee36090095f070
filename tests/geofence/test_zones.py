"""Exclusion zones: fix tables in, exact ordered events out."""

from __future__ import annotations

import json

import pytest

from emon.geofence.events import Classification

from .conftest import T0, Step, build_fixes, circle_zone, engine_for, make_case, run_live, types, walk

# A 100 m circle at the origin; east offsets are metres from its centre (edge at 100 m).
# Defaults: pre-alert ring 200 m (ends beyond 300 m), clear 20 m for 60 s. A breach needs accumulated
# evidence (docs/safety.md): one accurate fix deep inside adds at most 4 of the 6.9 needed, fixes 10 s
# apart add a third of their evidence each (errors correlated over 30 s); 2.3 opens a possible state.
CASE = make_case(exclusion=[circle_zone("home-victim")])

ENTRY_EXIT = [
    "exclusion_pre_alert",
    "possible_breach",
    "exclusion_breach",
    "breach_update",
    "exclusion_breach_ended",
    "exclusion_pre_alert_ended",
]

TABLE: list[tuple[str, list[Step], list[str]]] = [
    (
        "straight entry and exit",
        walk([600, 350, 250, 150, 60, 50, 40, 30, 0, 200, 260, 300, 330, 350, 500, 520, 540]),
        ENTRY_EXIT,
    ),
    (
        "jitter just outside the edge: possible, clear, possible … never confirms, ring never flaps",
        walk([400, 250, *[105 if i % 2 else 115 for i in range(30)], 250, 290, 420]),
        ["exclusion_pre_alert", "exclusion_pre_alert_ended"],
    ),
    (
        "jitter on the edge once inside: one breach, no flapping, one end",
        walk(
            [
                400,
                250,
                60,
                50,
                40,
                40,
                *[95 + (i % 3) * 10 for i in range(30)],
                200,
                250,
                260,
                270,
                280,
                290,
                320,
                440,
            ]
        ),
        [
            "exclusion_pre_alert",
            "possible_breach",
            "exclusion_breach",
            "exclusion_breach_ended",
            "exclusion_pre_alert_ended",
        ],
    ),
    (
        "single wild outlier (implausible jump into the zone) does not fire",
        walk([3000, 3000, 0, 3000, 3000]),
        [],
    ),
    (
        "single outlier with huge accuracy does not fire",
        [Step(0, 3000), Step(10, 3000), Step(20, 0, acc_m=900), Step(30, 3000)],
        [],
    ),
    (
        "two outliers in a row still need a third to confirm",
        walk([3000, 3000, 0, 0, 3000]),
        [],
    ),
    (
        "accuracy larger than the margin: possible fix after possible fix never becomes a breach by counting",
        walk([400, 250, *[110] * 20], acc_m=30),
        ["exclusion_pre_alert"],
    ),
    (
        "imprecise fixes 40 m inside, a minute apart: evidence accumulates to a breach on the fifth",
        [Step(0, 400), Step(10, 250), *[Step(20 + 60 * i, 60, 30) for i in range(5)]],
        ["exclusion_pre_alert", "possible_breach", "exclusion_breach"],
    ),
    (
        "crossing between sparse fixes (5 min apart, 800 m: plausible)",
        [Step(0, -400), Step(300, 400)],
        ["crossing_suspected"],
    ),
    (
        "no crossing when the segment misses the zone",
        [Step(0, -400, north_m=400), Step(300, 400, north_m=400)],
        [],
    ),
]


@pytest.mark.parametrize(("name", "steps", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_exclusion_table(name: str, steps: list[Step], expected: list[str]) -> None:
    engine = engine_for(CASE)
    assert types(run_live(engine, build_fixes(steps))) == expected


def test_no_single_fix_proves_a_breach_accumulated_evidence_does() -> None:
    fixes = build_fixes(walk([400, 250, 50, 50, 50, 50]))
    events = [e for e in run_live(engine_for(CASE), fixes) if e.type.value != "locate_request"]
    assert types(events) == ["exclusion_pre_alert", "possible_breach", "exclusion_breach"]
    assert events[1].at == fixes[2].ts and events[1].detail["evidence_llr"] == 4.0
    breach = events[-1]
    assert breach.classification is Classification.BREACH
    assert breach.at == fixes[5].ts and breach.episode == fixes[2].ts == events[1].episode
    assert breach.rule == "exclusion:home-victim" and breach.case_id == "case-1"
    assert breach.distance_m == pytest.approx(-50, abs=0.01)
    assert breach.evidence[0].acc_m == 10 and breach.evidence[0].age_s == 1.0
    assert breach.live


def test_accumulated_episode_starts_at_first_evidence_fix() -> None:
    fixes = build_fixes([Step(0, 400), Step(10, 250), *[Step(20 + 60 * i, 60, 30) for i in range(5)]])
    breach = run_live(engine_for(CASE), fixes)[-1]
    assert breach.type.value == "exclusion_breach"
    assert breach.at == fixes[6].ts and breach.episode == fixes[2].ts


def test_zone_confirm_fixes_no_longer_turns_uncertainty_into_a_breach() -> None:
    case = make_case(exclusion=[circle_zone("z", confirm_fixes=1)])
    events = run_live(engine_for(case), build_fixes(walk([400, 250, 110, 110], acc_m=30)))
    assert types(events) == ["exclusion_pre_alert"]


def test_zone_prealert_override() -> None:
    case = make_case(exclusion=[circle_zone("z", prealert_m=50)])
    events = run_live(engine_for(case), build_fixes(walk([400, 250, 180, 140])))
    assert types(events) == ["exclusion_pre_alert"]
    assert events[0].at == T0.replace(second=30)


def test_polygon_zone_entry() -> None:
    from shapely.geometry import mapping

    from emon.geo import geodesic_circle

    from .conftest import CENTRE

    poly = json.loads(json.dumps(mapping(geodesic_circle(CENTRE[0], CENTRE[1], 100.0, 32))))
    case = make_case(exclusion=[{"name": "square", "geometry": poly}])
    events = run_live(
        engine_for(case),
        build_fixes(walk([600, 350, 250, 150, 60, 50, 40, 30, 0, 200, 260, 300, 330, 350, 500, 520, 540])),
    )
    assert types(events) == ENTRY_EXIT
    assert next(e for e in events if e.type.value == "exclusion_breach").distance_m == pytest.approx(
        -70, abs=0.6
    )  # 32-gon chord error <= 0.5 m


def test_zone_outside_validity_is_not_enforced() -> None:
    from datetime import timedelta

    case = make_case(exclusion=[circle_zone("z", valid_from=(T0 + timedelta(hours=1)).isoformat())])
    assert run_live(engine_for(case), build_fixes(walk([400, 250, 50, 40]))) == []


def test_breach_update_only_on_material_change() -> None:
    # Standing still inside: no updates; going 30 m deeper: one update.
    steps = walk([50, 50, 50, 49, 50, 20, 20, 21])
    assert types(run_live(engine_for(CASE), build_fixes(steps))) == [
        "exclusion_pre_alert",
        "possible_breach",
        "exclusion_breach",
        "breach_update",
    ]
