"""Request documents built from real geometry, and an independent geodesic yardstick (pyproj.Geod)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pyproj import Geod

from emon.feasibility import Code, FeasibilitySettings, Finding, Report, check, parse_request

GEOD = Geod(ellps="WGS84")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SETTINGS = FeasibilitySettings()

# (lat, lon) of a victim's address in several countries, from the equator to the Arctic.
CITIES = {
    "utrecht_nl": (52.0907, 5.1214),
    "sevilla_es": (37.3891, -5.9845),
    "tromso_no": (69.6492, 18.9553),
    "auckland_nz": (-36.8485, 174.7633),
    "quito_ec": (-0.1807, -78.4678),
}

LatLon = tuple[float, float]


def at(origin: LatLon, azimuth_deg: float, distance_m: float) -> LatLon:
    """The point ``distance_m`` from ``origin`` along ``azimuth_deg`` (pyproj, independent of emon.geo)."""
    lon, lat, _ = GEOD.fwd(origin[1], origin[0], azimuth_deg, distance_m)
    return float(lat), float(lon)


def geod_m(a: LatLon, b: LatLon) -> float:
    _, _, d = GEOD.inv(a[1], a[0], b[1], b[0])
    return float(d)


def pos(p: LatLon) -> dict[str, float]:
    return {"lat": p[0], "lon": p[1]}


def circle(name: str, centre: LatLon, radius_m: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "circle": {"lat": centre[0], "lon": centre[1], "radius_m": radius_m}, **extra}


def polygon(name: str, ring: Sequence[LatLon], **extra: Any) -> dict[str, Any]:
    coords = [[p[1], p[0]] for p in (*ring, ring[0])]
    return {"name": name, "geometry": {"type": "Polygon", "coordinates": [coords]}, **extra}


def places(items: Iterable[tuple[str, LatLon]]) -> list[dict[str, Any]]:
    return [{"name": n, "position": pos(p)} for n, p in items]


def request(
    residence: LatLon,
    exclusion: Sequence[dict[str, Any]] = (),
    inclusion: Sequence[dict[str, Any]] = (),
    protected: Iterable[tuple[str, LatLon]] = (),
    mandatory: Iterable[tuple[str, LatLon]] = (),
    victim_device: bool = False,
    **order: Any,
) -> dict[str, Any]:
    order = {"valid_until": "2027-01-01T00:00:00+01:00", **order}
    return {
        "residence": pos(residence),
        "order": {"exclusion_zones": list(exclusion), "inclusion_zones": list(inclusion), **order},
        "protected_places": places(protected),
        "mandatory_places": places(mandatory),
        "victim_device": victim_device,
    }


def run(document: dict[str, Any], now: datetime = NOW, settings: FeasibilitySettings = SETTINGS) -> Report:
    return check(parse_request(document), settings, now)


def codes(report: Report) -> list[str]:
    return [f.code.value for f in report.findings]


def only(report: Report, code: Code) -> Finding:
    found = [f for f in report.findings if f.code is code]
    assert len(found) == 1, f"expected one {code}, got {codes(report)}"
    return found[0]
