"""The monitoring room: one case's map data.

``GET /cases/{case_id}/map`` (under /api/v1) returns what the map of one case draws: the case, its
zones as GeoJSON (circles as geodesic polygons, lon/lat), the offender's latest fix and — only while
the case has an unresolved alert — the victim's latest fix, as the live stream does.

The page itself is served by :mod:`emon.api.pages`; it holds no data, every data call it makes is
authenticated (session cookie or bearer token).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Request, status

from emon.api.auth import Role, require
from emon.api.deps import runtime
from emon.api.stream import UNRESOLVED
from emon.case import Case
from emon.geo import geodesic_circle
from emon.order import Zone

router = APIRouter()

CIRCLE_SEGMENTS = 96  # enough for a screen: chord error r * (1 - cos(pi/96)) ~= 0.05 % of r


class LiveSource(Protocol):
    async def latest(self, device_id: str) -> dict[str, Any] | None: ...


def zone_feature(zone: Zone, kind: str) -> dict[str, Any]:
    """One zone as a GeoJSON Feature (lon/lat); a circle becomes a geodesic polygon."""
    props: dict[str, Any] = {"name": zone.name, "kind": kind}
    if zone.circle is not None:
        c = zone.circle
        ring = [[x, y] for x, y in geodesic_circle(c.lat, c.lon, c.radius_m, CIRCLE_SEGMENTS).exterior.coords]
        geometry: dict[str, Any] = {"type": "Polygon", "coordinates": [ring]}
        props.update(center={"lat": c.lat, "lon": c.lon}, radius_m=c.radius_m)
    else:
        assert zone.geometry is not None  # Zone guarantees exactly one shape
        geometry = zone.geometry
    for key in ("valid_from", "valid_until"):
        value = getattr(zone, key)
        if value is not None:
            props[key] = value.isoformat()
    if zone.schedule is not None:
        props["scheduled"] = True
    return {"type": "Feature", "properties": props, "geometry": geometry}


def zones_geojson(case: Case) -> dict[str, Any]:
    """The case's exclusion and inclusion zones as a FeatureCollection."""
    features = [zone_feature(z, "exclusion") for z in case.order.exclusion_zones]
    features += [zone_feature(z, "inclusion") for z in case.order.inclusion_zones]
    return {"type": "FeatureCollection", "features": features}


def map_view(
    case: Case,
    offender: dict[str, Any] | None,
    victim: dict[str, Any] | None,
    open_alerts: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The map document. The victim's fix is included only if an alert is unresolved (privacy rule)."""
    unresolved = [dict(a) for a in open_alerts if a.get("state") in UNRESOLVED]
    return {
        "case": case.model_dump(mode="json", exclude_none=True),
        "zones": zones_geojson(case),
        "offender": offender,
        "victim": victim if unresolved else None,
        "open_alerts": unresolved,
    }


@router.get("/cases/{case_id}/map", dependencies=[Depends(require(Role.PROBATION, Role.POLICE))])
async def case_map(case_id: str, request: Request) -> dict[str, Any]:
    """Map data of one open case (404 if the case is not open)."""
    rt = runtime(request)
    case: Case | None = rt.casebook.get(case_id)
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no open case {case_id!r}")
    live: LiveSource = rt.live
    offender, alerts = await asyncio.gather(live.latest(case.offender_device), rt.alerts.open_alerts(case_id))
    victim = None
    # The victim's position is not even read unless the rule allows showing it.
    if case.victim_device is not None and any(a.get("state") in UNRESOLVED for a in alerts):
        victim = await live.latest(case.victim_device)
    return map_view(case, offender, victim, alerts)
