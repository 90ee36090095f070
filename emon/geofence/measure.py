"""Metric measurements of fixes against zones, vectorised with numpy and shapely 2.

Polygons live in azimuthal equidistant (AEQD) frames. On the ellipsoid, PROJ's oblique AEQD maps
a point to ``(s sin a, s cos a)`` where ``s`` and ``a`` are the geodesic distance and azimuth from
the frame centre, so computing it with one vectorised ``Geod.inv`` call gives the same metres as
:class:`emon.geo.LocalFrame` (to 1e-9 m) without building a PROJ transformer per case.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from emon.geo import WGS84

if TYPE_CHECKING:
    from emon.geofence.rules import CompiledCase

F64 = NDArray[np.float64]


def aeqd_xy(lat0: F64 | float, lon0: F64 | float, lat: F64, lon: F64) -> tuple[F64, F64]:
    """AEQD coordinates (metres, x east, y north) of (lat, lon) in the frame centred on (lat0, lon0)."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    lat0a = np.broadcast_to(np.asarray(lat0, dtype=np.float64), lat.shape)
    lon0a = np.broadcast_to(np.asarray(lon0, dtype=np.float64), lat.shape)
    az, _, dist = WGS84.inv(lon0a, lat0a, lon, lat)
    a = np.radians(np.asarray(az, dtype=np.float64))
    d = np.asarray(dist, dtype=np.float64)
    return d * np.sin(a), d * np.cos(a)


def project(geom: BaseGeometry, lat0: float, lon0: float) -> BaseGeometry:
    """A lon/lat geometry into the AEQD frame centred on (lat0, lon0), in metres."""

    def fwd(c: F64) -> F64:
        x, y = aeqd_xy(lat0, lon0, c[:, 1], c[:, 0])
        return np.column_stack([x, y])

    return shapely.transform(geom, fwd)


def zone_distances(items: Sequence[tuple[float, float, CompiledCase]]) -> list[F64]:
    """Signed distance (metres, negative inside) from each (lat, lon) to every zone of its case.

    Returns one array per item, in the order of ``case.zones``. All circles of all items are
    measured with one geodesic call, all polygons with one projection call and one shapely call.
    """
    if not items:
        return []
    flat, ends = _measure(items)
    return np.split(flat, ends[:-1])


def zone_distance_lists(items: Sequence[tuple[float, float, CompiledCase]]) -> list[list[float]]:
    """:func:`zone_distances` as lists of floats (what the per-fix loop reads, one at a time)."""
    flat, ends = _measure(items)
    values = flat.tolist()
    starts = [0, *ends][:-1]
    return [values[a:b] for a, b in zip(starts, ends, strict=True)]


def _measure(items: Sequence[tuple[float, float, CompiledCase]]) -> tuple[F64, list[int]]:
    """The distances of every item to every zone of its case, item after item, each item's in the
    order of its ``case.zones``; and where each item's distances end in that array."""
    cases = [c for _, _, c in items]
    z_counts = np.fromiter((len(c.zones) for c in cases), dtype=np.int64, count=len(cases))
    p_counts = np.fromiter((len(c.polygons) for c in cases), dtype=np.int64, count=len(cases))
    c_counts = z_counts - p_counts
    # Every case's numbers (CompiledCase.geo: circle lat, lon, r; polygon frame lat, lon; perm) in
    # one array; each part of each case is found by its offset in it.
    geo = np.frombuffer(b"".join([c.geo for c in cases]), dtype="<f8")
    lens = 4 * c_counts + 3 * p_counts
    base = np.cumsum(lens) - lens
    fix_lat = np.array([i[0] for i in items], dtype=np.float64)
    fix_lon = np.array([i[1] for i in items], dtype=np.float64)
    n_circles, n_polys = int(c_counts.sum()), int(p_counts.sum())
    circle_d = np.empty(0)
    if n_circles:
        lat, lon = np.repeat(fix_lat, c_counts), np.repeat(fix_lon, c_counts)
        at, step = _runs(base, c_counts), np.repeat(c_counts, c_counts)
        clat, clon, cr = geo[at], geo[at + step], geo[at + 2 * step]
        _, _, dist = WGS84.inv(clon, clat, lon, lat)
        circle_d = np.asarray(dist, dtype=np.float64) - cr
    poly_d = np.empty(0)
    if n_polys:
        lat, lon = np.repeat(fix_lat, p_counts), np.repeat(fix_lon, p_counts)
        at, step = _runs(base + 3 * c_counts, p_counts), np.repeat(p_counts, p_counts)
        f_lat, f_lon = geo[at], geo[at + step]
        geoms = np.empty(n_polys, dtype=object)
        geoms[:] = [g for c in cases for g in c.polygons]
        poly_d = signed_distances(geoms, *aeqd_xy(f_lat, f_lon, lat, lon))
    # Zone k of an item is its circle perm[k] when perm[k] < its circle count, else its polygon
    # perm[k] - circle count: one gather puts every item's zones in order.
    perm = geo[_runs(base + 3 * c_counts + 2 * p_counts, z_counts)].astype(np.int64)
    nc = np.repeat(c_counts, z_counts)
    c_base = np.repeat(np.cumsum(c_counts) - c_counts, z_counts)
    p_base = np.repeat(np.cumsum(p_counts) - p_counts, z_counts) + n_circles
    where = np.where(perm < nc, c_base + perm, p_base + perm - nc)
    flat = np.concatenate([circle_d, poly_d])[where]
    return np.asarray(flat, dtype=np.float64), np.cumsum(z_counts).tolist()


