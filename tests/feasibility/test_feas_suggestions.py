"""The inspection's case and the enforceable alternatives (smaller circle, trimmed polygon, dynamic)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emon.feasibility import Code, Report, SuggestionKind
from emon.order import Zone

from .helpers import CITIES, at, circle, codes, geod_m, only, polygon, request, run

CITY_IDS = list(CITIES)


def _replace_zone(document: dict[str, Any], zone: dict[str, Any]) -> dict[str, Any]:
    return {**document, "order": {**document["order"], "exclusion_zones": [zone]}}


def _assert_far_enough(report: Report, residence: tuple[float, float]) -> None:
    """Every vertex of every suggested zone is at least the guideline (1000 m) from the residence."""
    for s in report.suggestions:
        if s.zone_document is None or "geometry" not in s.zone_document:
            continue
        geometry = s.zone_document["geometry"]
        polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
        rings = [ring for rings_of_one in polygons for ring in rings_of_one]
        for ring in rings:
            assert min(geod_m(residence, (lat, lon)) for lon, lat in ring) >= 1000 - 0.01


@pytest.mark.parametrize("city", CITY_IDS)
def test_inspection_case(city: str) -> None:
    """A 500 m ban around the victim's address, offender living 800 m away: no fixed circle works."""
    victim = CITIES[city]
    residence = at(victim, 250, 800)
    zone = circle("Woning slachtoffer", victim, 500)
    report = run(request(residence, [zone], protected=[("Woning slachtoffer", victim)]))

    assert not report.enforceable
    assert codes(report) == ["RESIDENCE_TOO_CLOSE"]
    finding = only(report, Code.RESIDENCE_TOO_CLOSE)
    assert finding.figures["distance_m"] == pytest.approx(geod_m(residence, victim) - 500, abs=1.0)
    assert finding.figures["distance_m"] == pytest.approx(300, abs=1.0)
    assert finding.figures["required_m"] == 1000

    (suggestion,) = report.suggestions
    assert suggestion.kind is SuggestionKind.DYNAMIC_MONITORING and suggestion.zone_document is None
    assert suggestion.figures["max_radius_m"] == pytest.approx(-200, abs=1.0)
    assert suggestion.figures["contact_ban_m"] == 500
    assert "Geen vaste cirkel" in suggestion.message.nl and "contactverbod van 500 m" in suggestion.message.nl
    assert "No fixed circle" in suggestion.message.en and "victim has no device" in suggestion.message.en

    roles = [f["properties"]["role"] for f in report.geojson["features"]]
    assert roles == ["exclusion_zone", "residence", "protected_place", "guideline"]
    ring = report.geojson["features"][3]["geometry"]["coordinates"][0]
    assert all(geod_m(residence, (lat, lon)) == pytest.approx(1000, abs=0.01) for lon, lat in ring)


def test_dynamic_advice_with_victim_device_and_larger_contact_ban() -> None:
    victim = CITIES["utrecht_nl"]
    document = request(
        at(victim, 0, 800),
        [circle("W", victim, 500)],
        protected=[("W", victim)],
        victim_device=True,
        contact_ban_m=1500,
    )
    (suggestion,) = run(document).suggestions
    assert suggestion.figures["contact_ban_m"] == 1500
    assert "device yet" not in suggestion.message.en


@pytest.mark.parametrize("city", CITY_IDS)
def test_smaller_circle_keeps_the_guideline(city: str) -> None:
    victim = CITIES[city]
    residence = at(victim, 10, 2200)
    document = request(residence, [circle("W", victim, 1500)], protected=[("thuis", victim)])
    report = run(document)
    only(report, Code.RESIDENCE_TOO_CLOSE)
    (s,) = report.suggestions
    assert s.kind is SuggestionKind.SMALLER_CIRCLE and s.workable
    expected = math.floor(geod_m(residence, victim) - 1000)
    assert s.figures["radius_m"] == expected
    assert s.coverage[0].place == "thuis" and s.coverage[0].protected
    assert s.coverage[0].margin_m == pytest.approx(expected, abs=1.0)
    assert s.zone_document is not None
    Zone.model_validate(s.zone_document)
    assert run(_replace_zone(document, dict(s.zone_document))).enforceable
    assert report.geojson["features"][-1]["properties"] == {
        "role": "suggested_zone",
        "name": "W",
        "kind": "smaller_circle",
    }


