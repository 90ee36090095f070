"""The check as map layers: one GeoJSON FeatureCollection (lon/lat, RFC 7946) ready to draw.

Every Feature has ``properties.role`` (exclusion_zone, inclusion_zone, residence, protected_place,
mandatory_place, guideline, suggested_zone), ``name`` and ``kind``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emon.feasibility.findings import Suggestion
from emon.feasibility.geometry import ZoneShape, to_geojson
from emon.feasibility.request import FeasibilityRequest, Place
from emon.feasibility.settings import FeasibilitySettings
from emon.geo import geodesic_circle
from emon.order import Position


def feature_collection(
    request: FeasibilityRequest,
    exclusion: Sequence[ZoneShape],
    inclusion: Sequence[ZoneShape],
    suggestions: Sequence[Suggestion],
    settings: FeasibilitySettings,
) -> dict[str, Any]:
    """All zones, places, the guideline ring (geodesic, ``guideline_m`` around the residence) and
    the suggested zones as one FeatureCollection."""
    features: list[dict[str, Any]] = []
    for role, shapes in (("exclusion_zone", exclusion), ("inclusion_zone", inclusion)):
        for shape in shapes:
            kind = "circle" if shape.zone.circle is not None else "polygon"
            props: dict[str, Any] = {"role": role, "name": shape.name, "kind": kind}
            if shape.zone.circle is not None:
                props["radius_m"] = shape.zone.circle.radius_m
            features.append(_feature(to_geojson(shape.lonlat), props))
    res = request.residence
    features.append(_feature(_point(res), {"role": "residence", "name": "residence", "kind": "point"}))
    features += _places("protected_place", request.protected_places)
    features += _places("mandatory_place", request.mandatory_places)
    ring = geodesic_circle(res.lat, res.lon, settings.guideline_m)
    features.append(
        _feature(
            to_geojson(ring),
            {
                "role": "guideline",
                "name": f"guideline {settings.guideline_m:g} m",
                "kind": "circle",
                "radius_m": settings.guideline_m,
            },
        )
    )
    for s in suggestions:
        doc = s.zone_document
        if doc is None:
            continue
        if "circle" in doc:
            c = doc["circle"]
            geometry = to_geojson(geodesic_circle(c["lat"], c["lon"], c["radius_m"]))
        else:
            geometry = dict(doc["geometry"])
        features.append(_feature(geometry, {"role": "suggested_zone", "name": s.zone, "kind": s.kind.value}))
    return {"type": "FeatureCollection", "features": features}


def _places(role: str, places: Sequence[Place]) -> list[dict[str, Any]]:
    return [_feature(_point(p.position), {"role": role, "name": p.name, "kind": "point"}) for p in places]


def _point(p: Position) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [p.lon, p.lat]}


def _feature(geometry: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}