def signed_distances(geoms: NDArray[np.object_], x: F64, y: F64) -> F64:
    """Signed distance (negative inside) from each point (x[i], y[i]) to the edge of the area
    geoms[i] (all in one frame)."""
    points = shapely.points(x, y)
    inside = np.asarray(shapely.contains_xy(geoms, x, y), dtype=bool)
    # From a point outside an area, GEOS measures the distance to the area over the segments of its
    # rings, exactly as to its boundary: only points inside or on the edge (distance 0) need the
    # boundary, which costs as much again to build. Boundaries are not kept with the cases (≈ 0.5 KB
    # of GEOS memory a polygon, for every open case): a batch builds the few it needs.
    d = np.asarray(shapely.distance(geoms, points), dtype=np.float64)
    edge = inside | (d == 0.0)
    if edge.any():
        d[edge] = shapely.distance(shapely.boundary(geoms[edge]), points[edge])
    return np.where(inside, -d, d)


def _runs(starts: NDArray[np.int64], counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """The indices ``starts[i], starts[i] + 1, …, starts[i] + counts[i] - 1`` for every i, in order."""
    total = int(counts.sum())
    ends = np.cumsum(counts)
    return np.repeat(starts - (ends - counts), counts) + np.arange(total, dtype=np.int64)


def segment_through(
    case: CompiledCase, zone_index: int, a: tuple[float, float], b: tuple[float, float]
) -> tuple[float, float, bool]:
    """How the straight segment a→b ((lat, lon) each) meets the zone: (metres of it inside the
    zone, length of the shortest way from a to b around the zone's convex hull, whether the zone
    is convex so that this way is the shortest path avoiding it).

    The segment is straight in the zone's frame (a circle's own centre, or the polygon's frame).
    Around a convex obstacle the shortest path is the shorter of the two chains of the convex hull
    of the obstacle and both ends.
    """
    z = case.zones[zone_index]
    lats = np.array([a[0], b[0]])
    lons = np.array([a[1], b[1]])
    if z.is_circle:
        lat0, lon0 = float(case.circle_lat[z.index]), float(case.circle_lon[z.index])
        geom: BaseGeometry = _disc(float(case.circle_r[z.index]))
        convex = True
    else:
        lat0, lon0 = case.frames[z.frame]
        geom = case.polygons[z.index]
        convex = bool(shapely.area(geom) >= 0.999 * shapely.area(shapely.convex_hull(geom)))
    x, y = aeqd_xy(lat0, lon0, lats, lons)
    seg = shapely.LineString(np.column_stack([x, y]))
    inside = float(shapely.length(shapely.intersection(seg, geom)))
    if inside <= 0:
        return 0.0, float(shapely.length(seg)), convex
    return inside, _around(geom, (float(x[0]), float(y[0])), (float(x[1]), float(y[1]))), convex


@lru_cache(maxsize=256)
def _disc(radius_m: float) -> BaseGeometry:
    """A circle zone in its own frame (a 256-gon around the origin), built once per radius: crossing
    checks of the zones of one radius (the same geometry every time) share it."""
    return shapely.Point(0.0, 0.0).buffer(radius_m, 64)


def _around(geom: BaseGeometry, a: tuple[float, float], b: tuple[float, float]) -> float:
    """Length of the shorter chain from ``a`` to ``b`` along conv(geom ∪ {a, b}) (metres)."""
    coords = np.vstack([shapely.get_coordinates(geom), [a, b]])
    # A line through the points gives GEOS the same coordinates in the same order as a multipoint
    # (so the same hull, vertex for vertex) without building a point object for each of them.
    hull = shapely.convex_hull(shapely.linestrings(coords))
    ring = np.asarray(shapely.get_coordinates(shapely.get_exterior_ring(hull)))[:-1]
    ia = int(np.argmin(np.hypot(ring[:, 0] - a[0], ring[:, 1] - a[1])))
    ib = int(np.argmin(np.hypot(ring[:, 0] - b[0], ring[:, 1] - b[1])))
    seglen = np.hypot(*(np.roll(ring, -1, axis=0) - ring).T)
    lo, hi = sorted((ia, ib))
    one = float(seglen[lo:hi].sum())
    return min(one, float(seglen.sum()) - one)
