"""A GPS fix and a device event: validated once, trusted afterwards."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from emon.errors import InvalidPayload


class FixSource(StrEnum):
    GNSS = "gnss"
    WIFI = "wifi"
    CELL = "cell"


class EventType(StrEnum):
    TAMPER = "tamper"
    STRAP_OPEN = "strap_open"
    STRAP_CLOSED = "strap_closed"
    BATTERY_LOW = "battery_low"
    BATTERY_CRITICAL = "battery_critical"
    POWER_OFF = "power_off"
    PANIC = "panic"
    # Emitted by emon itself from the MQTT last will / OwnTracks lwt message.
    CONNECTION_LOST = "connection_lost"


@dataclass(frozen=True, slots=True)
class Fix:
    """One position of one device.

    ``ts`` is the UTC time the position was measured (not sent); ``acc_m`` the radius in metres
    of the horizontal error circle; ``speed_mps`` metres per second; ``heading_deg`` degrees.
    """

    device_id: str
    ts: datetime
    lat: float
    lon: float
    acc_m: float
    seq: int | None = None
    batt: float | None = None
    src: FixSource | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None

    def __post_init__(self) -> None:
        check_position(self.lat, self.lon)
        if not (math.isfinite(self.acc_m) and 0 <= self.acc_m <= 100_000):
            raise InvalidPayload("bad_accuracy", f"acc {self.acc_m!r} must be 0..100000 m")
        if self.ts.utcoffset() != timedelta(0):
            raise InvalidPayload("bad_timestamp", "ts must be a UTC datetime")

    @property
    def key(self) -> tuple[str, datetime, int]:
        """Identity used for de-duplication: (device, fix time, seq or -1)."""
        return (self.device_id, self.ts, -1 if self.seq is None else self.seq)


def _slot_setter(name: str) -> Callable[[Fix, Any], None]:
    setter: Callable[[Fix, Any], None] = Fix.__dict__[name].__set__
    return setter


# The slots' own setters: they write past the frozen ``__setattr__``, a third of the cost of object's.
(
    _set_device_id,
    _set_ts,
    _set_lat,
    _set_lon,
    _set_acc_m,
    _set_seq,
    _set_batt,
    _set_src,
    _set_speed_mps,
    _set_heading_deg,
) = (_slot_setter(f.name) for f in fields(Fix))


def checked_fix(
    device_id: str,
    ts: datetime,
    lat: float,
    lon: float,
    acc_m: float,
    seq: int | None,
    batt: float | None,
    src: FixSource | None,
    speed_mps: float | None,
    heading_deg: float | None,
) -> Fix:
    """A :class:`Fix` of values the caller has already checked at least as strictly as ``Fix`` does
    (finite lat/lon in range, acc 0..100,000 m, a UTC ``ts``): the decoder's fast path builds thousands
    a second, and the dataclass's own ``__init__`` and checks cost 2 µs a fix, this 0.7 µs.
    Never for values that were not checked."""
    fix: Fix = object.__new__(Fix)
    _set_device_id(fix, device_id)
    _set_ts(fix, ts)
    _set_lat(fix, lat)
    _set_lon(fix, lon)
    _set_acc_m(fix, acc_m)
    _set_seq(fix, seq)
    _set_batt(fix, batt)
    _set_src(fix, src)
    _set_speed_mps(fix, speed_mps)
    _set_heading_deg(fix, heading_deg)
    return fix


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A non-position message of a device (tamper, panic, battery, …) at UTC time ``ts``."""

    device_id: str
    ts: datetime
    type: EventType
    data: dict[str, Any] = field(default_factory=dict)


def check_position(lat: float, lon: float) -> None:
    """Raise :class:`InvalidPayload` unless (lat, lon) are finite WGS84 degrees in range."""
    if not (isinstance(lat, int | float) and isinstance(lon, int | float)):
        raise InvalidPayload("bad_coordinates", "lat and lon must be numbers")
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise InvalidPayload("bad_coordinates", "lat/lon must be finite")
    if not -90.0 <= lat <= 90.0:
        raise InvalidPayload("bad_coordinates", f"lat {lat} outside -90..90")
    if not -180.0 <= lon <= 180.0:
        raise InvalidPayload("bad_coordinates", f"lon {lon} outside -180..180")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message (or one element of a batch) emon could not use: raw bytes and a stable reason code."""

    topic: str
    reason: str
    detail: str
    payload: bytes
    device_id: str | None = None
