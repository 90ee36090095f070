"""The benchmark's crossing tracks: offenders enter and leave their zone when scheduled, and emon's own
engine decides the crossings as breaches (so the e2e run measures real decisions)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from benchmarks import e2e_tracks as tracks
from benchmarks.e2e_setup import bench_cases, device_positions
from emon.fix import Fix
from emon.geo import geodesic_m
from emon.geofence import Engine

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EPS_S = 0.05  # 0.75 m at 15 m/s


@pytest.mark.parametrize(("n", "rate", "duration"), [(10_000, 5_000, 10), (1_000, 500, 30)])
def test_each_offender_enters_and_leaves_its_zone_at_the_scheduled_times(
    n: int, rate: float, duration: float
) -> None:
    crossings = tracks.schedule(n, rate, duration, device_positions(n))
    first, last = tracks.entry_window(n, rate, duration)
    assert sorted(crossings) == list(range(0, n - 1, 10))
    r = tracks.ZONE_RADIUS_M
    for c in list(crossings.values())[::7]:
        assert first <= c.entry_s <= last
        assert c.exit_s - c.entry_s == pytest.approx(2 * r / tracks.SPEED_MPS)

        def d(t: float, c: tracks.Crossing = c) -> float:
            return geodesic_m(c.lat_c, c.lon_c, *c.at(t))

        assert d(c.entry_s - EPS_S) > r > d(c.entry_s + EPS_S)
        assert d(c.exit_s - EPS_S) < r < d(c.exit_s + EPS_S)
        assert d(c.t_centre) == pytest.approx(0.0, abs=0.01)
        # ring reached only after the warm-up: nothing for emon to decide in the first seconds
        assert d(tracks.WARMUP_S) >= r + tracks.PREALERT_M - 0.01
        t = c.entry_s
        assert geodesic_m(*c.at(t), *c.at(t + 1.0)) == pytest.approx(tracks.SPEED_MPS, rel=1e-3)
    # spread over the window, not bunched at its start
    entries = sorted(c.entry_s for c in crossings.values())
    quarter = (last - first) / 4
    assert all(any(first + q * quarter <= e < first + (q + 1) * quarter for e in entries) for q in range(4))


def test_the_cases_zone_is_the_one_the_track_crosses() -> None:
    n = 200
    crossings = tracks.schedule(n, 100, 10, device_positions(n))
    for case in bench_cases(n):
        i = int(case.offender_device.rsplit("-", 1)[1])
        zone = case.order.exclusion_zones[0]
        assert zone.circle is not None
        assert (zone.circle.lat, zone.circle.lon) == (crossings[i].lat_c, crossings[i].lon_c)
        assert zone.circle.radius_m == tracks.ZONE_RADIUS_M


def test_emon_decides_the_crossings_as_breaches_after_the_warm_up() -> None:
    """The publisher's timing at 10,000 devices / 5,000 per second (a fix every 2 s per device), scaled down
    to 100 offenders: every offender gets a pre-alert, every one with two report intervals left after entering
    a possible breach at least, every one with three a proven breach — and nothing before the warm-up ends."""
    n, rate, duration = 1_000, 500.0, 10.0
    interval = n / rate
    engine = Engine()
    for case in bench_cases(n):
        engine.add_case(case)
    crossings = tracks.schedule(n, rate, duration, device_positions(n))
    seen: dict[str, set[int]] = defaultdict(set)
    first_decision = duration
    for m in range(int(rate * duration)):
        k = m % n
        if k not in crossings:
            continue
        t = m / rate
        fix = Fix(f"bench-{k:06d}", T0 + timedelta(seconds=t), *crossings[k].at(t), 8.0)
        for ev in engine.evaluate(fix, fix.ts + timedelta(seconds=0.05)):
            seen[ev.type.value].add(k)
            first_decision = min(first_decision, t)
    assert first_decision >= tracks.WARMUP_S
    assert seen["exclusion_pre_alert"] == set(crossings)

    def entering_by(left: int) -> set[int]:
        return {k for k, c in crossings.items() if c.entry_s <= duration - left * interval}

    assert len(entering_by(2)) > len(crossings) / 2
    assert entering_by(2) <= seen["possible_breach"] | seen["exclusion_breach"]
    assert entering_by(3) and entering_by(3) <= seen["exclusion_breach"]
