"""Metric geometry: everything measured in metres, never in degrees.

Distances between two positions are geodesic (WGS84 ellipsoid, ``pyproj.Geod``). Areas such as
polygons are handled in a :class:`LocalFrame`, an azimuthal equidistant projection centred on the
case (the offender's residence), so distances from the centre are exact and the distortion of
other distances stays below 0.01 % within 100 km of it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from numpy.typing import NDArray
from pyproj import CRS, Geod, Transformer
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

WGS84 = Geod(ellps="WGS84")
CIRCLE_SEGMENTS = 256  # chord error of a polygonised circle: r * (1 - cos(pi/256)) ~= 7.5e-5 r


def geodesic_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Geodesic distance in metres between two WGS84 positions."""
    _, _, dist = WGS84.inv(lon1, lat1, lon2, lat2)
    return float(dist)


def destination(lat: float, lon: float, azimuth_deg: float, distance_m: float) -> tuple[float, float]:
    """The (lat, lon) reached by going ``distance_m`` metres from (lat, lon) at ``azimuth_deg``."""
    lon2, lat2, _ = WGS84.fwd(lon, lat, azimuth_deg, distance_m)
    return float(lat2), float(lon2)


@lru_cache(maxsize=1)
def _rd_transformer() -> Transformer:
    return Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True)


def rd_to_wgs84(x: float, y: float) -> tuple[float, float]:
    """Dutch RD New (EPSG:28992) metres to WGS84 (lat, lon)."""
    lon, lat = _rd_transformer().transform(x, y)
    return float(lat), float(lon)


class LocalFrame:
    """An azimuthal equidistant projection centred on (lat0, lon0): x east, y north, in metres."""

    __slots__ = ("_fwd", "_inv", "lat0", "lon0")

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0 = lat0
        self.lon0 = lon0
        crs = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +ellps=WGS84 +units=m +no_defs")
        self._fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        self._inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        x, y = self._fwd.transform(lon, lat)
        return float(x), float(y)

    def to_xy_many(
        self, lat: NDArray[np.float64], lon: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        x, y = self._fwd.transform(lon, lat)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def project(self, geom: BaseGeometry) -> BaseGeometry:
        """A lon/lat shapely geometry to this frame (metres)."""
        return shapely.transform(geom, lambda c: np.column_stack(self._fwd.transform(c[:, 0], c[:, 1])))

    def unproject(self, geom: BaseGeometry) -> BaseGeometry:
        """A geometry in this frame (metres) back to lon/lat."""
        return shapely.transform(geom, lambda c: np.column_stack(self._inv.transform(c[:, 0], c[:, 1])))


def geodesic_circle(lat: float, lon: float, radius_m: float, segments: int = CIRCLE_SEGMENTS) -> Polygon:
    """A lon/lat polygon approximating the geodesic circle (vertices exactly ``radius_m`` away)."""
    az = np.linspace(0.0, 360.0, segments, endpoint=False)
    lons, lats, _ = WGS84.fwd(np.full(segments, lon), np.full(segments, lat), az, np.full(segments, radius_m))
    lons = np.asarray(lons)
    # Keep the ring continuous across the antimeridian: unwrap relative to the centre.
    lons = np.where(lons - lon > 180, lons - 360, np.where(lons - lon < -180, lons + 360, lons))
    return Polygon(np.column_stack([lons, lats]))


def normalise_lon(lon: float) -> float:
    """A longitude in degrees brought into [-180, 180) (181 -> -179); 180 itself stays 180."""
    return lon if -180.0 <= lon <= 180.0 else (lon + 180.0) % 360.0 - 180.0


def split_antimeridian(geometry: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON Polygon/MultiPolygon whose longitudes go beyond ±180 (a ring drawn continuously
    across the antimeridian, e.g. 179.9 → 180.1), as the RFC 7946 form: a MultiPolygon split at
    the antimeridian with every longitude within [-180, 180]. Anything else is returned unchanged.
    """
    try:
        geom = shape(geometry)
    except Exception:  # malformed: geojson_to_shape reports it
        return geometry
    xy = shapely.get_coordinates(geom)
    if not len(xy) or not np.all(np.isfinite(xy)) or (np.all(xy[:, 0] >= -180) and np.all(xy[:, 0] <= 180)):
        return geometry
    if np.ptp(xy[:, 0]) > 180 or np.max(np.abs(xy[:, 0])) > 540:
        return geometry  # not a ring drawn across the antimeridian: geojson_to_shape says what is wrong
    parts: list[Polygon] = []
    for k in (-2, -1, 0, 1, 2):
        piece = shapely.intersection(geom, shapely.box(-180 + 360 * k, -90, 180 + 360 * k, 90))
        piece = shapely.transform(piece, lambda c, k=k: c - np.array([360.0 * k, 0.0]))
        parts += [g for g in getattr(piece, "geoms", [piece]) if isinstance(g, Polygon) and not g.is_empty]
    out: dict[str, Any] = json.loads(json.dumps(shapely.geometry.mapping(MultiPolygon(parts))))
    return out


def frame_centre(geom: BaseGeometry) -> tuple[float, float]:
    """(lat, lon) of the mean of a lon/lat geometry's vertices taken as unit vectors: right across
    the antimeridian (where the mean longitude of 179.9 and -179.9 is not 0) and near the poles."""
    xy = shapely.get_coordinates(geom)
    lon, lat = np.radians(xy[:, 0]), np.radians(xy[:, 1])
    v = np.array([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)]).mean(axis=1)
    lat0 = float(np.degrees(np.arctan2(v[2], np.hypot(v[0], v[1]))))
    lon0 = float(np.degrees(np.arctan2(v[1], v[0]))) if np.hypot(v[0], v[1]) > 1e-12 else 0.0
    return lat0, lon0


def geojson_to_shape(geometry: dict[str, Any]) -> Polygon | MultiPolygon:
    """Validate a GeoJSON Polygon/MultiPolygon (lon/lat) and return it; ValueError says what is wrong."""
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"geometry type must be Polygon or MultiPolygon, not {kind!r}")
    coords = geometry.get("coordinates")
    if not isinstance(coords, list) or not coords:
        raise ValueError("geometry.coordinates must be a non-empty array")
    try:
        geom = shape(geometry)
    except Exception as exc:  # shapely raises several types for malformed rings
        raise ValueError(f"malformed {kind} coordinates: {exc}") from exc
    xy = shapely.get_coordinates(geom)
    if not np.all(np.isfinite(xy)):
        raise ValueError("coordinates must be finite numbers")
    if np.any(np.abs(xy[:, 0]) > 180) or np.any(np.abs(xy[:, 1]) > 90):
        raise ValueError("coordinates must be [lon, lat] within [-180..180, -90..90]")
    if not geom.is_valid:
        raise ValueError(f"invalid polygon (e.g. self-intersecting): {shapely.is_valid_reason(geom)}")
    if geom.is_empty or geom.area == 0:
        raise ValueError("polygon has no area")
    assert isinstance(geom, Polygon | MultiPolygon)
    return geom
