"""Devices: registration, latest position, track (JSON or GeoJSON)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from emon.api.auth import Principal, Role, require
from emon.api.deps import runtime
from emon.device import Device, DeviceKind
from emon.errors import InvalidInput
from emon.runtime import Runtime
from emon.storage.live import fix_to_json

router = APIRouter(tags=["devices"])
READ = require(Role.PROBATION, Role.POLICE)
WRITE = require(Role.PROBATION)
MAX_TRACK = 10_000


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device_id: str = Field(min_length=1, max_length=64)
    kind: DeviceKind
    owntracks_topic: str | None = None
    report_interval_s: int = Field(default=60, ge=1, le=86_400)


def device_json(d: Device) -> dict[str, Any]:
    return {
        "device_id": d.device_id,
        "kind": d.kind.value,
        "owntracks_topic": d.owntracks_topic,
        "report_interval_s": d.report_interval_s,
    }


@router.post("/devices", status_code=status.HTTP_201_CREATED)
async def register_device(
    body: DeviceIn, request: Request, _: Principal = Depends(WRITE)
) -> dict[str, Any]:
    rt = runtime(request)
    try:
        device = Device(body.device_id, body.kind, body.owntracks_topic, body.report_interval_s)
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if not await rt.records.add_device(device):
        raise HTTPException(status.HTTP_409_CONFLICT, "device_id or owntracks_topic already registered")
    rt.registry.add(device)
    return device_json(device)


@router.get("/devices")
async def list_devices(request: Request, _: Principal = Depends(READ)) -> list[dict[str, Any]]:
    return [device_json(d) for d in await runtime(request).records.devices()]


async def check_victim_privacy(rt: Runtime, device_id: str, who: Principal, *, history: bool) -> None:
    """A victim's position is theirs: probation and police see it only while one of the victim's
    cases has an open alert, and never its history; only an admin may read it otherwise."""
    device = rt.registry.by_id.get(device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "unknown device")
    if device.kind is not DeviceKind.VICTIM_DEVICE or who.role is Role.ADMIN:
        return
    if not history:
        for case in rt.casebook.cases_for_device(device_id):
            if case.victim_device == device_id and await rt.alerts.open_alerts(case.case_id):
                return
    raise HTTPException(status.HTTP_403_FORBIDDEN, "a victim's position is shown only while an alert is open")


@router.get("/devices/{device_id}/latest")
async def latest(device_id: str, request: Request, who: Principal = Depends(READ)) -> dict[str, Any]:
    rt = runtime(request)
    await check_victim_privacy(rt, device_id, who, history=False)
    fix = await rt.live.latest(device_id)
    if fix is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no fix yet")
    return fix


@router.get("/devices/{device_id}/track", response_model=None)
async def track(
    device_id: str,
    request: Request,
    start: datetime | None = Query(default=None, alias="from"),
    end: datetime | None = Query(default=None, alias="to"),
    limit: int = Query(default=MAX_TRACK, ge=1, le=MAX_TRACK),
    who: Principal = Depends(READ),
) -> Response | list[dict[str, Any]]:
    rt = runtime(request)
    await check_victim_privacy(rt, device_id, who, history=True)
    now = datetime.now(UTC)
    end = _utc(end, "to") if end else now
    start = _utc(start, "from") if start else end - timedelta(hours=24)
    if start > end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'from' must be before 'to'")
    fixes = [fix_to_json(f) for f in await rt.records.track(device_id, start, end, limit)]
    if _wants_geojson(request.headers.get("accept", "")):
        from fastapi.responses import JSONResponse

        return JSONResponse(track_geojson(device_id, fixes), media_type="application/geo+json")
    return fixes


def _utc(value: datetime, name: Literal["from", "to"]) -> datetime:
    if value.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"'{name}' needs a UTC offset")
    return value.astimezone(UTC)


def _wants_geojson(accept: str) -> bool:
    return "application/geo+json" in accept


def track_geojson(device_id: str, fixes: list[dict[str, Any]]) -> dict[str, Any]:
    """A FeatureCollection: the track as a LineString, and every fix as a Point with its properties."""
    features: list[dict[str, Any]] = []
    if len(fixes) >= 2:
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[f["lon"], f["lat"]] for f in fixes]},
                "properties": {"device_id": device_id, "kind": "track"},
            }
        )
    for f in fixes:
        props = {k: v for k, v in f.items() if k not in ("lat", "lon")}
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [f["lon"], f["lat"]]},
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": features}
