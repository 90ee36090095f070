"""Devices: registration, latest position, track (JSON or GeoJSON); scoped by unit, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from emon.access import Role
from emon.api.deps import runtime
from emon.api.gate import Gate, gate
from emon.casebook import CaseRecord
from emon.device import Device, DeviceKind
from emon.errors import InvalidInput
from emon.privacy import victim_visible
from emon.runtime import Runtime
from emon.storage.live import fix_to_json

router = APIRouter(tags=["devices"])
READ = gate(Role.PROBATION, Role.POLICE)
WRITE = gate(Role.PROBATION)
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
async def register_device(body: DeviceIn, request: Request, g: Gate = Depends(WRITE)) -> dict[str, Any]:
    rt = runtime(request)
    try:
        device = Device(body.device_id, body.kind, body.owntracks_topic, body.report_interval_s)
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if not await rt.records.add_device(device):
        raise HTTPException(status.HTTP_409_CONFLICT, "device_id or owntracks_topic already registered")
    rt.registry.add(device)
    await g.log("device.register", device_id=device.device_id)
    return device_json(device)


@router.get("/devices")
async def list_devices(request: Request, g: Gate = Depends(READ)) -> list[dict[str, Any]]:
    """Every device for an unscoped caller; otherwise the devices of the open cases of their units."""
    rt = runtime(request)
    devices = await rt.records.devices()
    if not g.who.unscoped:
        mine = {d for c in rt.casebook.all() if g.sees(c) for d in (c.offender_device, c.victim_device)}
        devices = [d for d in devices if d.device_id in mine]
    await g.log("device.list", detail={"count": len(devices)})
    return [device_json(d) for d in devices]


async def _checked(g: Gate, rt: Runtime, device_id: str, action: str) -> tuple[Device, list[CaseRecord]]:
    device = rt.registry.by_id.get(device_id)
    cases = await g.device(device, device_id, rt.casebook.cases_for_device(device_id), action)
    assert device is not None
    return device, cases


@router.get("/devices/{device_id}/latest")
async def latest(device_id: str, request: Request, g: Gate = Depends(READ)) -> dict[str, Any]:
    """The latest fix. A victim's only while an alert concerning their safety is open in one of their
    cases this caller sees (emon/privacy.py), and only with a purpose; every read is audited."""
    rt = runtime(request)
    action = "device.latest"
    device, cases = await _checked(g, rt, device_id, action)
    if device.kind is DeviceKind.VICTIM_DEVICE:
        opened = [
            c.case_id
            for c in cases
            if c.victim_device == device_id
            and (doc := rt.casebook.document(c.case_id)) is not None
            and victim_visible(doc, await rt.alerts.open_alerts(c.case_id))
        ]
        if not opened:
            await g.refuse(
                status.HTTP_403_FORBIDDEN,
                "victim_private",
                "a victim's position is shown only while an alert concerning their safety is open",
                action,
                device_id=device_id,
            )
        await g.victim_purpose(action, device_id=device_id)
        cases = [c for c in cases if c.case_id in opened]
    fix = await rt.live.latest(device_id)
    await g.log_cases(
        action,
        [c.case_id for c in cases],
        device_id=device_id,
        detail={
            "role": "victim" if device.kind is DeviceKind.VICTIM_DEVICE else "offender",
            "found": fix is not None,
        },
    )
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
    g: Gate = Depends(READ),
) -> Response | list[dict[str, Any]]:
    """An offender's track. A victim's history is never shown (403, audited)."""
    rt = runtime(request)
    action = "device.track"
    device, cases = await _checked(g, rt, device_id, action)
    if device.kind is DeviceKind.VICTIM_DEVICE:
        await g.refuse(
            status.HTTP_403_FORBIDDEN,
            "victim_private",
            "a victim's history is never shown",
            action,
            device_id=device_id,
        )
    now = datetime.now(UTC)
    end = _utc(end, "to") if end else now
    start = _utc(start, "from") if start else end - timedelta(hours=24)
    if start > end:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'from' must be before 'to'")
    fixes = [fix_to_json(f) for f in await rt.records.track(device_id, start, end, limit)]
    await g.log_cases(
        action,
        [c.case_id for c in cases],
        device_id=device_id,
        detail={"from": start.isoformat(), "to": end.isoformat(), "fixes": len(fixes)},
    )
    if _wants_geojson(request.headers.get("accept", "")):
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
