"""Decisions under GPS uncertainty, judged at the alert a person receives (issue 9, items 1, 3, 4).

Real geometry (geodesic offsets around Amsterdam), fixes in → evaluation events → the real alert
lifecycle and routing → the alerts people get, with their final type and state.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from emon.geofence import EvalConfig
from tests.geofence.conftest import (
    OFFENDER,
    T0,
    VICTIM,
    Step,
    build_fixes,
    circle_zone,
    engine_for,
    make_case,
    run_live,
    types,
)

from .conftest import Received

BREACH_TYPES = {"exclusion_breach", "inclusion_breach", "proximity_breach"}
SIGMA = 1 / math.sqrt(-2 * math.log(1 - 0.68))  # acc is the 68 % radius


def locates(events: list) -> list[dict]:  # type: ignore[type-arg]
    return [e.detail for e in events if e.type.value == "locate_request"]


# -- item 1: uncertainty alone never becomes a breach ------------------------------------------


def test_stale_victim_pair_1_to_2_km_apart_gives_no_breach_only_unknown_and_a_locate_request() -> None:
    # The old rule: the victim's circle grows 15 m/s × age, a 1.5 km pair becomes "possible" after
    # 100 s and three possible fixes confirmed a proximity_breach (victim told to act, police CAP).
    case = make_case(contact_ban_m=500)
    engine = engine_for(case)
    steps = [Step(0, 0.0, device=VICTIM)]
    steps += [Step(60 + 30 * i, 1000 + 40 * i) for i in range(25)]  # 1.0 → 2.0 km, victim silent
    events = run_live(engine, build_fixes(steps))
    people = Received(case).feed(events)
    assert not {t for t, _ in people.final()} & BREACH_TYPES
    assert {t for t, _ in people.final()} <= {"proximity_unknown", "proximity_pre_alert", "possible_breach"}
    asks = locates(events)
    assert asks and asks[0]["devices"] == [VICTIM] and asks[0]["reason"] == "stale_counterpart"
    assert asks[0]["every_s"] == 15 and datetime.fromisoformat(asks[0]["until"]) > T0
    assert len(asks) <= 1 + (30 * 25) // 150 < 25  # rate-limited: once per half window, not per fix
    assert "proximity_unknown" in types(events)  # past stale_s the pair is unknown, as before


def test_stale_victim_within_the_ring_is_a_visible_possible_state_with_why_for_the_room_only() -> None:
    case = make_case(contact_ban_m=500)
    steps = [Step(0, 0.0, device=VICTIM)] + [Step(30 + 30 * i, 800) for i in range(8)]
    events = run_live(engine_for(case), build_fixes(steps))
    people = Received(case).feed(events)
    possible = [a for a in people.alerts.values() if a.type.value == "possible_breach"]
    assert len(possible) == 1
    assert possible[0].explanation["detail"]["why"].startswith("counterpart fix ")
    # It shares its episode with the pre-alert the victim already had; becoming a possible state
    # tells the room, not the victim again (and never police).
    assert [told for kind, t, told in people.changes if t == "possible_breach" and kind != "updated"] == [
        {"probation"}
    ]
    assert "police" not in {r.value for r in possible[0].recipients}
    assert possible[0].priority.value in ("normal", "high")
    assert not {t for t, _ in people.final()} & BREACH_TYPES


def test_the_possible_state_ends_and_resolves_itself_when_a_fresh_victim_fix_decides() -> None:
    case = make_case(contact_ban_m=500)
    engine = engine_for(case)
    steps = [Step(0, 0.0, device=VICTIM)] + [Step(30 + 30 * i, 800) for i in range(8)]
    steps += [Step(260, 0.0, device=VICTIM), Step(270, 800)]  # the locate-now answer: 800 m apart
    people = Received(case).feed(run_live(engine, build_fixes(steps)))
    assert ("possible_breach", "resolved") in people.final()


def _night(rng: np.random.Generator, start: datetime) -> list[Step]:
    """Asleep 8 m from the centre from 21:30 to 07:30 local, fixes every 60–300 s with indoor
    accuracy 30–80 m and the Gaussian error that accuracy means (68 % radius)."""
    out, t = [], 0.0
    while t < 10 * 3600:
        acc = float(rng.uniform(30, 80))
        e, n = rng.normal(0, acc * SIGMA, 2)
        out.append(Step(t, 8.0 + float(e), acc, north_m=float(n)))
        t += float(rng.uniform(60, 300))
    return out


def test_indoor_curfew_nights_give_no_inclusion_breach() -> None:
    # Twenty nights asleep at home, including both DST nights. The old rule counted "possible"
    # fixes 40–60 m outside with 55–70 m accuracy into ≈ 2 inclusion breaches per night.
    night = {"timezone": "Europe/Amsterdam", "windows": [{"start": "22:00", "end": "07:00"}]}
    rng = np.random.default_rng(7)
    days = [datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 10, 24, tzinfo=UTC)]
    days += [datetime(2026, 1, 5, tzinfo=UTC) + timedelta(days=i) for i in range(18)]
    breaches = 0
    for day in days:
        case = make_case(inclusion=[circle_zone("home", radius_m=150, schedule=night)])
        engine = engine_for(case)
        start = day.replace(hour=20, minute=30)  # 21:30 CET (22:30 CEST: the window starts earlier)
        events = []
        for fix in build_fixes(_night(rng, start), start=start):
            events += engine.evaluate(fix, fix.ts + timedelta(seconds=2))
            events += engine.tick(fix.ts + timedelta(seconds=3))
        breaches += sum(t in BREACH_TYPES for t, _ in Received(case).feed(events).final())
    assert breaches == 0


def test_leaving_during_the_curfew_is_proven_by_evidence() -> None:
    night = {"timezone": "Europe/Amsterdam", "windows": [{"start": "22:00", "end": "07:00"}]}
    case = make_case(inclusion=[circle_zone("home", radius_m=150, schedule=night)])
    engine = engine_for(case)
    start = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 22:30 CET
    fixes = build_fixes(
        [Step(0, 0, 40), Step(120, 600, 20), Step(160, 900, 20), Step(200, 1200, 20)], start=start
    )
    events = run_live(engine, fixes)
    assert [t for t in types(events) if t in BREACH_TYPES] == ["inclusion_breach"]


# -- item 3: crossings and late violations reach people as what they are ------------------------


def _crossing_case(radius_m: float) -> tuple[object, list[Step]]:
    case = make_case(exclusion=[circle_zone("z", radius_m=radius_m)])
    return case, []


def test_sparse_crossing_with_no_possible_detour_is_a_proven_crossing_alert_that_stays_open() -> None:
    # A 5 km zone; fixes 5 minutes apart, 100 m outside on either side: straight through is
    # 10.2 km (34 m/s), around it 15.7 km (52 m/s > 40 m/s): no detour fits.
    case = make_case(exclusion=[circle_zone("z", radius_m=5000)])
    steps = [Step(0, -5100), Step(300, 5100), Step(330, 5300), Step(360, 5500), Step(390, 5700)]
    events = run_live(engine_for(case), build_fixes(steps))
    crossing = [e for e in events if e.type.value == "crossing_suspected"]
    assert len(crossing) == 1
    assert crossing[0].detail["proven"] is True and crossing[0].classification.value == "breach"
    assert crossing[0].detail["gap_s"] == 300 and len(crossing[0].evidence) == 2
    assert crossing[0].detail["detour_m"] > 15_000
    # The pre-alert opened by the first fix shares the episode: the alert people see is the
    # crossing, and the system does not resolve it when the pre-alert ring is left.
    assert "exclusion_pre_alert_ended" in types(events)
    assert Received(case).feed(events).final() == [("crossing_suspected", "open")]


def test_sparse_crossing_hidden_behind_a_fix_with_an_honest_380_m_accuracy_is_still_reported() -> None:
    case = make_case(exclusion=[circle_zone("z", radius_m=300)])
    steps = [Step(0, -450), Step(150, 120, 380, north_m=-90), Step(300, 450)]
    steps += [Step(330, 600), Step(360, 800)]
    events = run_live(engine_for(case), build_fixes(steps))
    crossing = [e for e in events if e.type.value == "crossing_suspected"]
    assert len(crossing) == 1
    assert crossing[0].detail["proven"] is False  # 5 minutes leave time to go around
    assert [e.acc_m for e in crossing[0].evidence] == [10.0, 10.0]  # the two good fixes, not the wild one
    final = Received(case).feed(events).final()
    assert ("crossing_suspected", "open") in final
    assert not [f for f in final if f[0] == "exclusion_pre_alert" and f[1] == "open"]


def _offline_visit() -> tuple[list[Step], list[Step]]:
    """Outside, then offline: 20 min deep inside a 300 m zone (fixes buffered), then out again."""
    before = [Step(0, 1500), Step(60, 1400)]
    inside = [Step(120 + 60 * i, 100 - 5 * i) for i in range(20)]
    after = [Step(1400, 1500), Step(1460, 1600), Step(1520, 1700)]
    return before + inside, after


def test_offline_inside_then_late_upload_is_a_retrospective_violation_alert_with_the_late_fixes() -> None:
    case = make_case(exclusion=[circle_zone("z", radius_m=300)])
    engine = engine_for(case)
    visit, after = _offline_visit()
    events = run_live(engine, build_fixes(visit[:2]))
    upload = T0 + timedelta(seconds=1400 + 1800)  # the buffer arrives 30 min after coming back
    late = engine.evaluate_batch(build_fixes(visit[2:] + after), upload)
    events += late
    retro = [e for e in late if e.type.value == "retrospective_violation"]
    assert len(retro) == 1 and not retro[0].live
    assert retro[0].evidence[0].age_s > 1800
    final = Received(case).feed(events, upload).final()
    assert ("retrospective_violation", "open") in final
    assert all(t not in ("exclusion_breach", "exclusion_pre_alert") or s == "resolved" for t, s in final)


def test_late_fixes_arriving_after_newer_live_ones_still_prove_the_visit_and_get_the_crossing_check() -> None:
    case = make_case(exclusion=[circle_zone("z", radius_m=300)])
    engine = engine_for(case)
    visit, after = _offline_visit()
    run_live(engine, build_fixes(visit[:2] + after))  # back online first: the newer fixes
    upload = T0 + timedelta(seconds=1600 + 1800)
    late = engine.evaluate_batch(build_fixes(visit[2:]), upload)
    retro = [e for e in late if e.type.value == "retrospective_violation"]
    assert len(retro) == 1 and retro[0].detail["out_of_order"] is True
    # A late pair of fixes bounding a path through the zone is checked as well.
    engine2 = engine_for(case)
    run_live(engine2, build_fixes([Step(0, -1500), Step(900, 1500)]))
    late2 = engine2.evaluate_batch(
        build_fixes([Step(500, -400), Step(560, 400)]), T0 + timedelta(seconds=2000)
    )
    assert "crossing_suspected" in types(late2)
    assert all(not e.live for e in late2)
    for crossing in [e for e in late2 if e.type.value == "crossing_suspected"]:
        assert crossing.detail["late"] is True and "why" not in crossing.detail
        assert len(crossing.evidence) == 2  # the two fixes that bound the path through the zone


def test_counterpart_fix_past_the_freshness_limit_is_not_nothing() -> None:
    # Offender parked 200 m from the victim; the two devices' fixes interleave 130 s apart. The
    # old rule ignored every comparison (counterpart older than 120 s): no event at all. Now the
    # old fix counts with its movement allowance: undecided → a possible state and a locate-now;
    # the devices answering every 15 s prove the breach.
    case = make_case(contact_ban_m=500)
    engine = engine_for(case)
    steps = []
    for k in range(5):
        steps += [Step(130 * k, 0.0, device=VICTIM), Step(130 * k + 65, 200)]
    events = run_live(engine, build_fixes(steps))
    assert "possible_breach" in types(events)
    assert any(VICTIM in d["devices"] or OFFENDER in d["devices"] for d in locates(events))
    answers = []
    for k in range(6):
        t = 650 + 15 * k
        answers += [Step(t, 0.0, device=VICTIM), Step(t + 2, 200)]
    events += run_live(engine, build_fixes(answers))
    people = Received(case).feed(events).final()
    assert ("proximity_breach", "open") in people


# -- item 4: curfew grace period ---------------------------------------------------------------


def test_curfew_grace_period_per_inclusion_zone() -> None:
    night = {"timezone": "Europe/Amsterdam", "windows": [{"start": "22:00", "end": "07:00"}]}
    start = datetime(2026, 3, 2, 20, 55, tzinfo=UTC)  # 21:55 CET, 2 km from home, coming home late
    late_home = [Step(0, 2000), Step(300, 2000), Step(420, 1500), Step(480, 800), Step(540, 0), Step(600, 0)]

    def run(grace: float | None) -> list[str]:
        zone = circle_zone("home", radius_m=150, schedule=night)
        if grace is not None:
            zone["grace_s"] = grace
        engine = engine_for(make_case(inclusion=[zone]))
        events = []
        for fix in build_fixes(late_home, start=start):
            events += engine.tick(fix.ts)
            events += engine.evaluate(fix, fix.ts + timedelta(seconds=1))
        return [t for t in types(events) if t in BREACH_TYPES]

    assert run(None) == ["inclusion_breach"]  # 22:00 sharp: 2 km out, proven by the next fixes
    assert run(900) == []  # home by 22:04, within a 15-minute grace period


def test_grace_period_delays_enforcement_not_the_episode_id() -> None:
    night = {"timezone": "Europe/Amsterdam", "windows": [{"start": "22:00", "end": "07:00"}]}
    zone = {**circle_zone("home", radius_m=150, schedule=night), "grace_s": 600}
    engine = engine_for(make_case(inclusion=[zone]), EvalConfig())
    start = datetime(2026, 3, 2, 20, 55, tzinfo=UTC)
    events = []
    for fix in build_fixes([Step(60 * i, 2000) for i in range(20)], start=start):
        events += engine.tick(fix.ts)
        events += engine.evaluate(fix, fix.ts + timedelta(seconds=1))
    breach = [e for e in events if e.type.value == "inclusion_breach"]
    assert len(breach) == 1
    assert breach[0].at >= datetime(2026, 3, 2, 21, 10, tzinfo=UTC)  # not before the grace ends
    assert breach[0].episode == datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # the window start
