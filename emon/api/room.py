"""The monitoring room: one case's map data.

``GET /cases/{case_id}/map`` (under /api/v1) returns what the map of one case draws: the case, its
zones as GeoJSON (circles as geodesic polygons, lon/lat), the offender's latest fix and — only while
an alert concerning the victim's safety is unresolved, and with a purpose — the victim's latest fix,
as the live stream does (emon/privacy.py). Scoped by unit and audited like every case read.

The page itself is served by :mod:`emon.api.pages`; it holds no data, every data call it makes is
authenticated (session cookie or bearer token).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Request

from emon.access import VICTIM_POSITION_PURPOSES, Role
from emon.api.deps import runtime
from emon.api.gate import Gate, gate
from emon.case import Case
from emon.geo import geodesic_circle
from emon.order import Zone
from emon.orders.lifecycle import in_force
from emon.privacy import UNRESOLVED, alert_for_viewer, victim_visible

router = APIRouter()
ROOM = gate(Role.PROBATION, Role.POLICE)

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
    *,
    show_victim: bool = True,
) -> dict[str, Any]:
    """The map document. The victim's fix is included only if the privacy rule opens it (an unresolved
    alert concerning the victim's safety, emon/privacy.py) and ``show_victim`` (a purpose was given)."""
    unresolved = [dict(a) for a in open_alerts if a.get("state") in UNRESOLVED]
    shown = show_victim and victim_visible(case, unresolved)
    return {
        "case": case.model_dump(mode="json", exclude_none=True),
        "zones": zones_geojson(case),
        "offender": offender,
        "victim": victim if shown else None,
        "open_alerts": [alert_for_viewer(a, case, show_victim) for a in unresolved],
    }


@router.get("/cases/{case_id}/map")
async def case_map(case_id: str, request: Request, g: Gate = Depends(ROOM)) -> dict[str, Any]:
    """Map data of one open case (404 if the case is not open). The victim's position needs
    ``?purpose=`` (or ``X-Purpose``); without one the map comes without it (``victim_withheld``)."""
    rt = runtime(request)
    case = await g.case(rt.casebook.document(case_id), case_id, "case.map")
    live: LiveSource = rt.live
    offender, alerts = await asyncio.gather(live.latest(case.offender_device), rt.alerts.open_alerts(case_id))
    show_victim = g.purpose in VICTIM_POSITION_PURPOSES
    opens = case.victim_device is not None and victim_visible(case, alerts)
    victim = None
    # The victim's position is not even read unless the rule allows showing it.
    if opens and show_victim and case.victim_device is not None:
        victim = await live.latest(case.victim_device)
    await g.log("case.map", case_id=case_id, detail={"victim_shown": victim is not None})
    view = map_view(case, offender, victim, alerts, show_victim=show_victim)
    # After its term the order's rules raise nothing: the map says so instead of showing a violation.
    view["order_in_force"] = in_force(case.order.valid_from, case.order.valid_until, datetime.now(UTC))
    if opens and not show_victim:
        view["victim_withheld"] = "purpose_required"
    return view
