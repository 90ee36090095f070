"""Distances used by the engine agree with pyproj.Geod anywhere on Earth (0.5 m or 0.05 %)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import mapping

from emon.geo import LocalFrame, geodesic_circle
from emon.geofence import EvalConfig, compile_case
from emon.geofence.measure import aeqd_xy, zone_distances

from .conftest import Step, build_fixes, circle_zone, engine_for, make_case, run_live, types

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
