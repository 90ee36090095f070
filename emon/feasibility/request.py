"""The request to the enforceability check: a proposed order plus the facts needed to judge it.

Positions are WGS84 ``{"lat", "lon"}`` or Dutch RD New ``{"rd": {"x", "y"}}`` (metres), exactly
as in an order document (:mod:`emon.order`).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from emon.errors import InvalidOrder
from emon.order import Order, Position, Strict, parse_model


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
    try:
        return parse_model(FeasibilityRequest, document, where="")
    except InvalidOrder as exc:
        if exc.field:
            raise
        raise InvalidOrder("request", exc.problem) from exc
