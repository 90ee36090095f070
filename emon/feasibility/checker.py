"""The enforceability check: a pure function of (request, settings, now) returning a report.

It reads no clock, file or socket; the CLI and the HTTP API are the edges that do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from emon.feasibility import messages
from emon.feasibility.alternatives import suggest
from emon.feasibility.findings import Code, Finding, Severity, Suggestion
from emon.feasibility.geometry import CaseFrame, ZoneShape, width_m
from emon.feasibility.layers import feature_collection
from emon.feasibility.request import FeasibilityRequest
from emon.feasibility.settings import FeasibilitySettings

_RANK = {Severity.BLOCKING: 0, Severity.WARNING: 1, Severity.INFO: 2}
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Report:
    """The verdict: ``enforceable`` is True when no finding is blocking.

    ``findings`` are ordered blocking, warning, info (stable within a severity); ``geojson`` is a
    FeatureCollection of zones, places, the guideline ring and suggested zones.
    """

    enforceable: bool
    findings: tuple[Finding, ...]
    suggestions: tuple[Suggestion, ...]
    geojson: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The machine form (JSON-ready), as returned by ``--json`` and ``POST /feasibility``."""
        return {
            "enforceable": self.enforceable,
            "findings": [f.to_dict() for f in self.findings],
            "suggestions": [s.to_dict() for s in self.suggestions],
            "geojson": self.geojson,
        }


