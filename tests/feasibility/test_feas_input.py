"""Invalid requests: one clear error naming the dotted field, never a traceback."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from emon.errors import InvalidOrder
from emon.feasibility import parse_request

from .helpers import CITIES, circle, polygon, request

VICTIM = CITIES["utrecht_nl"]


def _valid() -> dict[str, Any]:
    return request((52.10, 5.13), [circle("W", VICTIM, 500)], protected=[("W", VICTIM)])


def _with(path: str, value: Any) -> dict[str, Any]:
    """The valid document with ``path`` (dotted; ``-`` deletes) set to ``value``."""
    doc = copy.deepcopy(_valid())
    *parents, last = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value == "-":
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[5.0, 52.0], [5.01, 52.01], [5.01, 52.0], [5.0, 52.01], [5.0, 52.0]]],
}

CASES: list[tuple[str, Any, str, str]] = [
    # (what, document, field, words in the problem)
    ("missing residence", _with("residence", "-"), "residence", "required"),
    ("latitude out of range", _with("residence", {"lat": 95, "lon": 5}), "residence.lat", "90"),
    ("longitude out of range", _with("residence", {"lat": 52, "lon": -200}), "residence.lon", "-180"),
    (
        "RD x out of range",
        _with("residence", {"rd": {"x": 900_000, "y": 456_000}}),
        "residence.rd.x",
        "300000",
    ),
    ("RD y missing", _with("residence", {"rd": {"x": 136_000}}), "residence.rd.y", "required"),
    (
        "RD in a place out of range",
        _with("protected_places.0.position", {"rd": {"x": 136_000, "y": 100}}),
        "protected_places.0.position.rd.y",
        "289000",
    ),
    (
        "RD in a circle out of range",
        _with(
            "order.exclusion_zones.0", {"name": "W", "circle": {"rd": {"x": -9e3, "y": 4.5e5}, "radius_m": 5}}
        ),
        "order.exclusion_zones.0.circle.rd.x",
        "-7000",
    ),
    (
        "self-intersecting polygon",
        _with("order.exclusion_zones.0", {"name": "W", "geometry": BOWTIE}),
        "order.exclusion_zones.0.geometry",
        "self-intersect",
    ),
    (
        "not a polygon",
        _with(
            "order.exclusion_zones.0",
            {"name": "W", "geometry": {"type": "LineString", "coordinates": [[5, 52]]}},
        ),
        "order.exclusion_zones.0.geometry",
        "Polygon",
    ),
    (
        "polygon coordinates out of range",
        _with("order.exclusion_zones.0", polygon("W", [(52.0, 5.0), (52.0, 200.0), (52.1, 5.0)])),
        "order.exclusion_zones.0.geometry",
        "within",
    ),
    (
        "malformed polygon",
        _with(
            "order.exclusion_zones.0", {"name": "W", "geometry": {"type": "Polygon", "coordinates": [[1, 2]]}}
        ),
        "order.exclusion_zones.0.geometry",
        "malformed",
    ),
    (
        "negative radius",
        _with("order.exclusion_zones.0.circle.radius_m", -5),
        "order.exclusion_zones.0.circle.radius_m",
        "greater than 0",
    ),
    ("unknown field", _with("victim_devices", True), "victim_devices", "not permitted"),
    ("naive datetime", _with("order.valid_until", "2027-01-01T00:00:00"), "order.valid_until", "UTC offset"),
    (
        "place without a name",
        _with("mandatory_places", [{"position": {"lat": 52, "lon": 5}}]),
        "mandatory_places.0.name",
        "required",
    ),
    ("document is not an object", [1, 2], "request", "dictionary"),
    ("victim_device not a bool", _with("victim_device", "maybe"), "victim_device", "boolean"),
]


@pytest.mark.parametrize(("what", "document", "field", "words"), CASES, ids=[c[0] for c in CASES])
def test_invalid_request_names_the_field(what: str, document: Any, field: str, words: str) -> None:
    with pytest.raises(InvalidOrder) as info:
        parse_request(document)
    assert info.value.field == field
    assert words.lower() in info.value.problem.lower()


def test_valid_request_parses() -> None:
    parsed = parse_request(_valid())
    assert parsed.residence.lat == 52.10 and parsed.protected_places[0].name == "W"
    assert not parsed.victim_device
