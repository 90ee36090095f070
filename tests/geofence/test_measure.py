"""Distances used by the engine agree with pyproj.Geod anywhere on Earth (0.5 m or 0.05 %)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import mapping

from emon.geo import LocalFrame, geodesic_circle, geodesic_m
from emon.geofence import CompiledCase, EvalConfig, compile_case
from emon.geofence.measure import (
    aeqd_xy,
    segment_through,
    signed_distances,
    zone_distance_lists,
    zone_distances,
)

from .conftest import CENTRE, Step, at, build_fixes, circle_zone, engine_for, make_case, run_live, types

GEOD = Geod(ellps="WGS84")
lats = st.floats(-80, 80)
lons = st.floats(-180, 180)
azimuths = st.floats(0, 360)


def tolerance(expected_m: float) -> float:
    return max(0.5, 0.0005 * abs(expected_m))


def offset(lat: float, lon: float, az: float, dist: float) -> tuple[float, float]:
    lon2, lat2, _ = GEOD.fwd(lon, lat, az, dist)
    return float(lat2), (float(lon2) + 180) % 360 - 180


@settings(max_examples=80, deadline=None)
@given(lat=lats, lon=lons, radius=st.floats(10, 5000), az=azimuths, dist=st.floats(0, 20_000))
def test_circle_zone_distance_is_geodesic(
    lat: float, lon: float, radius: float, az: float, dist: float
) -> None:
    case = make_case(exclusion=[circle_zone("c", (lat, lon), radius)], residence=(lat, lon))
    flat, flon = offset(lat, lon, az, dist)
    d = zone_distances([(flat, flon, compile_case(case, EvalConfig()))])[0][0]
    _, _, expected = GEOD.inv(lon, lat, flon, flat)
    assert abs(d - (expected - radius)) <= tolerance(expected - radius)


@settings(max_examples=60, deadline=None)
@given(
    lat=st.floats(-75, 75),
    lon=st.floats(-179, 179),
    radius=st.floats(50, 3000),
    res_az=azimuths,
    res_dist=st.floats(0, 40_000),
    az=azimuths,
    dist=st.floats(0, 15_000),
)
def test_polygon_zone_distance_matches_geod(
    lat: float, lon: float, radius: float, res_az: float, res_dist: float, az: float, dist: float
) -> None:
    # A 256-gon of the geodesic circle: its edge is within 7.5e-5 r of the true circle.
    poly = json.loads(json.dumps(mapping(geodesic_circle(lat, lon, radius))))
    residence = offset(lat, lon, res_az, res_dist)
    case = make_case(exclusion=[{"name": "p", "geometry": poly}], residence=residence)
    flat, flon = offset(lat, lon, az, dist)
    d = zone_distances([(flat, flon, compile_case(case, EvalConfig()))])[0][0]
    _, _, centre = GEOD.inv(lon, lat, flon, flat)
    expected = centre - radius
    assert abs(d - expected) <= tolerance(expected) + 7.5e-5 * radius


@pytest.mark.parametrize(
    ("lat0", "lon0"), [(52.1, 5.1), (40.4, -3.7), (70.0, 23.0), (65.0, 179.99), (-33.9, 151.2)]
)
def test_aeqd_is_the_local_frame(lat0: float, lon0: float) -> None:
    frame = LocalFrame(lat0, lon0)
    rng = np.random.default_rng(1)
    lat = lat0 + rng.uniform(-0.5, 0.5, 50)
    lon = lon0 + rng.uniform(-0.5, 0.5, 50)
    x, y = aeqd_xy(lat0, lon0, lat, lon)
    fx, fy = frame.to_xy_many(lat, (lon + 180) % 360 - 180)
    assert np.allclose(x, fx, atol=1e-6) and np.allclose(y, fy, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(lat=st.floats(60, 72), az=azimuths, dist=st.floats(0, 2000))
def test_antimeridian_circle(lat: float, az: float, dist: float) -> None:
    case = make_case(exclusion=[circle_zone("c", (lat, 179.99), 500)], residence=(lat, 179.99))
    flat, flon = offset(lat, 179.99, az, dist)
    d = zone_distances([(flat, flon, compile_case(case, EvalConfig()))])[0][0]
    _, _, expected = GEOD.inv(179.99, lat, flon, flat)
    assert abs(d - (expected - 500)) <= tolerance(expected - 500)


def test_antimeridian_entry_and_proximity_in_northern_norway_latitudes() -> None:
    # Zone centred at lon 179.99 (70 N); offender walks in from lon -179.9x (west of the line).
    origin = (70.0, -179.99)  # ~760 m east of the centre across the antimeridian
    case = make_case(exclusion=[circle_zone("c", (70.0, 179.99), 500)], residence=(70.0, 179.99))
    steps = [Step(0, 600), Step(10, 300), Step(20, 0), Step(30, -100), Step(40, -200), Step(50, -300)]
    steps += [Step(60, -400), Step(70, -500), Step(80, -600)]
    fixes = build_fixes(steps, origin=origin)
    events = run_live(engine_for(case), fixes)
    assert types(events)[:3] == ["exclusion_pre_alert", "possible_breach", "exclusion_breach"]
    breach = next(e for e in events if e.type.value == "exclusion_breach")
    fix = next(f for f in fixes if f.ts == breach.at)
    _, _, centre = GEOD.inv(179.99, 70.0, fix.lon, fix.lat)
    assert breach.distance_m == pytest.approx(centre - 500, abs=0.5)
    assert fixes[5].lon < 0 < fix.lon  # evidence began west of the line, proven east of it


def test_polygon_zone_far_from_residence_gets_its_own_frame() -> None:
    poly = json.loads(json.dumps(mapping(geodesic_circle(69.65, 18.96, 300))))  # Tromsø
    compiled = compile_case(
        make_case(exclusion=[{"name": "p", "geometry": poly}], residence=(59.91, 10.75)), EvalConfig()
    )
    assert len(compiled.frames) == 2
    flat, flon = offset(69.65, 18.96, 45, 1000)
    d = zone_distances([(flat, flon, compiled)])[0][0]
    assert d == pytest.approx(700, abs=0.5)


def one_zone(lat: float, lon: float, compiled: CompiledCase, k: int) -> float:
    """Zone ``k`` of ``compiled`` measured on its own (a circle: geodesic minus radius; a polygon: in
    its frame), as the reference for the batched measurement."""
    z = compiled.zones[k]
    if z.is_circle:
        i = z.index
        centre = (float(compiled.circle_lat[i]), float(compiled.circle_lon[i]))
        return geodesic_m(lat, lon, *centre) - float(compiled.circle_r[i])
    x, y = aeqd_xy(*compiled.frames[z.frame], np.array([lat]), np.array([lon]))
    point = shapely.Point(float(x[0]), float(y[0]))
    d = float(shapely.distance(shapely.boundary(compiled.polygons[z.index]), point))
    return -d if shapely.contains(compiled.polygons[z.index], point) else d


def test_a_batch_of_cases_with_zones_in_any_order_gets_each_case_its_own_distances() -> None:
    """Circles and polygons interleaved in the order, exclusion and inclusion, cases with one kind
    only or none: every item gets its own zones' distances, in its zones' order, as alone."""
    square = {
        "type": "Polygon",
        "coordinates": [[[4.89, 52.36], [4.91, 52.36], [4.91, 52.38], [4.89, 52.38]]],
    }
    ring = json.loads(json.dumps(mapping(geodesic_circle(52.40, 4.95, 300.0, 12))))
    mixed = make_case(
        exclusion=[
            {"name": "p", "geometry": square},
            circle_zone("c", radius_m=50.0),
            {"name": "r", "geometry": ring},
        ],
        inclusion=[circle_zone("home", radius_m=2000.0)],
    )
    circles = make_case(
        exclusion=[circle_zone("a", (52.30, 4.80), 200.0), circle_zone("b")], case_id="case-2"
    )
    polygons = make_case(
        exclusion=[{"name": "q", "geometry": ring}], inclusion=[{"name": "s", "geometry": square}]
    )
    bare = make_case(contact_ban_m=100, case_id="case-4")
    compiled = [compile_case(c, EvalConfig()) for c in (mixed, circles, polygons, bare, mixed)]
    points = [(52.37, 4.90), (52.371, 4.902), (52.401, 4.951), (52.35, 4.85), (52.39, 4.93)]
    items = [(lat, lon, cc) for (lat, lon), cc in zip(points, compiled, strict=True)]
    arrays = zone_distances(items)
    lists = zone_distance_lists(items)
    assert [len(a) for a in arrays] == [len(cc.zones) for cc in compiled] == [4, 2, 2, 0, 4]
    for (lat, lon, cc), got, listed in zip(items, arrays, lists, strict=True):
        expected = [one_zone(lat, lon, cc, k) for k in range(len(cc.zones))]
        assert got.tolist() == pytest.approx(expected, abs=1e-6)
        assert listed == got.tolist()
        assert zone_distances([(lat, lon, cc)])[0].tolist() == listed
    assert zone_distances([]) == zone_distance_lists([]) == []


def _areas() -> list[shapely.Geometry]:
    """Areas of every shape a zone compiles to: convex, concave, with a hole, in parts, and large
    enough to be prepared (rules.PREPARE_ABOVE)."""
    large = shapely.Point(3.3, -7.1).buffer(800.0, 64)
    shapely.prepare(large)
    return [
        shapely.Point(0.0, 0.0).buffer(300.0, 3),
        shapely.Polygon([(0, 0), (1000, 0), (1000, 1000), (500, 200), (0, 1000)]),
        shapely.Polygon(
            [(-500, -500), (500, -500), (500, 500), (-500, 500)],
            [[(-100, -100), (100, -100), (100, 100), (-100, 100)]],
        ),
        shapely.MultiPolygon([shapely.Point(0, 0).buffer(100, 8), shapely.Point(400, 0).buffer(100, 8)]),
        large,
        shapely.set_precision(shapely.Point(3.3, 7.1).buffer(257.3, 5), 1e-3),
    ]


@pytest.mark.parametrize("area", _areas(), ids=lambda a: a.geom_type)
def test_signed_distances_to_areas_are_those_to_their_boundaries(area: shapely.Geometry) -> None:
    """The distance to the area stands in for the one to its boundary: bit for bit, at vertices,
    on edges, just either side of them, inside, in holes and far out."""
    rng = np.random.default_rng(5)
    corners = shapely.get_coordinates(area)
    mids = (corners[:-1] + corners[1:]) / 2
    near = np.concatenate([corners, mids]) + rng.normal(0.0, 1e-6, (2 * len(corners) - 1, 2))
    spread = rng.uniform(-3000.0, 3000.0, (4000, 2))
    xy = np.concatenate([corners, mids, near, spread, [[0.0, 0.0], [1e7, -1e7]]])
    x, y = xy[:, 0].copy(), xy[:, 1].copy()
    geoms = np.empty(len(x), dtype=object)
    geoms[:] = [area] * len(x)
    got = signed_distances(geoms, x, y)
    d = shapely.distance(shapely.boundary(geoms), shapely.points(x, y))
    expected = np.where(shapely.contains_xy(geoms, x, y), -d, d)
    assert got.tobytes() == expected.tobytes()
    assert (got < 0).any() and (got == 0).any() and (got > 0).any()


def _segment_through_rebuilt(
    case: CompiledCase, k: int, a: tuple[float, float], b: tuple[float, float]
) -> tuple[float, float, bool]:
    """:func:`segment_through` building everything afresh: the disc of a circle for each call, and
    the hull from a multipoint."""
    z = case.zones[k]
    lats, lons = np.array([a[0], b[0]]), np.array([a[1], b[1]])
    if z.is_circle:
        lat0, lon0 = float(case.circle_lat[z.index]), float(case.circle_lon[z.index])
        geom = shapely.Point(0.0, 0.0).buffer(float(case.circle_r[z.index]), 64)
        convex = True
    else:
        lat0, lon0 = case.frames[z.frame]
        geom = case.polygons[z.index]
        convex = bool(shapely.area(geom) >= 0.999 * shapely.area(shapely.convex_hull(geom)))
    x, y = aeqd_xy(lat0, lon0, lats, lons)
    seg = shapely.LineString(np.column_stack([x, y]))
    inside = float(shapely.length(shapely.intersection(seg, geom)))
    if inside <= 0:
        return 0.0, float(shapely.length(seg)), convex
    coords = np.vstack([shapely.get_coordinates(geom), [(x[0], y[0]), (x[1], y[1])]])
    hull = shapely.convex_hull(shapely.multipoints(coords))
    ring = np.asarray(shapely.get_coordinates(shapely.get_exterior_ring(hull)))[:-1]
    ia = int(np.argmin(np.hypot(ring[:, 0] - x[0], ring[:, 1] - y[0])))
    ib = int(np.argmin(np.hypot(ring[:, 0] - x[1], ring[:, 1] - y[1])))
    seglen = np.hypot(*(np.roll(ring, -1, axis=0) - ring).T)
    lo, hi = sorted((ia, ib))
    one = float(seglen[lo:hi].sum())
    return inside, min(one, float(seglen.sum()) - one), convex


def test_segment_through_is_the_same_with_shared_discs_and_hulls_from_lines() -> None:
    """Crossing checks share one disc per radius and build the hull from a line through the
    points: the same numbers, bit for bit, for circles and for convex, concave and holed polygons,
    with segments through the middle, grazing an edge, starting on a vertex and missing."""
    concave = {
        "type": "Polygon",
        "coordinates": [
            [
                list(at(CENTRE, e, n))[::-1]
                for e, n in [(-300, -300), (300, -300), (300, 300), (0, -100), (-300, 300), (-300, -300)]
            ]
        ],
    }
    ring = [(-400, -400), (400, -400), (400, 400), (-400, 400), (-400, -400)]
    hole = [(-100, -100), (-100, 100), (100, 100), (100, -100), (-100, -100)]
    holed = {
        "type": "Polygon",
        "coordinates": [[list(at(CENTRE, e, n))[::-1] for e, n in r] for r in (ring, hole)],
    }
    square = json.loads(json.dumps(mapping(geodesic_circle(*CENTRE, 250.0, 4))))
    case = compile_case(
        make_case(
            exclusion=[
                circle_zone("c", radius_m=250.0),
                circle_zone("small", radius_m=37.5),
                {"name": "square", "geometry": square},
                {"name": "concave", "geometry": concave},
                {"name": "holed", "geometry": holed},
            ]
        ),
        EvalConfig(),
    )
    rng = np.random.default_rng(11)
    ends = [at(CENTRE, float(e), float(n)) for e, n in rng.uniform(-700.0, 700.0, (40, 2))]
    ends += [at(CENTRE, -600.0, 250.0), at(CENTRE, 600.0, 250.0), at(CENTRE, 0.0, -250.0)]  # grazing
    checked = 0
    for k in range(len(case.zones)):
        for a, b in zip(ends, ends[::-1], strict=True):
            for _ in range(2):  # the second time from the shared disc
                assert segment_through(case, k, a, b) == _segment_through_rebuilt(case, k, a, b)
            checked += segment_through(case, k, a, b)[0] > 0
    assert checked > 20
