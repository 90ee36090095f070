"""Accuracy-aware classification: pure functions of distances (metres) and error radii (metres).

Convention: zone distances are signed distances to the zone edge, negative inside. An error
circle of radius ``acc`` around the fix is where the device may really be.
"""

from __future__ import annotations

from emon.geo import geodesic_m
from emon.geofence.events import Classification
from emon.geofence.state import FixRecord


def classify_exclusion(d: float, acc: float) -> Classification:
    """BREACH if the whole error circle is inside the zone, POSSIBLE if it overlaps it."""
    if d + acc <= 0:
        return Classification.BREACH
    if d - acc < 0:
        return Classification.POSSIBLE
    return Classification.CLEAR


def classify_inclusion(d: float, acc: float) -> Classification:
    """BREACH if the whole error circle is outside the required zone, POSSIBLE if not wholly inside."""
    if d - acc > 0:
        return Classification.BREACH
    if d + acc > 0:
        return Classification.POSSIBLE
    return Classification.CLEAR


def classify_zone(kind: str, d: float, acc: float) -> Classification:
    """:func:`classify_exclusion` or :func:`classify_inclusion`, by the zone's ``kind``."""
    return classify_exclusion(d, acc) if kind == "exclusion" else classify_inclusion(d, acc)


def classify_proximity(dist: float, acc_sum: float, ban_m: float) -> Classification:
    """BREACH if even the farthest points of both error circles are within the ban; POSSIBLE if
    their nearest points are. ``acc_sum`` is both accuracies plus any growth for age."""
    if dist + acc_sum < ban_m:
        return Classification.BREACH
    if dist - acc_sum < ban_m:
        return Classification.POSSIBLE
    return Classification.CLEAR


def margin_clear(kind: str, d: float, acc: float, margin_m: float, ban_m: float = 0.0) -> bool:
    """True if the whole error circle is at least ``margin_m`` clear of the forbidden condition."""
    if kind == "exclusion":
        return d - acc >= margin_m
    if kind == "inclusion":
        return d + acc <= -margin_m
    return d - acc >= ban_m + margin_m  # proximity: d is the distance, acc the accuracy sum


def severity(kind: str, d: float) -> float:
    """How bad a reading is, larger is worse (metres): depth inside, distance outside, closeness."""
    return d if kind == "inclusion" else -d


def implausible_jump(
    prev: FixRecord, cur: FixRecord, max_speed_mps: float, length_m: float | None = None
) -> bool:
    """True if going from ``prev`` to ``cur`` needs more than ``max_speed_mps``, even granting both
    error circles (distance minus both accuracies over the time between the fixes). ``length_m``:
    the geodesic distance from ``prev`` to ``cur`` when already measured."""
    dt = abs((cur.ts - prev.ts).total_seconds())
    if length_m is None:
        length_m = geodesic_m(prev.lat, prev.lon, cur.lat, cur.lon)
    gap = length_m - prev.acc - cur.acc
    if gap <= 0:
        return False
    return dt == 0 or gap / dt > max_speed_mps
