"""RESIDENCE_INSIDE_ZONE / RESIDENCE_TOO_CLOSE: geodesic distances checked against pyproj.Geod (< 1 m)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emon.feasibility import Code, Severity

from .helpers import CITIES, GEOD, at, circle, geod_m, only, polygon, request, run

CITY_IDS = list(CITIES)


@pytest.mark.parametrize("city", CITY_IDS)
@pytest.mark.parametrize(
    ("centre_m", "radius_m", "code"),
    [
        (800, 500, Code.RESIDENCE_TOO_CLOSE),  # 300 m from the edge
        (1499, 500, Code.RESIDENCE_TOO_CLOSE),  # 999 m: just under the guideline
        (200, 500, Code.RESIDENCE_INSIDE_ZONE),  # 300 m inside
        (1501, 500, None),  # 1001 m: fine
    ],
)
def test_circle_distance_is_geodesic(city: str, centre_m: float, radius_m: float, code: Code | None) -> None:
    victim = CITIES[city]
    residence = at(victim, 37.0, centre_m)
    report = run(request(residence, [circle("slachtoffer", victim, radius_m)], protected=[("thuis", victim)]))
    edge = geod_m(residence, victim) - radius_m
    if code is None:
        assert report.enforceable, report.findings
        return
    finding = only(report, code)
    assert finding.severity is Severity.BLOCKING and finding.zone == "slachtoffer"
    assert not report.enforceable
    if code is Code.RESIDENCE_TOO_CLOSE:
        assert finding.figures["distance_m"] == pytest.approx(edge, abs=1.0)
        assert finding.figures["required_m"] == 1000
        assert finding.figures["shortfall_m"] == pytest.approx(1000 - edge, abs=1.0)
    else:
        assert finding.figures["depth_m"] == pytest.approx(-edge, abs=1.0)


def _diamond(tip: tuple[float, float]) -> list[tuple[float, float]]:
    """A polygon pointing at the residence (due south of ``tip``): ``tip`` is its nearest point."""
    return [tip, at(tip, 45, 700), at(tip, 0, 1000), at(tip, -45, 700)]


@pytest.mark.parametrize("city", CITY_IDS)
@pytest.mark.parametrize("distance_m", [250.0, 640.0, 999.0])
def test_polygon_nearest_vertex(city: str, distance_m: float) -> None:
    residence = CITIES[city]
    tip = at(residence, 0, distance_m)
    report = run(request(residence, [polygon("wijk", _diamond(tip))]))
    finding = only(report, Code.RESIDENCE_TOO_CLOSE)
    assert finding.figures["distance_m"] == pytest.approx(geod_m(residence, tip), abs=1.0)


@pytest.mark.parametrize("city", CITY_IDS)
def test_polygon_far_enough(city: str) -> None:
    residence = CITIES[city]
    report = run(request(residence, [polygon("wijk", _diamond(at(residence, 0, 1002)))]))
    assert report.enforceable, report.findings


@pytest.mark.parametrize("city", CITY_IDS)
def test_polygon_nearest_point_on_an_edge(city: str) -> None:
    """The near edge faces the residence; compare with Geod along the lon/lat-straight edge."""
    residence = CITIES[city]
    a = at(residence, 150, 700 / math.cos(math.radians(30)))
    b = at(residence, 210, 700 / math.cos(math.radians(30)))
    ring = [a, b, at(b, 180, 900), at(a, 180, 900)]
    report = run(request(residence, [polygon("park", ring)]))
    t = np.linspace(0, 1, 4001)
    edge_lats, edge_lons = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
    _, _, dist = GEOD.inv(np.full_like(t, residence[1]), np.full_like(t, residence[0]), edge_lons, edge_lats)
    assert only(report, Code.RESIDENCE_TOO_CLOSE).figures["distance_m"] == pytest.approx(min(dist), abs=1.0)
    assert min(dist) == pytest.approx(700, abs=1.0)


@pytest.mark.parametrize("city", CITY_IDS)
def test_residence_inside_polygon(city: str) -> None:
    residence = CITIES[city]
    corners = [at(residence, az, 400 * math.sqrt(2)) for az in (45, 135, 225, 315)]
    finding = only(run(request(residence, [polygon("blok", corners)])), Code.RESIDENCE_INSIDE_ZONE)
    nearest_edge_mid = at(residence, 90, 400)  # midpoint of the east edge, by symmetry
    assert finding.figures["depth_m"] == pytest.approx(geod_m(residence, nearest_edge_mid), abs=1.0)


def test_rd_new_input_gives_the_same_answer_as_lat_lon() -> None:
    """Residence and zone centre in RD New (EPSG:28992): 800 m apart in Utrecht."""
    rd = {
        "residence": {"rd": {"x": 136800, "y": 456000}},
        "order": {
            "exclusion_zones": [
                {"name": "woning", "circle": {"rd": {"x": 136000, "y": 456000}, "radius_m": 500}}
            ],
            "valid_until": "2027-01-01T00:00:00Z",
        },
        "protected_places": [{"name": "woning", "position": {"rd": {"x": 136000, "y": 456000}}}],
    }
    finding = only(run(rd), Code.RESIDENCE_TOO_CLOSE)
    residence, victim = (52.091957598572755, 5.121630003973045), (52.09193072907973, 5.109956581446734)
    assert finding.figures["distance_m"] == pytest.approx(geod_m(residence, victim) - 500, abs=1.0)
    assert finding.figures["distance_m"] == pytest.approx(300, abs=1.0)


def test_guideline_is_a_setting() -> None:
    from emon.feasibility import FeasibilitySettings

    victim = CITIES["utrecht_nl"]
    document = request(at(victim, 0, 1300), [circle("z", victim, 500)])
    assert run(document, settings=FeasibilitySettings(guideline_m=700)).enforceable
    assert not run(document, settings=FeasibilitySettings(guideline_m=900)).enforceable
