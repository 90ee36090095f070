"""After an order's term ends its rules produce no violation; an extension restores enforcement."""

from __future__ import annotations

from datetime import timedelta

from tests.geofence.conftest import T0, build_fixes, circle_zone, engine_for, make_case, run_live, types, walk

END = T0 + timedelta(minutes=5)


def term(until: object, **kw: object) -> dict[str, object]:
    return {
        "kind": "gedragsaanwijzing",
        "valid_from": (T0 - timedelta(days=30)).isoformat(),
        "valid_until": str(until),
        **kw,
    }


def test_a_walk_into_the_zone_after_the_end_is_no_violation() -> None:
    engine = engine_for(make_case(exclusion=[circle_zone("z")], **term(END.isoformat())))
    # Inside the zone from 6 minutes on: after the end of the term.
    events = run_live(engine, build_fixes(walk([500] * 6 + [0] * 10, every_s=60)))
    assert "exclusion_breach" not in types(events)


def test_the_same_walk_under_an_extended_term_is_a_violation() -> None:
    extended = make_case(
        exclusion=[circle_zone("z")], **term((T0 + timedelta(days=60)).isoformat(), extensions=1)
    )
    events = run_live(engine_for(extended), build_fixes(walk([500] * 6 + [0] * 10, every_s=60)))
    assert "exclusion_breach" in types(events)
