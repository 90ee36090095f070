"""emon.order names the exact field of a bad order on its own (no pre-check by the caller)."""

from __future__ import annotations

from typing import Any

import pytest

from emon.errors import InvalidOrder
from emon.order import parse_order

BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[5.0, 52.0], [5.01, 52.01], [5.01, 52.0], [5.0, 52.01], [5.0, 52.0]]],
}
UTRECHT_RD = {"x": 136_000, "y": 456_000}


def zone(**shape: Any) -> dict[str, Any]:
    return {"exclusion_zones": [{"name": "W", **shape}]}


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # (what, order document, field, how the problem starts: our words, no "Value error, ")
    (
        "RD x out of range",
        zone(circle={"rd": {"x": -9e3, "y": 4.5e5}, "radius_m": 5}),
        "order.exclusion_zones.0.circle.rd.x",
        "Input should be greater than or equal to -7000",
    ),
    (
        "RD y missing",
        zone(circle={"rd": {"x": 136_000}, "radius_m": 5}),
        "order.exclusion_zones.0.circle.rd.y",
        "Field required",
    ),
    (
        "RD not an object",
        zone(circle={"rd": [136_000, 456_000], "radius_m": 5}),
        "order.exclusion_zones.0.circle.rd",
        "Input should be a valid dictionary or instance of RD",
    ),
    (
        "RD next to lat/lon",
        zone(circle={"rd": UTRECHT_RD, "lat": 52.1, "lon": 5.1, "radius_m": 5}),
        "order.exclusion_zones.0.circle",
        "give either lat/lon or rd, not both",
    ),
    (
        "RD circle with a bad radius",
        zone(circle={"rd": UTRECHT_RD, "radius_m": -1}),
        "order.exclusion_zones.0.circle.radius_m",
        "Input should be greater than 0",
    ),
    (
        "self-intersecting polygon",
        zone(geometry=BOWTIE),
        "order.exclusion_zones.0.geometry",
        "invalid polygon (e.g. self-intersecting): ",
    ),
    (
        "not a polygon",
        zone(geometry={"type": "Point", "coordinates": [5, 52]}),
        "order.exclusion_zones.0.geometry",
        "geometry type must be Polygon or MultiPolygon, not 'Point'",
    ),
    (
        "both shapes",
        zone(circle={"lat": 52.1, "lon": 5.1, "radius_m": 5}, geometry=BOWTIE),
        "order.exclusion_zones.0.geometry",
        "invalid polygon (e.g. self-intersecting): ",
    ),
    ("no shape", zone(), "order.exclusion_zones.0", "give exactly one of 'circle' and 'geometry'"),
]


@pytest.mark.parametrize(("what", "document", "field", "problem"), CASES, ids=[c[0] for c in CASES])
def test_order_error_names_the_exact_field(what: str, document: Any, field: str, problem: str) -> None:
    with pytest.raises(InvalidOrder) as info:
        parse_order(document)
    assert info.value.field == field
    assert info.value.problem.startswith(problem), info.value.problem


def test_rd_circle_becomes_lat_lon() -> None:
    circle = parse_order(zone(circle={"rd": UTRECHT_RD, "radius_m": 500})).exclusion_zones[0].circle
    assert circle is not None
    assert (round(circle.lat, 4), round(circle.lon, 4), circle.radius_m) == (52.0919, 5.11, 500)
