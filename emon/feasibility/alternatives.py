"""Enforceable alternatives for a zone that comes too close to the residence.

A circle keeps its centre and shrinks to the largest radius that stays the guideline distance
from the residence: ``radius = distance(residence, centre) - guideline`` (metres, rounded down).
If that does not work, and for polygons, the zone loses the disc of guideline radius around the
residence. An alternative is *workable* when it is at least the minimum width and every
protected place the original zone covered stays inside by at least the edge margin. When no fixed
zone is workable, the advice is a contact ban with dynamic proximity monitoring (victim device).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from emon.feasibility import messages
from emon.feasibility.findings import Coverage, Message, Suggestion, SuggestionKind
from emon.feasibility.geometry import CaseFrame, ZoneShape, area_width_m, to_geojson
from emon.feasibility.request import FeasibilityRequest, Place
from emon.feasibility.settings import FeasibilitySettings
from emon.geo import geodesic_m
from emon.order import Circle


def suggest(
    case: CaseFrame, shape: ZoneShape, request: FeasibilityRequest, settings: FeasibilitySettings
) -> Suggestion:
    """The best enforceable alternative for ``shape``, a zone that fails the residence guideline.

    Tried in order: a smaller circle (circles only), the zone minus the guideline disc, and
    finally dynamic monitoring, whose message says why the fixed zones fall short.
    """
    guarded = [p for p in request.protected_places if case.edge_distance_m(shape, p.position) < 0]
    fallback: Suggestion | None = None  # the fixed zone that came closest, to explain why it falls short
    reasons: list[Message] = []
    figures: dict[str, float] = {}
    circle = shape.zone.circle
    if circle is not None:
        centre_m = geodesic_m(case.residence.lat, case.residence.lon, circle.lat, circle.lon)
        figures = {"centre_distance_m": centre_m, "max_radius_m": centre_m - settings.guideline_m}
        smaller = _smaller_circle(shape, circle, centre_m, guarded, settings)
        if smaller is None:
            reasons.append(
                messages.build("no_circle", centre_distance_m=centre_m, guideline_m=settings.guideline_m)
            )
        elif smaller.workable:
            return smaller
        else:
            fallback = smaller
    trimmed = _trimmed(case, shape, guarded, settings)
    if trimmed is not None and trimmed.workable:
        return trimmed
    if circle is None:  # for a circle, the smaller circle explains it better than the trimmed shape
        if trimmed is None:
            reasons.append(messages.build("no_polygon", zone=shape.name, guideline_m=settings.guideline_m))
        else:
            fallback = trimmed
    if fallback is not None:
        falls_short = messages.build(
            "fixed_zone_falls_short", zone=shape.name, guideline_m=settings.guideline_m
        )
        reasons += [falls_short, fallback.message]
        return _dynamic(shape, request, settings, reasons, {**fallback.figures, **figures}, fallback.coverage)
    return _dynamic(shape, request, settings, reasons, figures, ())


def _smaller_circle(
    shape: ZoneShape, circle: Circle, centre_m: float, guarded: Sequence[Place], settings: FeasibilitySettings
) -> Suggestion | None:
    """The same centre with the largest whole-metre radius that keeps the guideline; None if < 1 m."""
    radius = math.floor(centre_m - settings.guideline_m)
    if radius < 1:
        return None
    coverage = tuple(
        _coverage(
            p.name, radius - geodesic_m(p.position.lat, p.position.lon, circle.lat, circle.lon), settings
        )
        for p in guarded
    )
    figures = {
        "radius_m": float(radius),
        "original_radius_m": circle.radius_m,
        "guideline_m": settings.guideline_m,
        "width_m": 2.0 * radius,
    }
    document = {
        **shape.zone.model_dump(mode="json", exclude_none=True),
        "circle": {"lat": circle.lat, "lon": circle.lon, "radius_m": float(radius)},
    }
    return _fixed_zone(SuggestionKind.SMALLER_CIRCLE, shape, coverage, figures, document, settings)


def _trimmed(
    case: CaseFrame, shape: ZoneShape, guarded: Sequence[Place], settings: FeasibilitySettings
) -> Suggestion | None:
    """The zone minus the guideline disc around the residence; None if nothing remains."""
    rest = case.without_disc(shape.local, settings.guideline_m)
    if rest is None:
        return None
    coverage = tuple(
        _coverage(p.name, -case.local_edge_distance_m(rest, p.position), settings) for p in guarded
    )
    figures = {
        "area_m2": float(rest.area),
        "original_area_m2": float(shape.local.area),
        "guideline_m": settings.guideline_m,
        "width_m": area_width_m(rest),
    }
    document: dict[str, Any] = {
        **shape.zone.model_dump(mode="json", exclude_none=True),
        "geometry": to_geojson(case.to_lonlat(rest)),
    }
    document.pop("circle", None)
    return _fixed_zone(SuggestionKind.TRIMMED_POLYGON, shape, coverage, figures, document, settings)


def _fixed_zone(
    kind: SuggestionKind,
    shape: ZoneShape,
    coverage: tuple[Coverage, ...],
    figures: dict[str, float],
    document: dict[str, Any],
    settings: FeasibilitySettings,
) -> Suggestion:
    """A replacement zone of ``figures["width_m"]`` metres: workable when it is wide enough and
    still protects every place in ``coverage``. Its message is the template named ``kind``."""
    width = figures["width_m"]
    workable = width >= settings.min_zone_width_m and all(c.protected for c in coverage)
    head = messages.build(kind.value if workable else f"{kind.value}/short", zone=shape.name, **figures)
    message = _with_coverage(head, coverage, settings, width)
    return Suggestion(kind, shape.name, workable, message, figures, coverage, document)


def _dynamic(
    shape: ZoneShape,
    request: FeasibilityRequest,
    settings: FeasibilitySettings,
    reasons: Sequence[Message],
    figures: dict[str, float],
    coverage: tuple[Coverage, ...],
) -> Suggestion:
    """No fixed zone works: a contact ban of at least ``min_contact_ban_m`` with a victim device.

    ``coverage`` is what the best fixed zone would still have protected (for the record).
    """
    contact_m = max(request.order.contact_ban_m or 0.0, settings.min_contact_ban_m)
    parts = [*reasons, messages.build("dynamic", contact_ban_m=contact_m)]
    if not request.victim_device:
        parts.append(messages.build("dynamic/no_device"))
    figures = {**figures, "contact_ban_m": contact_m, "guideline_m": settings.guideline_m}
    return Suggestion(
        SuggestionKind.DYNAMIC_MONITORING, shape.name, True, messages.join(*parts), figures, coverage
    )


def _coverage(place: str, margin_m: float, settings: FeasibilitySettings) -> Coverage:
    return Coverage(place=place, margin_m=margin_m, protected=margin_m >= settings.edge_margin_m)


def _with_coverage(
    head: Message, coverage: Sequence[Coverage], settings: FeasibilitySettings, width: float
) -> Message:
    parts = [head]
    for c in coverage:
        if c.protected:
            parts.append(messages.build("coverage/ok", place=c.place, margin_m=c.margin_m))
        elif c.margin_m >= 0:
            parts.append(
                messages.build(
                    "coverage/short", place=c.place, margin_m=c.margin_m, required_m=settings.edge_margin_m
                )
            )
        else:
            parts.append(messages.build("coverage/outside", place=c.place, distance_m=-c.margin_m))
    if width < settings.min_zone_width_m:
        parts.append(messages.build("too_narrow", width_m=width, required_m=settings.min_zone_width_m))
    return messages.join(*parts)
