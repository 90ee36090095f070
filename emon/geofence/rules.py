"""A Case compiled for evaluation: zones in metric form, per-rule settings resolved once."""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol, TypeVar

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from emon.case import Case
from emon.geo import frame_centre, geodesic_m, geojson_to_shape
from emon.geofence.config import EvalConfig
from emon.geofence.episode import Limits
from emon.geofence.evidence import threshold
from emon.geofence.measure import project
from emon.geofence.schedule import active_since
from emon.order import Kind, Schedule, Zone

PROXIMITY = "proximity"
ORDER = "order"
_ALWAYS = datetime.min.replace(tzinfo=UTC)  # the start of an interval that never began


class Term(Protocol):
    """An order's validity (UTC, None: open): an :class:`~emon.order.Order` or a :class:`CompiledCase`."""

    @property
    def valid_from(self) -> datetime | None: ...
    @property
    def valid_until(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class ZoneRule:
    """One exclusion or inclusion zone with its settings resolved against the engine config.

    A circle is judged by geodesic distance to its centre minus the radius (exact anywhere); a
    polygon in an azimuthal equidistant frame (``frame`` indexes :attr:`CompiledCase.frames`).

    It keeps of its :class:`Zone` only what evaluation reads (validity and schedule), not the zone:
    equal rules of different cases are then one object (:func:`_shared`; most cases' rules differ
    only in their case).
    """

    rule: str  # "exclusion:<name>" / "inclusion:<name>"
    kind: Kind
    valid_from: datetime | None  # the zone's validity (UTC) and schedule
    valid_until: datetime | None
    schedule: Schedule | None
    index: int  # into the circle arrays or the polygon arrays
    is_circle: bool
    frame: int
    prealert_enter_m: float | None  # None for inclusion zones
    prealert_exit_m: float | None
    limits: Limits
    clear_margin_m: float
    always: bool  # no schedule and no validity anywhere: skip the schedule check
    grace_s: float = 0.0  # inclusion zones: enforced only from this long after each window starts

    def active_since(self, order: Term, when: datetime) -> datetime | None:
        """Start (UTC) of the current enforcement interval, or None if not enforced at ``when``
        (``order``: the validity of the order, e.g. the :class:`CompiledCase`)."""
        if self.always:
            return _ALWAYS
        starts = [
            active_since(None, order.valid_from, order.valid_until, when),
            active_since(self.schedule, self.valid_from, self.valid_until, when),
        ]
        if starts[0] is None or starts[1] is None:
            return None
        since = max(starts[0], starts[1])
        if self.grace_s and since.year > 1 and (when - since).total_seconds() < self.grace_s:
            return None  # the curfew's grace period: not yet enforced
        return since


@dataclass(frozen=True, slots=True)
class ProximityRule:
    """The dynamic contact ban between offender and victim (metres)."""

    ban_m: float
    prealert_enter_m: float
    prealert_exit_m: float
    limits: Limits
    clear_margin_m: float


@dataclass(frozen=True, slots=True)
class CompiledCase:
    """Everything evaluation needs about one case, prepared once when the case is added.

    Held for every open case, so kept lean (issue #14): the numbers of all zones are one packed
    buffer (:attr:`geo`, one object instead of seven small numpy arrays of ≈ 110 bytes of header
    each), the polygons one tuple, and rules equal to another case's are that case's objects. Of
    the :class:`Case` it keeps only what evaluation reads (ids, the order's validity), not the
    document: the case book keeps that packed (emon.casebook).
    """

    case_id: str
    offender_device: str
    victim_device: str | None
    valid_from: datetime | None  # the order's validity (UTC)
    valid_until: datetime | None
    zones: tuple[ZoneRule, ...]
    # Little-endian doubles: circle centre latitudes, longitudes and radii (metres), the polygons'
    # frame centres (latitudes, longitudes), then ``perm``: zone k's measure is
    # concat(circle measures, polygon measures)[perm[k]].
    geo: bytes
    polygons: tuple[BaseGeometry, ...]  # in their frames' metres, the large ones prepared
    frames: tuple[tuple[float, float], ...]  # (lat0, lon0) of each AEQD frame; 0 is the residence
    proximity: ProximityRule | None

    @property
    def n_circles(self) -> int:
        return len(self.zones) - len(self.polygons)

    def _part(self, start: int, count: int) -> NDArray[np.float64]:
        return np.frombuffer(self.geo, dtype="<f8", count=count, offset=8 * start)

    @property
    def circle_lat(self) -> NDArray[np.float64]:
        """Circle centre latitudes (degrees), by :attr:`ZoneRule.index` (a read-only view)."""
        return self._part(0, self.n_circles)

    @property
    def circle_lon(self) -> NDArray[np.float64]:
        return self._part(self.n_circles, self.n_circles)

    @property
    def circle_r(self) -> NDArray[np.float64]:
        """Circle radii (metres)."""
        return self._part(2 * self.n_circles, self.n_circles)

    @property
    def poly_lat0(self) -> NDArray[np.float64]:
        """Frame centre latitude of each polygon."""
        return self._part(3 * self.n_circles, len(self.polygons))

    @property
    def poly_lon0(self) -> NDArray[np.float64]:
        return self._part(3 * self.n_circles + len(self.polygons), len(self.polygons))

    @property
    def perm(self) -> NDArray[np.int64]:
        return self._part(3 * self.n_circles + 2 * len(self.polygons), len(self.zones)).astype(np.int64)


_T = TypeVar("_T")


@lru_cache(maxsize=4096)
def _shared(value: _T) -> _T:
    """One object for equal frozen rules across cases (bounded: a rule evicted is only no longer
    shared). Rules are immutable, so sharing one changes nothing but the bytes held."""
    return value


@lru_cache(maxsize=256)
def _limits(
    config: EvalConfig, confirm_fixes: int | None, confirm_s: float | None, clear_s: float | None
) -> Limits:
    """A rule's limits: its zone's overrides, else the config's (one shared object per combination)."""
    return Limits(
        confirm_fixes=confirm_fixes or config.confirm_fixes,
        confirm_s=config.confirm_s if confirm_s is None else confirm_s,
        clear_s=config.clear_s if clear_s is None else clear_s,
        update_distance_m=config.update_distance_m,
        update_move_m=config.update_move_m,
        tau_s=config.tau_s,
        prove_llr=threshold(config.alpha),
        possible_llr=config.possible_llr,
        possible_after_s=config.possible_after_s,
    )


# RFC 7946: polygon edges are straight in lon/lat. Densified to this many degrees before the
# projection, a long edge keeps that meaning (near the poles a parallel is far from a geodesic).
DENSIFY_DEG = 0.05

# Polygons with more vertices than this are prepared (GEOS keeps an index of their edges, built on
# the first containment test). A small one answers as exactly without it, 0.1 µs slower a test
# (13 vertices: 0.17 against 0.08 µs; 512: 2.7 against 1.2), and is held by every open case:
# preparing every polygon cost ≈ 175 bytes each (35 B per device in benchmarks.memory).
PREPARE_ABOVE = 64


def metric_polygon(shape: BaseGeometry, lat0: float, lon0: float) -> BaseGeometry:
    """A lon/lat (Multi)Polygon in the AEQD frame at (lat0, lon0), metres. The halves of a zone
    split at the antimeridian (RFC 7946) meet again there: they are merged into one area, so the
    seam is not mistaken for an edge of the zone."""
    projected = project(shapely.segmentize(shape, DENSIFY_DEG), lat0, lon0)
    parts = shapely.get_parts(shapely.make_valid(shapely.set_precision(projected, 1e-3)))
    polys = [p for p in parts if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polys) if len(polys) > 1 else polys[0]


def compile_case(case: Case, config: EvalConfig) -> CompiledCase:
    """Compile ``case``: circles as centre+radius arrays, polygons projected into metric frames."""
    order = case.order
    res = case.residence
    frames: list[tuple[float, float]] = [(res.lat, res.lon)]
    zones: list[ZoneRule] = []
    c_lat: list[float] = []
    c_lon: list[float] = []
    c_r: list[float] = []
    polys: list[BaseGeometry] = []
    order_always = order.valid_from is None and order.valid_until is None
    tagged: list[tuple[Kind, Zone]] = [("exclusion", z) for z in order.exclusion_zones]
    tagged += [("inclusion", z) for z in order.inclusion_zones]
    for kind, zone in tagged:
        frame = 0
        if zone.circle is not None:
            index = len(c_lat)
            c_lat.append(zone.circle.lat)
            c_lon.append(zone.circle.lon)
            c_r.append(zone.circle.radius_m)
        else:
            assert zone.geometry is not None  # Zone guarantees exactly one shape
            shape = geojson_to_shape(zone.geometry)
            lat0, lon0 = frame_centre(shape)
            if geodesic_m(res.lat, res.lon, lat0, lon0) > config.frame_radius_m:
                # Far from the residence: a frame of its own keeps AEQD distortion negligible.
                frames.append((lat0, lon0))
                frame = len(frames) - 1
            index = len(polys)
            polys.append(metric_polygon(shape, *frames[frame]))
        exclusion = kind == "exclusion"
        enter = order.prealert.exclusion_enter_m if zone.prealert_m is None else zone.prealert_m
        # A per-zone ring keeps the order's enter->exit hysteresis gap.
        exit_ = enter + (order.prealert.exclusion_exit_m - order.prealert.exclusion_enter_m)
        rule = ZoneRule(
            rule=sys.intern(f"{kind}:{zone.name}"),  # one string for the same rule name in every case
            kind=kind,
            valid_from=zone.valid_from,
            valid_until=zone.valid_until,
            schedule=zone.schedule,
            index=index,
            is_circle=zone.circle is not None,
            frame=frame,
            prealert_enter_m=enter if exclusion else None,
            prealert_exit_m=exit_ if exclusion else None,
            limits=_limits(config, zone.confirm_fixes, zone.confirm_s, zone.clear_s),
            clear_margin_m=config.clear_margin_m if zone.clear_margin_m is None else zone.clear_margin_m,
            always=order_always
            and zone.schedule is None
            and zone.valid_from is None
            and zone.valid_until is None,
            grace_s=0.0 if exclusion or zone.grace_s is None else zone.grace_s,
        )
        # A scheduled rule stays the case's own: shared, it would keep another case's schedule alive.
        zones.append(rule if zone.schedule is not None else _shared(rule))
    for polygon in polys:
        if shapely.get_num_coordinates(polygon) > PREPARE_ABOVE:
            shapely.prepare(polygon)
    poly_frames = [z.frame for z in zones if not z.is_circle]
    perm = [z.index if z.is_circle else len(c_lat) + z.index for z in zones]
    proximity = None
    if case.victim_device is not None and order.contact_ban_m is not None:
        p = order.prealert
        proximity = _shared(
            ProximityRule(
                ban_m=order.contact_ban_m,
                prealert_enter_m=p.proximity_enter_m,
                prealert_exit_m=p.proximity_exit_m,
                limits=_limits(config, None, None, None),
                clear_margin_m=config.clear_margin_m,
            )
        )
    numbers = [
        *c_lat,
        *c_lon,
        *c_r,
        *(frames[f][0] for f in poly_frames),
        *(frames[f][1] for f in poly_frames),
    ]
    return CompiledCase(
        case_id=case.case_id,
        offender_device=case.offender_device,
        victim_device=case.victim_device,
        valid_from=order.valid_from,
        valid_until=order.valid_until,
        zones=_shared(tuple(zones)) if all(z.schedule is None for z in zones) else tuple(zones),
        geo=struct.pack(f"<{len(numbers) + len(perm)}d", *numbers, *perm),
        polygons=tuple(polys),
        frames=tuple(frames),
        proximity=proximity,
    )