def check(request: FeasibilityRequest, settings: FeasibilitySettings, now: datetime) -> Report:
    """Judge whether the proposed order in ``request`` can be enforced with an ankle tag.

    ``now`` (timezone-aware) is only used to judge the order's end date. Distances are metres,
    geodesic on WGS84 (see :mod:`emon.feasibility.geometry`).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    case = CaseFrame(request.residence)
    exclusion = [case.shape(z) for z in request.order.exclusion_zones]
    inclusion = [case.shape(z) for z in request.order.inclusion_zones]

    findings: list[Finding] = []
    failing: list[ZoneShape] = []
    for shape in exclusion:
        residence_findings = list(_residence(case, shape, settings))
        if residence_findings:
            failing.append(shape)
        findings += residence_findings
    for shape in (*exclusion, *inclusion):
        findings += _width(shape, settings)
    findings += _conflicts(case, request, exclusion, inclusion)
    findings += _protected(case, request, exclusion, settings)
    findings += _contact(request, settings)
    findings += _periods(request, now, settings)
    findings.sort(key=lambda f: _RANK[f.severity])

    suggestions = tuple(suggest(case, shape, request, settings) for shape in failing)
    return Report(
        enforceable=not any(f.severity is Severity.BLOCKING for f in findings),
        findings=tuple(findings),
        suggestions=suggestions,
        geojson=feature_collection(request, exclusion, inclusion, suggestions, settings),
    )


def _residence(case: CaseFrame, shape: ZoneShape, settings: FeasibilitySettings) -> Iterator[Finding]:
    distance = case.edge_distance_m(shape, case.residence)
    required = settings.guideline_m
    if distance <= 0:
        figures = {"depth_m": -distance, "required_m": required}
        yield Finding(
            Code.RESIDENCE_INSIDE_ZONE,
            messages.build("RESIDENCE_INSIDE_ZONE", zone=shape.name, **figures),
            zone=shape.name,
            figures=figures,
        )
    elif distance < required:
        figures = {"distance_m": distance, "required_m": required, "shortfall_m": required - distance}
        yield Finding(
            Code.RESIDENCE_TOO_CLOSE,
            messages.build("RESIDENCE_TOO_CLOSE", zone=shape.name, **figures),
            zone=shape.name,
            figures=figures,
        )


def _width(shape: ZoneShape, settings: FeasibilitySettings) -> Iterator[Finding]:
    width = width_m(shape)
    if width < settings.min_zone_width_m:
        figures = {
            "width_m": width,
            "required_m": settings.min_zone_width_m,
            "gps_accuracy_m": settings.typical_gps_accuracy_m,
        }
        yield Finding(
            Code.ZONE_TOO_SMALL,
            messages.build("ZONE_TOO_SMALL", zone=shape.name, **figures),
            zone=shape.name,
            figures=figures,
        )


def _conflicts(
    case: CaseFrame,
    request: FeasibilityRequest,
    exclusion: Sequence[ZoneShape],
    inclusion: Sequence[ZoneShape],
) -> Iterator[Finding]:
    for inc in inclusion:
        for exc in exclusion:
            overlap = float(inc.local.intersection(exc.local).area)
            if overlap >= 1.0:  # touching edges or slivers under 1 m² are rounding, not a conflict
                figures = {"overlap_area_m2": overlap}
                message = messages.build("ZONE_CONFLICT/overlap", zone=exc.name, other=inc.name, **figures)
                yield Finding(Code.ZONE_CONFLICT, message, zone=exc.name, figures=figures)
    for place in request.mandatory_places:
        for exc in exclusion:
            distance = case.edge_distance_m(exc, place.position)
            if distance <= 0:
                figures = {"depth_m": -distance}
                message = messages.build(
                    "ZONE_CONFLICT/mandatory_place", zone=exc.name, place=place.name, **figures
                )
                yield Finding(Code.ZONE_CONFLICT, message, zone=exc.name, place=place.name, figures=figures)


def _protected(
    case: CaseFrame,
    request: FeasibilityRequest,
    exclusion: Sequence[ZoneShape],
    settings: FeasibilitySettings,
) -> Iterator[Finding]:
    for place in request.protected_places:
        if not exclusion:
            yield Finding(
                Code.PROTECTED_PLACE_NOT_COVERED,
                messages.build("PROTECTED_PLACE_NOT_COVERED/no_zones", place=place.name),
                place=place.name,
            )
            continue
        # The zone that covers the place deepest (most negative), or else the nearest one.
        distance, shape = min(((case.edge_distance_m(s, place.position), s) for s in exclusion), key=_first)
        if distance > 0:
            figures = {"distance_m": distance}
            message = messages.build(
                "PROTECTED_PLACE_NOT_COVERED", zone=shape.name, place=place.name, **figures
            )
            yield Finding(
                Code.PROTECTED_PLACE_NOT_COVERED, message, zone=shape.name, place=place.name, figures=figures
            )
        elif -distance < settings.edge_margin_m:
            figures = {"margin_m": -distance, "required_m": settings.edge_margin_m}
            message = messages.build(
                "PROTECTED_PLACE_NEAR_EDGE", zone=shape.name, place=place.name, **figures
            )
            yield Finding(
                Code.PROTECTED_PLACE_NEAR_EDGE, message, zone=shape.name, place=place.name, figures=figures
            )


def _contact(request: FeasibilityRequest, settings: FeasibilitySettings) -> Iterator[Finding]:
    contact = request.order.contact_ban_m
    if contact is None:
        return
    if contact < settings.min_contact_ban_m:
        figures = {"contact_ban_m": contact, "required_m": settings.min_contact_ban_m}
        yield Finding(
            Code.CONTACT_DISTANCE_TOO_SMALL,
            messages.build("CONTACT_DISTANCE_TOO_SMALL", **figures),
            figures=figures,
        )
    if not request.victim_device:
        figures = {"contact_ban_m": contact}
        yield Finding(
            Code.CONTACT_BAN_NEEDS_VICTIM_DEVICE,
            messages.build("CONTACT_BAN_NEEDS_VICTIM_DEVICE", **figures),
            figures=figures,
        )


def _periods(request: FeasibilityRequest, now: datetime, settings: FeasibilitySettings) -> Iterator[Finding]:
    order = request.order
    yield from _backwards(order.valid_from, order.valid_until, None)
    for zone in (*order.exclusion_zones, *order.inclusion_zones):
        yield from _backwards(zone.valid_from, zone.valid_until, zone.name)
    if order.valid_until is None:
        yield Finding(Code.OPEN_ENDED, messages.build("OPEN_ENDED"))
        return
    left = (order.valid_until - now) / _DAY
    if left <= 0:
        figures = {"days_ago_days": -left}
        yield Finding(
            Code.EXPIRED, messages.build("EXPIRED", until=_day(order.valid_until), **figures), figures=figures
        )
    elif left < settings.expires_soon_days:
        figures = {"days_left_days": left}
        yield Finding(
            Code.EXPIRES_SOON,
            messages.build("EXPIRES_SOON", until=_day(order.valid_until), **figures),
            figures=figures,
        )


def _backwards(start: datetime | None, until: datetime | None, zone: str | None) -> Iterator[Finding]:
    """INVALID_PERIOD when the period of the order (``zone`` None) or of a zone ends at or before it starts."""
    if start is None or until is None or until > start:
        return
    figures = {"duration_days": (until - start) / _DAY}
    if zone is None:
        message = messages.build("INVALID_PERIOD/order", start=_day(start), until=_day(until))
    else:
        message = messages.build("INVALID_PERIOD/zone", zone=zone, start=_day(start), until=_day(until))
    yield Finding(Code.INVALID_PERIOD, message, zone=zone, figures=figures)


def _first(pair: tuple[float, ZoneShape]) -> float:
    return pair[0]


def _day(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")
