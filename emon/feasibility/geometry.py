"""Zones measured in metres around the offender's residence (the case frame).

The case frame is a :class:`emon.geo.LocalFrame` (azimuthal equidistant) centred on the residence,
so every distance *from the residence* measured in it is the exact geodesic distance. Circles are
measured exactly with geodesics; polygons in the case frame, whose distortion of other distances
stays below 0.01 % within 100 km of the residence. Signed distances are negative inside a zone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, TypeAlias

import shapely
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from emon.geo import LocalFrame, geodesic_circle, geodesic_m, geojson_to_shape
from emon.order import Position, Zone

Area: TypeAlias = Polygon | MultiPolygon

INSCRIBED_TOLERANCE_M = 0.5  # precision of the largest-inscribed-circle search
DISC_QUAD_SEGS = 64  # a quarter circle in 64 chords: 256 around, like emon.geo.CIRCLE_SEGMENTS
CLEARANCE_M = 1.0  # cut 1 m extra, so floating-point round trips never put a suggestion under the guideline


@dataclass(frozen=True, slots=True)
class ZoneShape:
    """A zone with its lon/lat outline (circles polygonised) and its outline in the case frame (m)."""

    zone: Zone
    lonlat: Area
    local: Area

    @property
    def name(self) -> str:
        return self.zone.name


class CaseFrame:
    """Metric geometry around one residence."""

    def __init__(self, residence: Position) -> None:
        self.residence = residence
        self.frame = LocalFrame(residence.lat, residence.lon)

    def shape(self, zone: Zone) -> ZoneShape:
        """The zone's outline in lon/lat and in the case frame."""
        if zone.circle is not None:
            lonlat: Area = geodesic_circle(zone.circle.lat, zone.circle.lon, zone.circle.radius_m)
        else:
            assert zone.geometry is not None  # Zone guarantees exactly one of circle / geometry
            lonlat = geojson_to_shape(zone.geometry)
        return ZoneShape(zone=zone, lonlat=lonlat, local=_area(self.frame.project(lonlat)))

    def edge_distance_m(self, shape: ZoneShape, position: Position) -> float:
        """Signed distance (metres) from ``position`` to the zone's edge: negative inside.

        Exact for circles (geodesic distance to the centre minus the radius) and for the
        residence itself (the frame is equidistant from its centre).
        """
        circle = shape.zone.circle
        if circle is not None:
            return geodesic_m(position.lat, position.lon, circle.lat, circle.lon) - circle.radius_m
        return self.local_edge_distance_m(shape.local, position)

    def local_edge_distance_m(self, area: Area, position: Position) -> float:
        """Signed distance (metres) from ``position`` to the edge of ``area`` (case frame)."""
        point = Point(self.frame.to_xy(position.lat, position.lon))
        distance = float(area.boundary.distance(point))
        return -distance if area.covers(point) else distance

    def to_lonlat(self, area: Area) -> Area:
        """An area in the case frame back to lon/lat."""
        return _area(self.frame.unproject(area))

    def without_disc(self, area: Area, radius_m: float) -> Area | None:
        """``area`` minus the disc of ``radius_m`` around the residence, or None if nothing remains.

        The disc is a polygon *circumscribing* the true circle of ``radius_m + CLEARANCE_M``, so
        every remaining point is more than ``radius_m`` from the residence.
        """
        outer = (radius_m + CLEARANCE_M) / math.cos(math.pi / (4 * DISC_QUAD_SEGS))
        rest = area.difference(Point(0.0, 0.0).buffer(outer, quad_segs=DISC_QUAD_SEGS))
        parts = [p for p in shapely.get_parts(rest) if isinstance(p, Polygon) and p.area >= 1.0]
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def width_m(shape: ZoneShape) -> float:
    """The zone's width in metres: the diameter of the largest circle that fits inside it.

    For a zone of several parts, the width of its narrowest part (each part must work on its own).
    """
    if shape.zone.circle is not None:
        return 2.0 * shape.zone.circle.radius_m
    return area_width_m(shape.local)


def area_width_m(area: Area) -> float:
    """Diameter (metres) of the largest inscribed circle of the narrowest part of ``area`` (case frame)."""
    widths = [
        2.0 * float(shapely.maximum_inscribed_circle(part, INSCRIBED_TOLERANCE_M).length)
        for part in shapely.get_parts(area)
    ]
    return min(widths)


def to_geojson(geom: BaseGeometry) -> dict[str, Any]:
    """A lon/lat geometry as a plain-JSON GeoJSON geometry (lists, not tuples)."""
    result: dict[str, Any] = json.loads(shapely.to_geojson(geom))
    return result


def _area(geom: BaseGeometry) -> Area:
    assert isinstance(geom, Polygon | MultiPolygon)
    return geom
