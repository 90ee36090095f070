"""The request to the enforceability check: a proposed order plus the facts needed to judge it.

Positions are WGS84 ``{"lat", "lon"}`` or Dutch RD New ``{"rd": {"x", "y"}}`` (metres), exactly
as in an order document (:mod:`emon.order`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from emon.errors import InvalidOrder
from emon.geo import geojson_to_shape
from emon.order import RD, Order, Position, Strict, parse_model


class Place(Strict):
    """A named place: a protected place (victim's home, school) or a mandatory one (work, probation)."""

    name: str = Field(min_length=1, max_length=200)
    position: Position


class FeasibilityRequest(Strict):
    """A proposed order to be judged for enforceability."""

    residence: Position
    order: Order
    protected_places: tuple[Place, ...] = ()
    mandatory_places: tuple[Place, ...] = ()
    victim_device: bool = False


def parse_request(document: Any) -> FeasibilityRequest:
    """Validate a request document; raise :class:`InvalidOrder` naming the first bad field (dotted path)."""
    _precheck(document)
    try:
        return parse_model(FeasibilityRequest, document, where="")
    except InvalidOrder as exc:
        if exc.field:
            raise
        raise InvalidOrder("request", exc.problem) from exc


def _precheck(document: Any) -> None:
    """Check RD coordinates and zone geometries first, so the error names the exact field.

    :mod:`emon.order` validates both inside model validators, whose errors are located at the
    enclosing object (``residence.x`` rather than ``residence.rd.x``; ``order.exclusion_zones.0``
    rather than ``….geometry``). Remove this pass once those validators report precise locations.
    """
    if not isinstance(document, dict):
        return
    _check_rd(document.get("residence"), "residence")
    for key in ("protected_places", "mandatory_places"):
        places = document.get(key)
        if isinstance(places, list):
            for i, place in enumerate(places):
                if isinstance(place, dict):
                    _check_rd(place.get("position"), f"{key}.{i}.position")
    order = document.get("order")
    if not isinstance(order, dict):
        return
    for key in ("exclusion_zones", "inclusion_zones"):
        zones = order.get(key)
        if not isinstance(zones, list):
            continue
        for i, zone in enumerate(zones):
            if not isinstance(zone, dict):
                continue
            where = f"order.{key}.{i}"
            _check_rd(zone.get("circle"), f"{where}.circle")
            geometry = zone.get("geometry")
            if geometry is not None:
                try:
                    geojson_to_shape(geometry)
                except ValueError as exc:
                    raise InvalidOrder(f"{where}.geometry", str(exc)) from exc


def _check_rd(value: Any, where: str) -> None:
    if isinstance(value, dict) and "rd" in value:
        parse_model(RD, value["rd"], where=f"{where}.rd")
