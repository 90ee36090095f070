"""Dynamic proximity between offender and victim: symmetric, age-aware, never silent."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import pytest

from emon.geofence import CaseState, EvalConfig, compile_case
from emon.geofence.proximity import status_changes, status_events

from .conftest import OFFENDER, T0, VICTIM, Step, build_fixes, engine_for, make_case, run_live, types

# Contact ban 500 m; pre-alert from 1000 m, ends beyond 1300 m. Victim stays at the origin.
CASE = make_case(contact_ban_m=500)


def pair(offender_east: list[float], every_s: float = 20.0) -> list[Step]:
    """Victim at the origin and offender at these east offsets, both reporting every ``every_s``."""
    steps = []
    for i, d in enumerate(offender_east):
        steps += [Step(i * every_s, 0.0, device=VICTIM), Step(i * every_s + 1, d)]
    return steps


TABLE = [
    (
        "approach and retreat",
        pair([2000, 1200, 900, 600, 300, 250, 100, 300, 700, 1100, 1500, 1800, 2000, 2100]),
        [
            "proximity_pre_alert",
            "possible_breach",
            "proximity_breach",
            "breach_update",
            "proximity_breach_ended",
            "proximity_pre_alert_ended",
        ],
    ),
    (
        "pass at the edge of the ring without entering the ban",
        pair([2000, 1200, 950, 1100, 1250, 1200, 1400]),
        ["proximity_pre_alert", "proximity_pre_alert_ended"],
    ),
]


@pytest.mark.parametrize(("name", "steps", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_proximity_table(name: str, steps: list[Step], expected: list[str]) -> None:
    assert types(run_live(engine_for(CASE), build_fixes(steps))) == expected


def test_symmetric_victim_walks_to_offender() -> None:
    steps = []
    for i, d in enumerate([2000, 900, 300, 300, 300]):
        steps += [Step(i * 20, 0.0), Step(i * 20 + 1, d, device=VICTIM)]
    events = [e for e in run_live(engine_for(CASE), build_fixes(steps)) if e.type.value != "locate_request"]
    assert types(events) == ["proximity_pre_alert", "possible_breach", "proximity_breach"]
    assert {e.device_id for e in events[-1].evidence} == {OFFENDER, VICTIM}
    assert events[-1].distance_m == pytest.approx(300, abs=0.01)


def test_victim_fix_going_stale_via_offender_fix_then_known() -> None:
    steps = [Step(0, 0.0, device=VICTIM), Step(1, 3000)]
    steps += [Step(60 * i, 3000) for i in range(2, 13)]  # offender keeps reporting, victim silent
    steps += [Step(800, 0.0, device=VICTIM), Step(801, 3000)]
    events = [e for e in run_live(engine_for(CASE), build_fixes(steps)) if e.type.value != "locate_request"]
    assert types(events) == ["proximity_unknown", "proximity_known"]
    unknown, known = events
    assert unknown.episode == T0 + timedelta(seconds=600)  # when the victim's fix went stale
    assert unknown.at == T0 + timedelta(seconds=661)  # decided on the fix at 660 s
    assert known.episode == unknown.episode


def test_victim_fix_going_stale_via_tick() -> None:
    engine = engine_for(CASE)
    run_live(engine, build_fixes([Step(0, 0.0, device=VICTIM), Step(1, 3000), Step(400, 3000)]))
    assert engine.tick(T0 + timedelta(seconds=599)) == []
    events = engine.tick(T0 + timedelta(seconds=605))
    assert types(events) == ["proximity_unknown"]
    assert events[0].episode == T0 + timedelta(seconds=600)
    assert engine.tick(T0 + timedelta(seconds=700)) == []  # once
    fresh = build_fixes([Step(0, 0.0, device=VICTIM)], start=T0 + timedelta(seconds=710))[0]
    assert types(engine.evaluate(fresh, fresh.ts + timedelta(seconds=1))) == ["proximity_known"]


def test_unknown_keeps_open_breach_open() -> None:
    engine = engine_for(CASE)
    assert "proximity_breach" in types(run_live(engine, build_fixes(pair([2000, 900, 100, 100, 100]))))
    # Victim goes silent while the offender is near: the breach must not end by silence.
    events = run_live(engine, build_fixes([Step(60 + 60 * i, 100) for i in range(1, 15)]))
    assert "proximity_breach_ended" not in types(events)
    assert "proximity_unknown" in types(events)


def test_stale_counterpart_grows_uncertainty() -> None:
    # Victim fix 5 minutes old: its error circle grows by 15 m/s x 300 s = 4.5 km, so an offender
    # 2 km away is only `possible`, and a single fix does not fire.
    steps = [Step(0, 0.0, device=VICTIM), Step(300, 2000)]
    events = run_live(engine_for(CASE), build_fixes(steps))
    assert types(events) == []


def test_stale_counterpart_alone_never_becomes_a_breach_it_asks_for_a_fresh_fix() -> None:
    # Victim fix 100-110 s old: 15 m/s x age allows 1.5-1.65 km of movement, so an offender 1.5 km
    # away can be neither cleared nor convicted. The old rule counted three such "possible" fixes
    # into a proximity_breach; now the pair is undecided and the victim's device is asked to locate.
    steps = [Step(0, 0.0, device=VICTIM), Step(100, 1500), Step(105, 1500), Step(110, 1500)]
    events = run_live(engine_for(CASE), build_fixes(steps))
    assert types(events) == []
    locate = [e for e in events if e.type.value == "locate_request"]
    assert len(locate) == 1  # rate-limited: once, not on every fix
    assert locate[0].detail["devices"] == [VICTIM] and locate[0].detail["reason"] == "stale_counterpart"


@pytest.mark.parametrize("status", [None, "known", "unknown"])
@pytest.mark.parametrize("unknown_at", [None, T0])
def test_status_changes_says_exactly_when_status_events_does_anything(
    status: str | None, unknown_at: datetime | None
) -> None:
    """A fix skips status_events (and the evidence it needs) only when it would do nothing."""
    compiled = compile_case(CASE, EvalConfig())
    state = CaseState(
        proximity=status, unknown_since=None if status != "unknown" else T0 - timedelta(hours=1)
    )
    before = msgspec.msgpack.encode(state)
    events = status_events(state, compiled, unknown_at, T0, ())
    did = bool(events) or msgspec.msgpack.encode(state) != before
    assert status_changes(msgspec.msgpack.decode(before, type=CaseState), unknown_at) is did
