"""Geodesy everywhere (issue 9, item 5): zones across the antimeridian and near the poles,
measured against ``pyproj.Geod``."""

from __future__ import annotations

from typing import Any

import pytest
from pyproj import Geod

from emon.geofence import EvalConfig, compile_case
from emon.geofence.measure import zone_distances
from emon.order import parse_order
from tests.geofence.conftest import make_case

GEOD = Geod(ellps="WGS84")
# A box 0.02° wide (lon 179.99 … -179.99, ≈ 760 m at 70 N) and 0.01° high, across the antimeridian.
SPLIT: dict[str, Any] = {
    "type": "MultiPolygon",
    "coordinates": [
        [[[179.99, 70.0], [180.0, 70.0], [180.0, 70.01], [179.99, 70.01], [179.99, 70.0]]],
        [[[-180.0, 70.0], [-179.99, 70.0], [-179.99, 70.01], [-180.0, 70.01], [-180.0, 70.0]]],
    ],
}
# The same box drawn as one ring with longitudes beyond 180.
BEYOND: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [[[179.99, 70.0], [180.01, 70.0], [180.01, 70.01], [179.99, 70.01], [179.99, 70.0]]],
}


def _d(
    geometry: dict[str, Any], lat: float, lon: float, residence: tuple[float, float] = (70.005, 179.999)
) -> float:
    case = make_case(exclusion=[{"name": "z", "geometry": geometry}], residence=residence)
    return float(zone_distances([(lat, lon, compile_case(case, EvalConfig()))])[0][0])


def _to_meridian(lat: float, lon: float, edge_lon: float) -> float:
    """Geodesic distance (m) from (lat, lon) to the meridian ``edge_lon`` (a geodesic) at that latitude."""
    return float(GEOD.inv(lon, lat, edge_lon, lat)[2])


@pytest.mark.parametrize("geometry", [SPLIT, BEYOND], ids=["rfc7946-split", "lon-beyond-180"])
@pytest.mark.parametrize(
    ("lat", "lon", "edge_lon", "inside"),
    [
        (70.005, 179.999, 179.99, True),  # just west of the seam: the nearest edge is 0.009° away
        (70.005, -179.999, -179.99, True),  # just east of it
        (70.005, 180.0, 179.99, True),  # on the seam itself, the middle of the zone
        (70.005, -179.98, -179.99, False),  # outside, east
        (70.005, 179.975, 179.99, False),  # outside, west
    ],
)
def test_antimeridian_zone_is_one_area_measured_geodesically(
    geometry: dict[str, Any], lat: float, lon: float, edge_lon: float, inside: bool
) -> None:
    d = _d(geometry, lat, lon)
    expected = _to_meridian(lat, lon, edge_lon)
    # The seam is not an edge: inside, the distance is to the real edge (≈ 340 m), not ≤ 40 m.
    assert d == pytest.approx(-expected if inside else expected, abs=0.5)


def test_longitudes_beyond_180_are_normalised_into_the_rfc7946_split() -> None:
    order = parse_order({"exclusion_zones": [{"name": "z", "geometry": BEYOND}]})
    geometry = order.exclusion_zones[0].geometry
    assert geometry is not None and geometry["type"] == "MultiPolygon"
    lons = [p[0] for poly in geometry["coordinates"] for ring in poly for p in ring]
    assert (
        all(-180 <= x <= 180 for x in lons)
        and min(lons) == pytest.approx(-180)
        and max(lons) == pytest.approx(180)
    )
    circle = parse_order(
        {"exclusion_zones": [{"name": "c", "circle": {"lat": 70, "lon": 181, "radius_m": 100}}]}
    )
    assert circle.exclusion_zones[0].circle is not None and circle.exclusion_zones[
        0
    ].circle.lon == pytest.approx(-179)


def test_antimeridian_circle_given_at_lon_181_measures_right() -> None:
    case = make_case(
        exclusion=[{"name": "c", "circle": {"lat": 70.0, "lon": 181.0, "radius_m": 500}}],
        residence=(70.0, -179.0),
    )
    lat, lon = 70.0, 179.99
    d = float(zone_distances([(lat, lon, compile_case(case, EvalConfig()))])[0][0])
    assert d == pytest.approx(GEOD.inv(-179.0, 70.0, lon, lat)[2] - 500, abs=0.01)


POLAR_CAP: dict[str, Any] = {  # everything north of 89.5°, as RFC 7946 draws it
    "type": "Polygon",
    "coordinates": [[[-180, 89.5], [180, 89.5], [180, 90], [-180, 90], [-180, 89.5]]],
}


@pytest.mark.parametrize(("lat", "lon"), [(89.4, 37.0), (89.3, -120.0), (89.6, 150.0), (89.8, -10.0)])
def test_zone_around_the_pole_is_measured_right(lat: float, lon: float) -> None:
    d = _d(POLAR_CAP, lat, lon, residence=(89.0, 0.0))
    expected = GEOD.inv(lon, lat, lon, 89.5)[2]  # along the meridian to the 89.5° parallel
    assert d == pytest.approx(expected if lat < 89.5 else -expected, rel=0.002, abs=1.0)


def test_small_zone_near_the_pole_is_measured_right() -> None:
    # Longyearbyen-like latitudes are easy; 88.5 N with a 2° wide box stresses the lon/lat edges.
    box = {"type": "Polygon", "coordinates": [[[10, 88.5], [12, 88.5], [12, 88.6], [10, 88.6], [10, 88.5]]]}
    lat, lon = 88.45, 11.0  # south of the box: the nearest edge is the 88.5 parallel
    d = _d(box, lat, lon, residence=(88.5, 11.0))
    assert d == pytest.approx(GEOD.inv(lon, lat, lon, 88.5)[2], abs=1.0)