@pytest.mark.parametrize("city", CITY_IDS)
def test_circle_falls_back_to_trimmed_shape(city: str) -> None:
    """Residence inside a 2 km circle, the protected place on the far side: a shrunk circle loses it,
    the circle minus the guideline disc keeps it."""
    centre = CITIES[city]
    residence, school = at(centre, 90, 1500), at(centre, 270, 1500)
    document = request(residence, [circle("wijk", centre, 2000)], protected=[("school", school)])
    report = run(document)
    only(report, Code.RESIDENCE_INSIDE_ZONE)
    (s,) = report.suggestions
    assert s.kind is SuggestionKind.TRIMMED_POLYGON and s.workable
    assert s.coverage[0].margin_m == pytest.approx(500, abs=1.0)
    assert s.zone_document is not None and "circle" not in s.zone_document
    _assert_far_enough(report, residence)
    assert run(_replace_zone(document, dict(s.zone_document))).enforceable


@pytest.mark.parametrize("city", CITY_IDS)
def test_trimmed_polygon(city: str) -> None:
    victim = CITIES[city]
    corners = [at(victim, az, 1500) for az in (45, 135, 225, 315)]
    residence = at(victim, 90, 1900)
    document = request(residence, [polygon("wijk", corners)], protected=[("huis", victim)])
    report = run(document)
    assert only(report, Code.RESIDENCE_TOO_CLOSE).figures["distance_m"] == pytest.approx(
        1900 - 1500 / math.sqrt(2), abs=1.0
    )
    (s,) = report.suggestions
    assert s.kind is SuggestionKind.TRIMMED_POLYGON and s.workable
    assert 0 < s.figures["area_m2"] < s.figures["original_area_m2"]
    assert s.zone_document is not None
    _assert_far_enough(report, residence)
    assert run(_replace_zone(document, dict(s.zone_document))).enforceable
    assert "1,000 m" in s.message.en and "'huis' stays protected" in s.message.en


def test_polygon_that_vanishes_entirely() -> None:
    residence = CITIES["tromso_no"]
    corners = [at(residence, az, 700) for az in (0, 90, 180, 270)]
    report = run(request(residence, [polygon("klein", corners)]))
    only(report, Code.RESIDENCE_INSIDE_ZONE)
    (s,) = report.suggestions
    assert s.kind is SuggestionKind.DYNAMIC_MONITORING
    assert "nothing of zone 'klein' remains" in s.message.en


def test_trimmed_polygon_that_no_longer_protects_the_place() -> None:
    """The protected place is 1.1 km from the residence: trimming leaves it 100 m inside, too little."""
    residence = CITIES["sevilla_es"]
    place = at(residence, 0, 1100)
    corners = [at(place, az, 2000) for az in (45, 135, 225, 315)]
    report = run(request(residence, [polygon("barrio", corners)], protected=[("casa", place)]))
    (s,) = report.suggestions
    assert s.kind is SuggestionKind.DYNAMIC_MONITORING
    assert "does not protect enough" in s.message.en and "'casa' is then only 99 m" in s.message.en
    assert s.coverage[0].margin_m == pytest.approx(100, abs=1.5) and not s.coverage[0].protected


@settings(max_examples=30, deadline=None)
@given(
    city=st.sampled_from(CITY_IDS),
    centre_m=st.floats(0, 3000),
    radius_m=st.floats(30, 2500),
    place_az=st.floats(0, 360),
    place_m=st.floats(0, 2500),
)
def test_every_workable_alternative_is_enforceable(
    city: str, centre_m: float, radius_m: float, place_az: float, place_m: float
) -> None:
    victim = CITIES[city]
    residence = at(victim, 0, centre_m)
    document = request(
        residence, [circle("Z", victim, radius_m)], protected=[("p", at(victim, place_az, place_m))]
    )
    report = run(document)
    for s in report.suggestions:
        if s.kind is not SuggestionKind.DYNAMIC_MONITORING:
            assert s.workable and s.zone_document is not None
            residence_codes = {"RESIDENCE_TOO_CLOSE", "RESIDENCE_INSIDE_ZONE"}
            assert not residence_codes & set(codes(run(_replace_zone(document, dict(s.zone_document)))))


def test_trimming_can_split_a_zone_in_two() -> None:
    """A 6 km x 400 m strip passing 500 m north of the residence: what remains is two parts."""
    residence = CITIES["auckland_nz"]
    south_mid, north_mid = at(residence, 0, 500), at(residence, 0, 900)
    ring = [
        at(south_mid, 270, 3000),
        at(north_mid, 270, 3000),
        at(north_mid, 90, 3000),
        at(south_mid, 90, 3000),
    ]
    document = request(residence, [polygon("weg", ring)])
    report = run(document)
    (s,) = report.suggestions
    assert s.kind is SuggestionKind.TRIMMED_POLYGON and s.zone_document is not None
    assert s.zone_document["geometry"]["type"] == "MultiPolygon"
    assert len(s.zone_document["geometry"]["coordinates"]) == 2
    _assert_far_enough(report, residence)
    assert run(_replace_zone(document, dict(s.zone_document))).enforceable
