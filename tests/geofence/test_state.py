"""State survives a restart: to_dict/from_dict mid-episode gives identical subsequent events."""

from __future__ import annotations

import bisect
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emon.geofence import Engine
from emon.geofence.state import DeviceTrack, FixRecord, _micros

from .conftest import T0, VICTIM, Step, build_fixes, circle_zone, engine_for, make_case, run_live, types, walk

CASE = make_case(
    exclusion=[circle_zone("z")], contact_ban_m=500, valid_until=(T0 + timedelta(days=3)).isoformat()
)


def steps() -> list[Step]:
    out = []
    for i, d in enumerate([900, 600, 250, 150, 50, 20, 20, 20, 20, 60, 200, 300, 400, 500, 600, 700, 800]):
        out += [Step(i * 20, 5000, device=VICTIM), Step(i * 20 + 1, d, acc_m=30)]
    return out


@pytest.mark.parametrize("form", ["json", "packed"])
def test_round_trip_mid_episode_gives_identical_events(form: str) -> None:
    """Saved mid-episode as JSON (a replay snapshot) or packed (what eval_state keeps per batch) and
    restored into a new engine, the case goes on exactly as if nothing had happened."""
    fixes = build_fixes(steps())
    half = len(fixes) // 2
    a = Engine()
    a.add_case(CASE)
    first = run_live(a, fixes[:half]) + a.tick(fixes[half - 1].ts)
    assert "exclusion_breach" in types(first)  # mid-episode
    saved: dict[str, Any] | bytes
    if form == "json":
        saved = json.loads(json.dumps(a.snapshot("case-1")))  # really JSON
    else:
        saved = a.packed("case-1")
        assert len(saved) * 3 < len(json.dumps(a.snapshot("case-1")))
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


def test_a_packed_state_of_another_version_is_refused() -> None:
    engine = engine_for(CASE)
    packed = engine.packed("case-1")
    engine.restore("case-1", packed)
    with pytest.raises(ValueError, match="version"):
        engine.restore("case-1", b"\x02" + packed[1:])
    with pytest.raises(ValueError, match="malformed"):
        engine.restore("case-1", packed[:-3])


class _ListTrack:
    """The remembered fixes as a sorted list of records (how the track kept them before packing)."""

    def __init__(self) -> None:
        self.history: list[FixRecord] = []

    def remember(self, rec: FixRecord, keep: int) -> None:
        bisect.insort(self.history, rec, key=lambda r: r.ts)
        del self.history[: max(0, len(self.history) - keep)]

    def before(self, ts: datetime) -> FixRecord | None:
        i = bisect.bisect_right(self.history, ts, key=lambda r: r.ts)
        return self.history[i - 1] if i > 0 else None

    def after(self, ts: datetime) -> FixRecord | None:
        i = bisect.bisect_right(self.history, ts, key=lambda r: r.ts)
        return self.history[i] if i < len(self.history) else None

    def nearest(self, ts: datetime) -> FixRecord | None:
        if not self.history:
            return None
        i = bisect.bisect_left(self.history, ts, key=lambda r: r.ts)
        near = self.history[max(0, i - 1) : i + 1]
        return min(near, key=lambda r: abs((r.ts - ts).total_seconds()))


_records = st.builds(
    lambda s, us, lat, lon, acc: FixRecord(T0 + timedelta(seconds=s, microseconds=us), lat, lon, acc),
    st.integers(-5, 40),
    st.sampled_from([0, 1, 999_999]),
    st.floats(-90, 90),
    st.floats(-180, 180),
    st.floats(0, 5000),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(_records, max_size=60), st.integers(2, 32), st.lists(st.integers(-10, 50), max_size=8))
def test_a_packed_track_remembers_and_finds_fixes_as_a_sorted_list_does(
    recs: list[FixRecord], keep: int, probes: list[int]
) -> None:
    track, ref = DeviceTrack(), _ListTrack()
    for rec in recs:
        assert track.holds(rec) == (rec in ref.history)
        track.remember(rec, keep)
        ref.remember(rec, keep)
        assert track.history == ref.history
    assert DeviceTrack.from_dict(json.loads(json.dumps(track.to_dict()))).history == ref.history
    for p in probes:
        ts = T0 + timedelta(seconds=p, microseconds=500_000 * (p % 2))
        assert track.before(ts) == ref.before(ts)
        assert track.after(ts) == ref.after(ts)
        assert track.nearest(ts) == ref.nearest(ts)
    if ref.history:  # at, just before and just after the newest fix (nearest's shortcut)
        for us in (-1, 0, 1):
            ts = ref.history[-1].ts + timedelta(microseconds=us)
            assert track.nearest(ts) == ref.nearest(ts)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.timezones() | st.just(UTC)))
def test_microseconds_since_the_epoch_are_those_of_dividing_timedeltas(ts: datetime) -> None:
    assert _micros(ts) == (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
