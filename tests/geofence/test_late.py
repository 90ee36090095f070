"""Late and out-of-order fixes: judged retrospectively, never a live warning, nothing dropped."""

from __future__ import annotations

from datetime import timedelta

from emon.geofence.events import Classification

from .conftest import T0, Step, build_fixes, circle_zone, engine_for, make_case, run_live, types, walk

CASE = make_case(exclusion=[circle_zone("z")])
VISIT = walk([600, 350, 250, 150, 60, 50, 40, 30, 0, 200, 260, 300, 330, 350, 500, 520, 540])


def test_buffered_late_batch_with_breach_is_retrospective() -> None:
    engine = engine_for(CASE)
    events = engine.evaluate_batch(list(reversed(build_fixes(VISIT))), T0 + timedelta(hours=2))
    assert types(events) == [
        "exclusion_pre_alert",
        "possible_breach",
        "retrospective_violation",
        "breach_update",
        "exclusion_breach_ended",
        "exclusion_pre_alert_ended",
    ]
    assert not any(e.live for e in events)
    retro = events[2]
    assert retro.detail["violation"] == "exclusion_breach"
    assert retro.episode == T0 + timedelta(seconds=40) and retro.classification is Classification.BREACH


def test_late_batch_ending_inside_is_announced_live_when_fresh_fixes_continue() -> None:
    engine = engine_for(CASE)
    fixes = build_fixes(walk([600, 350, 250, 150, 50, 45], every_s=60))  # last fix at T0 + 300 s
    now = T0 + timedelta(seconds=610)  # fixes up to T0+300 s are late, later ones fresh
    late = engine.evaluate_batch(fixes, now)
    assert types(late) == ["exclusion_pre_alert", "possible_breach", "retrospective_violation"]
    fresh = build_fixes([Step(600, 45)])
    live = [e for e in engine.evaluate_batch(fresh, now) if e.type.value != "locate_request"]
    assert [(e.type.value, e.live) for e in live] == [
        ("exclusion_pre_alert", True),
        ("exclusion_breach", True),
    ]
    assert live[1].episode == late[2].episode


def test_out_of_order_fix_is_retrospective_and_leaves_live_state_alone() -> None:
    def replay(with_old_fix: bool) -> tuple[list[str], list[str]]:
        engine = engine_for(CASE)
        first = run_live(engine, build_fixes(walk([3000, 2900, 2800, 2700], every_s=600)))
        extra = []
        if with_old_fix:
            # Inside the zone, between two evaluated fixes: two of them (one fix never proves).
            old = build_fixes([Step(900, 30), Step(960, 30)])
            extra = engine.evaluate_batch(old, T0 + timedelta(seconds=1801))
            assert [(e.type.value, e.live, e.detail.get("out_of_order")) for e in extra] == [
                ("retrospective_violation", False, True)
            ]
        rest = run_live(engine, build_fixes(walk([2600, 250, 50, 45], every_s=60, t0_s=2400)))
        return types(first + rest), types(extra)

    plain, _ = replay(False)
    with_old, extra = replay(True)
    assert plain == with_old == ["exclusion_pre_alert", "possible_breach", "exclusion_breach"]
    assert extra == ["retrospective_violation"]


def test_duplicate_delivery_is_ignored() -> None:
    engine = engine_for(CASE)
    fixes = build_fixes(walk([400, 250, 50, 50, 50, 50]))
    assert types(run_live(engine, fixes)) == ["exclusion_pre_alert", "possible_breach", "exclusion_breach"]
    assert run_live(engine, fixes) == []


def test_late_batch_that_left_the_zone_raises_no_live_warning() -> None:
    # Through the zone and out during a coverage gap. When the batch arrives, its newest fixes are
    # fresh but already clear of the zone (the episode has not yet been clear for clear_s): the
    # violation goes on the record, and nobody is sent a live breach warning for it.
    engine = engine_for(CASE)
    fixes = build_fixes(walk([600, 350, 150, 50, 40, 50, 350, 500, 600, 700], every_s=20))
    now = T0 + timedelta(seconds=410)  # fixes up to T0+100 s are late (freshness 300 s), later ones fresh
    events = engine.evaluate_batch(fixes, now)
    assert "retrospective_violation" in types(events)
    assert not [e for e in events if e.live and e.type.value in ("exclusion_breach", "exclusion_pre_alert")]


def test_duplicate_delivery_after_the_episode_ended_changes_nothing() -> None:
    # Replayed, the fixes inside the zone are older than the last one: without recognising them as
    # duplicates they would be judged out of order and report the finished visit a second time.
    engine = engine_for(CASE)
    fixes = build_fixes(VISIT)
    assert "exclusion_breach_ended" in types(run_live(engine, fixes))
    before = engine.snapshot("case-1")
    assert run_live(engine, fixes) == []
    assert engine.snapshot("case-1") == before
