"""Decoding of device messages (the device contract, docs/device-contract.md). Pure: no I/O.

Every message becomes a :class:`Decoded`: the valid fixes and events it carried plus a dead letter
for every part that could not be used. In a batch, one bad element never costs the good ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from emon.errors import InvalidPayload
from emon.fix import DeadLetter, DeviceEvent, EventType, Fix, FixSource

MAX_BATCH = 10_000  # fixes in one buffered upload
MAX_PAST = timedelta(days=366)
# OwnTracks phones report no battery events, only ``batt`` (percent): at or below these it becomes one.
OWNTRACKS_BATTERY_LOW_PCT = 20.0
OWNTRACKS_BATTERY_CRITICAL_PCT = 10.0


@dataclass(slots=True)
class Decoded:
    fixes: list[Fix] = field(default_factory=list)
    events: list[DeviceEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    seen: dict[str, datetime] = field(default_factory=dict)  # device → when last heard from


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 262_144
    max_future: timedelta = timedelta(seconds=300)


def parse_ts(value: Any, now: datetime, limits: Limits) -> datetime:
    """RFC 3339 with an offset, or Unix seconds → aware UTC datetime; rejects the far future/past."""
    if isinstance(value, bool):
        raise InvalidPayload("bad_timestamp", "ts must be RFC 3339 or Unix seconds")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidPayload("bad_timestamp", "ts must be finite")
        try:
            ts = datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InvalidPayload("bad_timestamp", f"ts {value!r} out of range") from exc
    elif isinstance(value, str) and len(value) <= 64:
        try:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise InvalidPayload("bad_timestamp", f"ts {value[:40]!r} is not RFC 3339") from exc
        if ts.tzinfo is None:
            raise InvalidPayload("bad_timestamp", "ts needs a UTC offset")
        ts = ts.astimezone(UTC)
    else:
        raise InvalidPayload("bad_timestamp", "ts must be RFC 3339 or Unix seconds")
    if ts > now + limits.max_future:
        raise InvalidPayload("future_timestamp", f"ts {ts.isoformat()} is ahead of now {now.isoformat()}")
    if ts < now - MAX_PAST:
        raise InvalidPayload("stale_timestamp", f"ts {ts.isoformat()} is more than a year old")
    return ts


def _number(obj: dict[str, Any], key: str, *, required: bool, reason: str = "bad_field") -> float | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidPayload("missing_field", f"{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidPayload(reason, f"{key} must be a finite number")
    return float(value)


def fix_from_contract(device_id: str, obj: Any, now: datetime, limits: Limits) -> Fix:
    """One element of an ``emon/v1/fix`` payload → :class:`Fix`, or :class:`InvalidPayload`."""
    if not isinstance(obj, dict):
        raise InvalidPayload("not_an_object", "a fix must be a JSON object")
    if "ts" not in obj:
        raise InvalidPayload("missing_field", "ts is required")
    lat = _number(obj, "lat", required=True, reason="bad_coordinates")
    lon = _number(obj, "lon", required=True, reason="bad_coordinates")
    acc = _number(obj, "acc", required=True, reason="bad_accuracy")
    assert lat is not None and lon is not None and acc is not None
    if acc < 0:
        raise InvalidPayload("bad_accuracy", f"acc {acc} is negative")
    seq = obj.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**62):
        raise InvalidPayload("bad_field", "seq must be a non-negative integer")
    src = obj.get("src")
    if src is not None and src not in FixSource._value2member_map_:
        raise InvalidPayload("bad_field", f"src must be one of {[s.value for s in FixSource]}")
    batt = _number(obj, "batt", required=False)
    if batt is not None and not 0 <= batt <= 100:
        raise InvalidPayload("bad_field", "batt must be 0..100")
    spd = _number(obj, "spd", required=False)
    if spd is not None and not 0 <= spd <= 400:
        raise InvalidPayload("bad_field", "spd must be 0..400 m/s")
    hdg = _number(obj, "hdg", required=False)
    if hdg is not None and not 0 <= hdg <= 360:
        raise InvalidPayload("bad_field", "hdg must be 0..360")
    return Fix(
        device_id=device_id,
        ts=parse_ts(obj["ts"], now, limits),
        lat=lat,
        lon=lon,
        acc_m=acc,
        seq=seq,
        batt=batt,
        src=None if src is None else FixSource(src),
        speed_mps=spd,
        heading_deg=hdg,
    )


def fix_from_owntracks(device_id: str, obj: dict[str, Any], now: datetime, limits: Limits) -> Fix:
    """An OwnTracks ``_type: location`` message → :class:`Fix` (``vel`` is km/h, ``tst`` Unix s)."""
    if "tst" not in obj:
        raise InvalidPayload("missing_field", "tst is required")
    vel = _number(obj, "vel", required=False)
    cog = _number(obj, "cog", required=False)
    contract = {
        "ts": obj["tst"],
        "lat": obj.get("lat"),
        "lon": obj.get("lon"),
        "acc": obj.get("acc"),
        "batt": obj.get("batt"),
        "spd": None if vel is None or vel < 0 else vel / 3.6,
        "hdg": None if cog is None or cog < 0 else cog % 360,
    }
    if contract["acc"] is None:
        raise InvalidPayload("missing_field", "acc is required (OwnTracks sends it by default)")
    return fix_from_contract(device_id, contract, now, limits)


def decode_json(payload: bytes, limits: Limits) -> Any:
    if len(payload) > limits.max_payload_bytes:
        raise InvalidPayload("oversized", f"{len(payload)} bytes > {limits.max_payload_bytes}")
    try:
        return msgspec.json.decode(payload)
    except msgspec.DecodeError as exc:
        raise InvalidPayload("invalid_json", str(exc)[:200]) from exc


def decode_object(payload: bytes, limits: Limits, what: str) -> dict[str, Any]:
    """A payload that must be one JSON object (``what`` names it in the error)."""
    doc = decode_json(payload, limits)
    if not isinstance(doc, dict):
        raise InvalidPayload("not_an_object", f"{what} must be a JSON object")
    return doc


def decode_fixes(topic: str, device_id: str, payload: bytes, now: datetime, limits: Limits) -> Decoded:
    """An ``emon/v1/fix/{device_id}`` message: one object or an array (a buffered upload)."""
    out = Decoded()
    try:
        doc = decode_json(payload, limits)
    except InvalidPayload as exc:
        out.dead.append(DeadLetter(topic, exc.reason, exc.detail, payload, device_id))
        return out
    items = doc if isinstance(doc, list) else [doc]
    if len(items) > MAX_BATCH:
        out.dead.append(
            DeadLetter(topic, "oversized", f"{len(items)} fixes > {MAX_BATCH}", payload, device_id)
        )
        return out
    for index, item in enumerate(items):
        try:
            out.fixes.append(fix_from_contract(device_id, item, now, limits))
        except InvalidPayload as exc:
            element = msgspec.json.encode(item) if isinstance(doc, list) else payload
            where = f"[{index}] " if isinstance(doc, list) else ""
            out.dead.append(DeadLetter(topic, exc.reason, where + exc.detail, element, device_id))
    return out


def decode_event(topic: str, device_id: str, payload: bytes, now: datetime, limits: Limits) -> Decoded:
    """An ``emon/v1/event/{device_id}`` message."""
    out = Decoded()
    try:
        doc = decode_object(payload, limits, "an event")
        kind = doc.get("type")
        if not isinstance(kind, str) or kind not in EventType._value2member_map_:
            raise InvalidPayload("unknown_event_type", f"type {str(kind)[:40]!r}")
        # A last will carries no time of its own: it happened when the broker sent it.
        ts = (
            now
            if kind == EventType.CONNECTION_LOST and "ts" not in doc
            else parse_ts(doc.get("ts"), now, limits)
        )
        data = {k: v for k, v in doc.items() if k not in ("ts", "type")}
        out.events.append(DeviceEvent(device_id, ts, EventType(kind), data))
    except InvalidPayload as exc:
        out.dead.append(DeadLetter(topic, exc.reason, exc.detail, payload, device_id))
    return out


def decode_owntracks(topic: str, device_id: str, payload: bytes, now: datetime, limits: Limits) -> Decoded:
    """An ``owntracks/{user}/{device}`` message of a registered victim phone."""
    out = Decoded()
    try:
        doc = decode_object(payload, limits, "an OwnTracks message")
        kind = doc.get("_type")
        if kind == "location":
            fix = fix_from_owntracks(device_id, doc, now, limits)
            out.fixes.append(fix)
            if fix.batt is not None and fix.batt <= OWNTRACKS_BATTERY_LOW_PCT:
                low = fix.batt > OWNTRACKS_BATTERY_CRITICAL_PCT
                kind_ = EventType.BATTERY_LOW if low else EventType.BATTERY_CRITICAL
                out.events.append(DeviceEvent(device_id, fix.ts, kind_, {"batt": fix.batt, "source": "owntracks"}))
        elif kind == "lwt":
            out.events.append(DeviceEvent(device_id, now, EventType.CONNECTION_LOST, {"source": "owntracks"}))
        else:
            # OwnTracks also sends transition/waypoint/card messages: recorded, not used.
            raise InvalidPayload("unsupported_owntracks_type", f"_type {str(kind)[:40]!r}")
    except InvalidPayload as exc:
        out.dead.append(DeadLetter(topic, exc.reason, exc.detail, payload, device_id))
    return out
