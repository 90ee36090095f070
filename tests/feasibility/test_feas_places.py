"""Protected and mandatory places, zone width and zone conflicts."""

from __future__ import annotations

import math

import pytest

from emon.feasibility import Code, Severity

from .helpers import CITIES, at, circle, codes, geod_m, only, polygon, request, run

CITY_IDS = list(CITIES)


@pytest.mark.parametrize("city", CITY_IDS)
def test_protected_place_outside_every_zone(city: str) -> None:
    victim = CITIES[city]
    school = at(victim, 120, 2000)
    document = request(at(victim, 300, 5000), [circle("woning", victim, 500)], protected=[("school", school)])
    finding = only(run(document), Code.PROTECTED_PLACE_NOT_COVERED)
    assert (finding.severity, finding.zone, finding.place) == (Severity.WARNING, "woning", "school")
    assert finding.figures["distance_m"] == pytest.approx(geod_m(school, victim) - 500, abs=1.0)


def test_protected_place_without_any_zone() -> None:
    victim = CITIES["sevilla_es"]
    report = run(request(at(victim, 0, 3000), protected=[("casa", victim)]))
    finding = only(report, Code.PROTECTED_PLACE_NOT_COVERED)
    assert finding.zone is None and finding.place == "casa"
    assert report.enforceable  # a warning, not a blocking finding


@pytest.mark.parametrize("city", CITY_IDS)
@pytest.mark.parametrize(("offset_m", "near_edge"), [(420.0, True), (299.0, False), (0.0, False)])
def test_protected_place_near_the_edge_of_a_circle(city: str, offset_m: float, near_edge: bool) -> None:
    centre = CITIES[city]
    home = at(centre, 200, offset_m)
    report = run(request(at(centre, 0, 4000), [circle("zone", centre, 500)], protected=[("home", home)]))
    if not near_edge:
        assert Code.PROTECTED_PLACE_NEAR_EDGE.value not in codes(report)
        return
    finding = only(report, Code.PROTECTED_PLACE_NEAR_EDGE)
    assert finding.figures["margin_m"] == pytest.approx(500 - geod_m(centre, home), abs=1.0)
    assert finding.figures["required_m"] == 200


@pytest.mark.parametrize("city", CITY_IDS)
def test_protected_place_near_the_edge_of_a_polygon(city: str) -> None:
    """A 1.2 km square; the place is 90 m inside its east edge."""
    centre = CITIES[city]
    corners = [at(centre, az, 600 * math.sqrt(2)) for az in (45, 135, 225, 315)]
    place = at(centre, 90, 510)
    report = run(request(at(centre, 270, 3000), [polygon("wijk", corners)], protected=[("huis", place)]))
    finding = only(report, Code.PROTECTED_PLACE_NEAR_EDGE)
    assert finding.figures["margin_m"] == pytest.approx(geod_m(place, at(centre, 90, 600)), abs=1.0)


def test_deepest_zone_counts_for_the_margin() -> None:
    """Near the edge of one zone but deep inside another: no warning."""
    centre = CITIES["tromso_no"]
    home = at(centre, 0, 450)
    zones = [circle("small", centre, 500), circle("big", home, 800)]
    report = run(request(at(centre, 180, 5000), zones, protected=[("home", home)]))
    assert not {"PROTECTED_PLACE_NEAR_EDGE", "PROTECTED_PLACE_NOT_COVERED"} & set(codes(report))


@pytest.mark.parametrize("city", CITY_IDS)
def test_narrow_polygon_is_too_small(city: str) -> None:
    """An 80 m wide, 2 km long strip: the widest inscribed circle is 80 m across."""
    start = CITIES[city]
    a, b = at(start, 0, 40), at(start, 180, 40)
    ring = [a, at(a, 90, 2000), at(b, 90, 2000), b]
    report = run(request(at(start, 270, 5000), [polygon("strook", ring)]))
    finding = only(report, Code.ZONE_TOO_SMALL)
    assert finding.figures["width_m"] == pytest.approx(80, abs=1.0)
    assert finding.figures["required_m"] == 120 and finding.figures["gps_accuracy_m"] == 30
    assert report.enforceable


def test_small_circle_is_too_small_and_wide_enough_is_not() -> None:
    centre = CITIES["quito_ec"]
    report = run(
        request(at(centre, 0, 5000), [circle("klein", centre, 50), circle("ok", at(centre, 90, 500), 60)])
    )
    finding = only(report, Code.ZONE_TOO_SMALL)
    assert finding.zone == "klein" and finding.figures["width_m"] == 100


def test_inclusion_zone_overlapping_exclusion_zone() -> None:
    """Two 500 m circles 600 m apart overlap in a lens of known area."""
    a = CITIES["utrecht_nl"]
    b = at(a, 60, 600)
    report = run(request(at(a, 240, 4000), [circle("verbod", a, 500)], inclusion=[circle("gebod", b, 500)]))
    finding = only(report, Code.ZONE_CONFLICT)
    r, d = 500.0, geod_m(a, b)
    lens = 2 * r * r * math.acos(d / (2 * r)) - (d / 2) * math.sqrt(4 * r * r - d * d)
    assert finding.zone == "verbod" and finding.severity is Severity.BLOCKING
    assert finding.figures["overlap_area_m2"] == pytest.approx(lens, rel=0.005)
    assert "gebod" in finding.message.en and not report.enforceable


def test_zones_sharing_an_edge_do_not_conflict() -> None:
    o = CITIES["sevilla_es"]
    n, e, ne = at(o, 0, 1000), at(o, 90, 1000), at(at(o, 0, 1000), 90, 1000)
    ring = [o, n, ne, e]
    east = [e, ne, at(ne, 90, 1000), at(e, 90, 1000)]
    report = run(request(at(o, 225, 5000), [polygon("west", ring)], inclusion=[polygon("east", east)]))
    assert Code.ZONE_CONFLICT.value not in codes(report)


@pytest.mark.parametrize("city", CITY_IDS)
def test_mandatory_place_inside_exclusion_zone(city: str) -> None:
    centre = CITIES[city]
    work = at(centre, 10, 350)
    report = run(request(at(centre, 180, 4000), [circle("centrum", centre, 500)], mandatory=[("werk", work)]))
    finding = only(report, Code.ZONE_CONFLICT)
    assert (finding.zone, finding.place) == ("centrum", "werk")
    assert finding.figures["depth_m"] == pytest.approx(500 - geod_m(centre, work), abs=1.0)
    assert not report.enforceable


def test_mandatory_place_outside_is_fine() -> None:
    centre = CITIES["tromso_no"]
    report = run(
        request(at(centre, 180, 4000), [circle("c", centre, 500)], mandatory=[("w", at(centre, 0, 600))])
    )
    assert report.enforceable
