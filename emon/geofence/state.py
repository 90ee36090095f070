"""Evaluation state of one case: compact in memory, packed for persistence (:meth:`CaseState.pack`),
and round-tripping through a JSON-compatible dict (the form of evidence snapshots and packs).

The classes are msgspec structs (no per-object dict, not tracked by the garbage collector: state never
forms reference cycles) encoded as arrays: a field added later goes at the end, with a default, so a
state packed before still unpacks.
"""

from __future__ import annotations

import bisect
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from emon.fix import Fix

STATE_VERSION = 1
PACKED_VERSION = 1  # first byte of CaseState.pack()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RECORD = struct.Struct("<qddd")  # a remembered fix: UTC microseconds since the epoch, lat, lon, acc
_MICROS = struct.Struct("<q")


def _micros(ts: datetime) -> int:
    since = ts - _EPOCH  # whole days, seconds and microseconds: cheaper than dividing timedeltas
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def _unpack(packed: bytearray, i: int) -> FixRecord:
    us, lat, lon, acc = _RECORD.unpack_from(packed, i * _RECORD.size)
    return FixRecord(_EPOCH + timedelta(microseconds=us), lat, lon, acc)


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class FixRecord(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The part of a fix that state keeps: UTC time, WGS84 degrees, accuracy in metres."""

    ts: datetime
    lat: float
    lon: float
    acc: float

    @classmethod
    def of(cls, fix: Fix) -> FixRecord:
        return cls(fix.ts, fix.lat, fix.lon, fix.acc_m)

    def to_list(self) -> list[Any]:
        return [self.ts.isoformat(), self.lat, self.lon, self.acc]

    @classmethod
    def from_list(cls, data: list[Any]) -> FixRecord:
        return cls(datetime.fromisoformat(data[0]), float(data[1]), float(data[2]), float(data[3]))


class Episode(msgspec.Struct, array_like=True, gc=False):
    """An open alert episode. ``start`` is its id (fix time that began it); ``live`` whether its
    start event was sent live; ``worst`` (severity, metres) and ``lat``/``lon`` are the baseline
    for the next BREACH_UPDATE: the last reported reading, or a later clearly better one."""

    start: datetime
    live: bool
    worst: float
    lat: float
    lon: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "live": self.live,
            "worst": self.worst,
            "lat": self.lat,
            "lon": self.lon,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Episode:
        return cls(
            datetime.fromisoformat(d["start"]),
            bool(d["live"]),
            float(d["worst"]),
            float(d["lat"]),
            float(d["lon"]),
        )


class RuleState(msgspec.Struct, array_like=True, gc=False):
    """Per-rule state: enforcement seen last, pending confirmation, open episodes, clearing."""

    active: bool | None = None
    pending_since: datetime | None = None
    pending_count: int = 0
    breach: Episode | None = None
    prealert: Episode | None = None
    clear_since: datetime | None = None
    ref_d: float | None = None  # distance of the device's last plausible fix (crossing check)
    retro_start: datetime | None = None  # last out-of-order retrospective episode
    retro_last: datetime | None = None
    # Evidence (emon.geofence.evidence): the accumulated log-likelihood ratio since pending_since,
    # and the time of the last fix that counted (for the correlation weight).
    llr: float = 0.0
    llr_ts: datetime | None = None
    llr_lat: float | None = None  # where that fix was (a fix far from it has an independent error)
    llr_lon: float | None = None
    retro_llr: float = 0.0  # the same over out-of-order (late) fixes, in their fix-time order
    retro_ts: datetime | None = None
    possible: Episode | None = None  # the visible possible state
    undecided_since: datetime | None = None  # a decision hangs on a stale counterpart since
    cross_ref: FixRecord | None = None  # last accurate fix clear of the zone (crossing check)
    cross_ref_d: float | None = None
    stale_device: str | None = None  # proximity: the decision hangs on this device's old fix
    stale_far: bool = False  # ... while the pair is beyond the pre-alert ring

    def to_dict(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "pending_since": _ts(self.pending_since),
            "pending_count": self.pending_count,
            "breach": None if self.breach is None else self.breach.to_dict(),
            "prealert": None if self.prealert is None else self.prealert.to_dict(),
            "clear_since": _ts(self.clear_since),
            "ref_d": self.ref_d,
            "retro_start": _ts(self.retro_start),
            "retro_last": _ts(self.retro_last),
            "llr": self.llr,
            "llr_ts": _ts(self.llr_ts),
            "llr_lat": self.llr_lat,
            "llr_lon": self.llr_lon,
            "retro_llr": self.retro_llr,
            "retro_ts": _ts(self.retro_ts),
            "possible": None if self.possible is None else self.possible.to_dict(),
            "undecided_since": _ts(self.undecided_since),
            "cross_ref": None if self.cross_ref is None else self.cross_ref.to_list(),
            "cross_ref_d": self.cross_ref_d,
            "stale_device": self.stale_device,
            "stale_far": self.stale_far,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RuleState:
        return cls(
            active=d["active"],
            pending_since=_dt(d["pending_since"]),
            pending_count=int(d["pending_count"]),
            breach=None if d["breach"] is None else Episode.from_dict(d["breach"]),
            prealert=None if d["prealert"] is None else Episode.from_dict(d["prealert"]),
            clear_since=_dt(d["clear_since"]),
            ref_d=d["ref_d"],
            retro_start=_dt(d["retro_start"]),
            retro_last=_dt(d["retro_last"]),
            # Added later: a state saved before has none of these (and starts them afresh).
            llr=float(d.get("llr", 0.0)),
            llr_ts=_dt(d.get("llr_ts")),
            llr_lat=d.get("llr_lat"),
            llr_lon=d.get("llr_lon"),
            retro_llr=float(d.get("retro_llr", 0.0)),
            retro_ts=_dt(d.get("retro_ts")),
            possible=None if d.get("possible") is None else Episode.from_dict(d["possible"]),
            undecided_since=_dt(d.get("undecided_since")),
            cross_ref=None if d.get("cross_ref") is None else FixRecord.from_list(d["cross_ref"]),
            cross_ref_d=d.get("cross_ref_d"),
            stale_device=d.get("stale_device"),
            stale_far=bool(d.get("stale_far", False)),
        )


class DeviceTrack(msgspec.Struct, array_like=True, gc=False):
    """One device as seen by one case: the last evaluated fix (live order), the last plausible
    fix (reference for jump checks), and recent fixes sorted by time.

    The recent fixes are packed, 32 bytes each (``_RECORD``: UTC microseconds since the epoch,
    latitude, longitude, accuracy; little-endian), instead of one object per fix (≈ 180 bytes);
    :attr:`history` and the look-ups give them back as equal :class:`FixRecord` values."""

    last: FixRecord | None = None
    ref: FixRecord | None = None
    packed: bytearray = msgspec.field(default_factory=bytearray)

    @property
    def count(self) -> int:
        """How many fixes are remembered."""
        return len(self.packed) // _RECORD.size

    @property
    def history(self) -> list[FixRecord]:
        """The remembered fixes, oldest first."""
        return [_unpack(self.packed, i) for i in range(self.count)]

    def remember(self, rec: FixRecord, keep: int) -> None:
        """Insert ``rec`` in time order (after fixes of the same time); keep the latest ``keep``."""
        n = self.count
        us = _micros(rec.ts)
        i = n if n == 0 or self._us(n - 1) <= us else self._right(us)
        at = i * _RECORD.size
        self.packed[at:at] = _RECORD.pack(us, rec.lat, rec.lon, rec.acc)
        if n + 1 > keep:
            del self.packed[: (n + 1 - keep) * _RECORD.size]

    def holds(self, rec: FixRecord) -> bool:
        """True if a remembered fix equals ``rec`` (a duplicate delivery)."""
        us = _micros(rec.ts)
        return any(_unpack(self.packed, i) == rec for i in range(self._left(us), self._right(us)))

    def before(self, ts: datetime) -> FixRecord | None:
        """The latest remembered fix at or before ``ts``."""
        i = self._right(_micros(ts))
        return _unpack(self.packed, i - 1) if i > 0 else None

    def after(self, ts: datetime) -> FixRecord | None:
        """The earliest remembered fix after ``ts``."""
        i = self._right(_micros(ts))
        return _unpack(self.packed, i) if i < self.count else None

    def nearest(self, ts: datetime) -> FixRecord | None:
        """The remembered fix closest in time to ``ts`` (ties: the earlier one)."""
        n = self.count
        if not n:
            return None
        newest = _unpack(self.packed, n - 1)
        if newest.ts < ts:
            return newest  # the common case (a counterpart's newest fix): every remembered one is earlier
        i = self._left(_micros(ts))
        near = [_unpack(self.packed, k) for k in range(max(0, i - 1), min(n, i + 1))]
        return min(near, key=lambda r: abs((r.ts - ts).total_seconds()))

    def _us(self, i: int) -> int:
        return int(_MICROS.unpack_from(self.packed, i * _RECORD.size)[0])

    def _right(self, us: int) -> int:
        return bisect.bisect_right(range(self.count), us, key=self._us)

    def _left(self, us: int) -> int:
        return bisect.bisect_left(range(self.count), us, key=self._us)

    def to_dict(self) -> dict[str, Any]:
        return {
            "last": None if self.last is None else self.last.to_list(),
            "ref": None if self.ref is None else self.ref.to_list(),
            "history": [r.to_list() for r in self.history],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeviceTrack:
        track = cls(
            last=None if d["last"] is None else FixRecord.from_list(d["last"]),
            ref=None if d["ref"] is None else FixRecord.from_list(d["ref"]),
        )
        for r in d["history"]:
            track.remember(FixRecord.from_list(r), len(d["history"]))
        return track


class CaseState(msgspec.Struct, array_like=True, gc=False):
    """All evaluation state of one case. ``proximity`` is None (not yet established), "known" or
    "unknown" (since ``unknown_since``); ``first_seen`` starts the grace period before silence
    counts as unknown; ``reminders`` are the expiry reminders already sent."""

    rules: dict[str, RuleState] = msgspec.field(default_factory=dict)
    devices: dict[str, DeviceTrack] = msgspec.field(default_factory=dict)
    proximity: str | None = None
    unknown_since: datetime | None = None
    first_seen: datetime | None = None
    reminders: frozenset[str] = frozenset()  # replaced, not mutated: most cases never have one
    # When a device was last asked to locate.
    locate_asked: dict[str, datetime] = msgspec.field(default_factory=dict)

    def rule(self, name: str) -> RuleState:
        rs = self.rules.get(name)
        if rs is None:
            rs = self.rules[name] = RuleState()
        return rs

    def track(self, device_id: str) -> DeviceTrack:
        tr = self.devices.get(device_id)
        if tr is None:
            tr = self.devices[device_id] = DeviceTrack()
        return tr

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (str keys, str/float/int/bool/None/list/dict values)."""
        return {
            "version": STATE_VERSION,
            "rules": {k: v.to_dict() for k, v in sorted(self.rules.items())},
            "devices": {k: v.to_dict() for k, v in sorted(self.devices.items())},
            "proximity": self.proximity,
            "unknown_since": _ts(self.unknown_since),
            "first_seen": _ts(self.first_seen),
            "reminders": sorted(self.reminders),
            "locate_asked": {k: v.isoformat() for k, v in sorted(self.locate_asked.items())},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseState:
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported case state version {d.get('version')!r}")
        return cls(
            rules={k: RuleState.from_dict(v) for k, v in d["rules"].items()},
            devices={k: DeviceTrack.from_dict(v) for k, v in d["devices"].items()},
            proximity=d["proximity"],
            unknown_since=_dt(d["unknown_since"]),
            first_seen=_dt(d["first_seen"]),
            reminders=frozenset(d["reminders"]),
            locate_asked={k: datetime.fromisoformat(v) for k, v in d.get("locate_asked", {}).items()},
        )

    def pack(self) -> bytes:
        """The state as compact bytes (a version byte, then msgpack; datetimes as UTC timestamps,
        remembered fixes as they are held): what ``eval_state`` keeps, cheap to write every batch."""
        return _PACK_PREFIX + _ENCODER.encode(self)

    @classmethod
    def unpack(cls, data: bytes) -> CaseState:
        """The state :meth:`pack` gave (ValueError for another version or malformed bytes)."""
        if data[:1] != _PACK_PREFIX:
            raise ValueError(f"unsupported packed case state version {data[:1]!r}")
        try:
            return _DECODER.decode(memoryview(data)[1:])
        except msgspec.DecodeError as exc:
            raise ValueError(f"malformed packed case state: {exc}") from exc


_PACK_PREFIX = bytes([PACKED_VERSION])
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(CaseState)
