"""A compiled case is lean (issue #14): equal rules of different cases are one object, the zones'
numbers one buffer, no polygon boundaries are kept and only large polygons prepared; it measures as
before (test_measure)."""

from __future__ import annotations

import gc
import json
import tracemalloc
from typing import Any

import shapely
from shapely.geometry import mapping

from emon.geo import geodesic_circle
from emon.geofence import EvalConfig
from emon.geofence.measure import zone_distances
from emon.geofence.rules import PREPARE_ABOVE, compile_case
from tests.geofence.conftest import CENTRE, at, circle_zone, make_case
from tests.geofence.test_schedule import NIGHT


def _bench_like(i: int) -> dict[str, Any]:
    """The ``benchmarks.e2e`` population's case: 3 circles, 2 polygons (12 vertices), a contact ban;
    every case at its own place."""
    centre = at(CENTRE, 2000.0 * i)
    zones = [circle_zone(f"c{k}", at(centre, 300.0 * k), 100.0 + k) for k in range(3)]
    for k in (3, 4):
        poly = json.loads(json.dumps(mapping(geodesic_circle(*at(centre, 0.0, 400.0 * k), 150.0, 12))))
        zones.append({"name": f"p{k}", "geometry": poly})
    return {"exclusion": zones, "contact_ban_m": 500.0, "residence": centre, "case_id": f"case-{i}"}


def test_equal_rules_of_different_cases_are_one_object() -> None:
    config = EvalConfig()
    a, b = (compile_case(make_case(**_bench_like(i)), config) for i in (1, 2))
    assert a.zones is b.zones
    assert a.proximity is b.proximity
    assert a.circle_lat.tolist() != b.circle_lat.tolist()  # the places stay each case's own
    other = compile_case(make_case(**{**_bench_like(3), "contact_ban_m": 400.0}), config)
    assert other.zones is a.zones
    assert other.proximity is not a.proximity
    assert other.proximity is not None and other.proximity.ban_m == 400.0


def test_a_scheduled_rule_stays_the_case_s_own_and_keeps_its_schedule() -> None:
    night = circle_zone("home", radius_m=150, schedule=NIGHT.model_dump(mode="json"))
    a, b = (compile_case(make_case(inclusion=[night], case_id=f"case-{i}"), EvalConfig()) for i in (1, 2))
    assert a.zones[0] == b.zones[0]
    assert a.zones[0] is not b.zones[0]
    assert a.zones[0].schedule == NIGHT


def test_the_numbers_of_a_case_read_back_as_given() -> None:
    spec = _bench_like(0)
    compiled = compile_case(make_case(**spec), EvalConfig())
    circles = [z["circle"] for z in spec["exclusion"][:3]]
    assert compiled.circle_lat.tolist() == [c["lat"] for c in circles]
    assert compiled.circle_lon.tolist() == [c["lon"] for c in circles]
    assert compiled.circle_r.tolist() == [c["radius_m"] for c in circles]
    assert compiled.poly_lat0.tolist() == [compiled.frames[0][0]] * 2
    assert compiled.poly_lon0.tolist() == [compiled.frames[0][1]] * 2
    assert compiled.perm.tolist() == [0, 1, 2, 3, 4]
    assert len(compiled.polygons) == 2


def test_a_compiled_case_holds_under_a_kilobyte_of_python_objects() -> None:
    """Such a case took 2.5 KB of Python objects compiled (its own rules, eight numpy arrays, the
    polygons' boundaries), 0.54 KB now (the GEOS memory of its polygons not counted)."""
    config = EvalConfig()
    cases = [make_case(**_bench_like(i)) for i in range(200)]
    compile_case(cases[0], config)  # warm caches (shared rules, limits) outside the count
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        compiled = [compile_case(c, config) for c in cases]
        gc.collect()
        per_case = (tracemalloc.get_traced_memory()[0] - before) / len(compiled)
    finally:
        tracemalloc.stop()
    assert per_case < 1_000, per_case


def test_only_large_polygons_are_prepared_and_both_judge_alike() -> None:
    """A prepared polygon keeps an edge index for every open case; a small one answers as fast
    without it. Inside and outside stay the same either way."""
    small = json.loads(json.dumps(mapping(geodesic_circle(*CENTRE, 150.0, 12))))
    large = json.loads(json.dumps(mapping(geodesic_circle(*CENTRE, 150.0, PREPARE_ABOVE + 8))))
    zones = [{"name": "small", "geometry": small}, {"name": "large", "geometry": large}]
    compiled = compile_case(make_case(exclusion=zones), EvalConfig())
    assert [shapely.is_prepared(p) for p in compiled.polygons] == [False, True]
    for east_m in (0.0, 140.0, 149.0, 151.0, 300.0):
        lat, lon = at(CENTRE, east_m)
        small_d, large_d = zone_distances([(lat, lon, compiled)])[0]
        assert (small_d < 0) == (large_d < 0) == (east_m < 150.0)
