"""Decoding of device messages (the device contract, docs/device-contract.md). Pure: no I/O.

Every message becomes a :class:`Decoded`: the valid fixes and events it carried plus a dead letter
for every part that could not be used. In a batch, one bad element never costs the good ones.

Hostile input is stopped before it costs work: the payload's size, JSON nesting depth, element count
and longest string are checked on the raw bytes (:func:`prescan`) before msgspec builds anything, and
text PostgreSQL cannot hold (NUL, lone surrogates) or numbers it cannot hold never leave this module.

Fix messages take a fast path first (issue #14): msgspec decodes the bytes straight into typed structs
that hold only the contract's fields, and a message whose every fix is valid is done. Anything else
(an unknown field, a wrong type, a value out of range, a bad element in a batch) goes through the
general path below, which alone decides reasons and details: so the outcome for any input is the one
the general path gives, and the fast path only saves work on messages it would accept anyway.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import msgspec
import numpy as np

from emon.deadletters import MAX_REASONS, clean_text
from emon.errors import InvalidPayload
from emon.fix import DeadLetter, DeviceEvent, EventType, Fix, FixSource, checked_fix

MAX_BATCH = 10_000  # fixes in one buffered upload
MAX_PAST = timedelta(days=366)
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)?\Z", re.ASCII)
# OwnTracks phones report no battery events, only ``batt`` (percent): at or below these it becomes one.
OWNTRACKS_BATTERY_LOW_PCT = 20.0
OWNTRACKS_BATTERY_CRITICAL_PCT = 10.0


@dataclass(slots=True)
class Decoded:
    fixes: list[Fix] = field(default_factory=list)
    events: list[DeviceEvent] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)  # the first MAX_REASONS of a message
    more_dead: dict[str, int] = field(default_factory=dict)  # further bad elements, counted by reason
    seen: dict[str, datetime] = field(default_factory=dict)  # device → when last heard from


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """What one message may contain; checked on the raw bytes before decoding (see :func:`prescan`)."""

    max_payload_bytes: int = 262_144
    max_future: timedelta = timedelta(seconds=300)
    max_depth: int = 8  # JSON nesting: a fix batch needs 2, event data a few more
    max_elements: int = 50_000  # JSON values in one message (a 256 KB batch of fixes holds ≈ 17,000)
    max_string: int = 1_024  # characters in one JSON string (escapes counted as written)


# Bytes of JSON text: escaped backslashes and quotes are removed first (left to right, as a JSON parser
# pairs them); then every other quote opens or closes a string, and what lies outside strings is the
# payload's structure.
_STRUCTURE = bytes(range(256)).translate(None, b'"[]{}')  # for bytes.translate: delete all but these
_DEPTH_STEP = np.zeros(256, dtype=np.int32)
_DEPTH_STEP[[ord("["), ord("{")]] = 1
_DEPTH_STEP[[ord("]"), ord("}")]] = -1


@lru_cache(maxsize=8)
def _long_run(max_string: int) -> re.Pattern[bytes]:
    return re.compile(rb'[^"]{%d,}' % (max_string + 1))


def prescan(payload: bytes, limits: DecodeLimits) -> None:
    """Refuse a payload whose size, nesting depth, element count or longest string exceeds ``limits``,
    looking only at the bytes, with C-speed scans (a single fix of ~150 bytes costs a few ``count``
    calls; a 190 KB batch a few milliseconds).

    Conservative: malformed JSON may be refused for depth where a parser would have refused it as
    malformed; valid JSON is measured exactly.
    """
    size = len(payload)
    if size > limits.max_payload_bytes:
        raise InvalidPayload("oversized", f"{size} bytes > {limits.max_payload_bytes}")
    openers = payload.count(b"[") + payload.count(b"{")
    # An upper bound of the element count (commas in strings included): below max_elements in a payload
    # shorter than that, so not counted then (nearly every message: issue #14).
    commas = payload.count(b",") if size >= limits.max_elements else 0
    if openers <= limits.max_depth and size <= limits.max_string and commas < limits.max_elements:
        return  # too few brackets to nest too deep, too short to hold a string too long
    head = payload[: 4 * limits.max_depth + 4]
    rest = head.lstrip(b" \t\r\n[{")
    if (
        head.count(b"[", 0, len(head) - len(rest)) + head.count(b"{", 0, len(head) - len(rest))
        > limits.max_depth
    ):
        raise InvalidPayload(
            "too_deep", f"JSON nesting depth > {limits.max_depth}"
        )  # the usual attack, at once
    body = payload.replace(b"\\\\", b"").replace(b'\\"', b"")
    parts: list[bytes] | None = None
    if size > limits.max_string and _long_run(limits.max_string).search(body):
        parts = body.split(b'"')
        longest = max(map(len, parts[1::2]), default=0)
        if longest > limits.max_string:
            raise InvalidPayload("string_too_long", f"a string of {longest} bytes > {limits.max_string}")
    if commas >= limits.max_elements:
        parts = parts or body.split(b'"')
        elements = sum(p.count(b",") for p in parts[0::2]) + 1
        if elements > limits.max_elements:
            raise InvalidPayload("too_many_elements", f"{elements} JSON values > {limits.max_elements}")
    if openers > limits.max_depth:
        structure = np.frombuffer(body.translate(None, _STRUCTURE), dtype=np.uint8)
        if structure.size:
            outside = (np.cumsum(structure == ord('"')) & 1) == 0  # even number of quotes so far
            depth = int(np.cumsum(_DEPTH_STEP[structure] * outside).max())
            if depth > limits.max_depth:
                raise InvalidPayload("too_deep", f"JSON nesting depth {depth} > {limits.max_depth}")


_INT_RANGE = 2**63


def check_data(value: Any, limits: DecodeLimits, depth: int = 0) -> None:
    """Raise :class:`InvalidPayload` unless a decoded JSON value can be stored as PostgreSQL ``jsonb``
    unchanged: no NUL or lone surrogate in any string or key, integers within 64 bits, bounded depth."""
    if isinstance(value, str):
        _check_str(value, limits)
    elif isinstance(value, bool) or value is None or isinstance(value, float):
        return  # msgspec gives finite floats only (NaN/Infinity are not JSON)
    elif isinstance(value, int):
        if not -_INT_RANGE <= value < _INT_RANGE:
            raise InvalidPayload("number_out_of_range", "an integer beyond 64 bits")
    elif depth >= limits.max_depth:
        raise InvalidPayload("too_deep", f"JSON nesting depth > {limits.max_depth}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_str(k, limits)
            check_data(v, limits, depth + 1)
    elif isinstance(value, list):
        for v in value:
            check_data(v, limits, depth + 1)
    else:
        raise InvalidPayload("bad_field", f"unexpected JSON value {type(value).__name__}")


def _check_str(value: str, limits: DecodeLimits) -> None:
    if len(value) > limits.max_string:
        raise InvalidPayload("string_too_long", f"a string of {len(value)} characters > {limits.max_string}")
    if "\x00" in value:
        raise InvalidPayload("bad_text", "text holds a NUL character (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidPayload("bad_text", "text holds a lone UTF-16 surrogate") from exc


def parse_ts(value: Any, now: datetime, limits: DecodeLimits) -> datetime:
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
        if not _RFC3339.match(value):  # fromisoformat alone is lax (it lets a NUL through, for one)
            raise InvalidPayload("bad_timestamp", f"ts {value[:40]!r} is not RFC 3339")
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
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidPayload(reason, f"{key} must be a finite number")
    if isinstance(value, int) and not -_INT_RANGE <= value < _INT_RANGE:
        raise InvalidPayload(reason, f"{key} is out of range")  # float() of it would overflow
    if not math.isfinite(value):
        raise InvalidPayload(reason, f"{key} must be a finite number")
    return float(value)


def fix_from_contract(device_id: str, obj: Any, now: datetime, limits: DecodeLimits) -> Fix:
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


def fix_from_owntracks(device_id: str, obj: dict[str, Any], now: datetime, limits: DecodeLimits) -> Fix:
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


_ANY_JSON = msgspec.json.Decoder()  # built once: a decoder per call costs more than a small message


def decode_json(payload: bytes, limits: DecodeLimits) -> Any:
    """DecodeLimits first (:func:`prescan`), then msgspec; every failure is an :class:`InvalidPayload`."""
    prescan(payload, limits)
    return _parse(payload)


def _parse(payload: bytes) -> Any:
    """Any JSON document, once :func:`prescan` has passed it."""
    try:
        return _ANY_JSON.decode(payload)
    except msgspec.DecodeError as exc:  # also msgspec.ValidationError: a number out of range
        raise InvalidPayload("invalid_json", clean_text(str(exc), 200)) from exc
    except UnicodeDecodeError as exc:
        raise InvalidPayload("invalid_utf8", clean_text(str(exc), 200)) from exc
    except RecursionError as exc:  # the last resort: prescan should have refused it
        raise InvalidPayload("too_deep", "JSON nesting too deep to decode") from exc


def decode_object(payload: bytes, limits: DecodeLimits, what: str) -> dict[str, Any]:
    """A payload that must be one JSON object (``what`` names it in the error)."""
    doc = decode_json(payload, limits)
    if not isinstance(doc, dict):
        raise InvalidPayload("not_an_object", f"{what} must be a JSON object")
    return doc


class _ContractFix(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One fix as the fast path decodes it: the contract's fields only. Any other field sends the message
    to the general path: msgspec skips an unknown field without checking it (1e400, bytes that are not
    UTF-8), which decoding to plain JSON values refuses. A JSON integer in a number field arrives as a
    float, as ``float()`` made it."""

    ts: str | float
    lat: float
    lon: float
    acc: float
    seq: int | None = None
    batt: float | None = None
    src: FixSource | None = None
    spd: float | None = None
    hdg: float | None = None


_CONTRACT_FIXES = msgspec.json.Decoder(_ContractFix | list[_ContractFix])
_MAX_SEQ = 2**62


class TypedFixes(NamedTuple):
    fixes: list[Fix]  # of the message's first elements, in order, each valid
    complete: bool  # every element of the message; if not, the general path goes on from len(fixes)


# TypedFixes(...) without the named tuple's ``__new__`` (a Python function): one is built per message.
_new_typed: Callable[[tuple[list[Fix], bool]], TypedFixes] = functools.partial(tuple.__new__, TypedFixes)


def typed_fixes(device_id: str, payload: bytes, now: datetime, limits: DecodeLimits) -> TypedFixes | None:
    """The fixes of a message :func:`prescan` has passed, up to its first element the fast path does not
    accept; None if msgspec cannot decode the message into contract structs at all.

    Accepts exactly what :func:`fix_from_contract` accepts, with the same values, and refuses more: the
    general path decides the rest and records the reasons. Keeping the valid start of a batch means a
    bad last element does not cost the whole batch twice."""
    try:
        doc = _CONTRACT_FIXES.decode(payload)
    except (msgspec.DecodeError, ValueError, RecursionError):  # DecodeError: also ValidationError
        return None
    items = doc if type(doc) is list else (doc,)
    if not items or len(items) > MAX_BATCH:
        return None
    latest = now + limits.max_future
    earliest = now - MAX_PAST
    fixes: list[Fix] = []
    for m in items:
        ts: datetime | None
        if isinstance(m.ts, float):  # Unix seconds, as nearly every tag sends them
            try:
                ts = datetime.fromtimestamp(m.ts, UTC)
            except (OverflowError, OSError, ValueError):
                ts = None
        else:
            ts = _typed_rfc3339(m.ts)
        # Comparisons are False for NaN, and msgspec yields no infinity: in range means finite.
        if (
            ts is None
            or not earliest <= ts <= latest
            or not (-90.0 <= m.lat <= 90.0 and -180.0 <= m.lon <= 180.0 and 0.0 <= m.acc <= 100_000.0)
            or (m.seq is not None and not 0 <= m.seq < _MAX_SEQ)
            or (m.batt is not None and not 0.0 <= m.batt <= 100.0)
            or (m.spd is not None and not 0.0 <= m.spd <= 400.0)
            or (m.hdg is not None and not 0.0 <= m.hdg <= 360.0)
        ):
            return _new_typed((fixes, False))
        fixes.append(checked_fix(device_id, ts, m.lat, m.lon, m.acc, m.seq, m.batt, m.src, m.spd, m.hdg))
    return _new_typed((fixes, True))


def _typed_rfc3339(value: str) -> datetime | None:
    """:func:`parse_ts` of a string for the fast path: the same aware UTC datetime, or None where it
    would raise for the format (the range is the caller's)."""
    if len(value) > 64 or not _RFC3339.match(value):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if ts.tzinfo is None:
        return None
    return ts.astimezone(UTC)


def decode_fixes(topic: str, device_id: str, payload: bytes, now: datetime, limits: DecodeLimits) -> Decoded:
    """An ``emon/v1/fix/{device_id}`` message: one object or an array (a buffered upload)."""
    out = fix_message(topic, device_id, payload, now, limits)
    return Decoded(out) if isinstance(out, list) else out


def fix_message(
    topic: str, device_id: str, payload: bytes, now: datetime, limits: DecodeLimits
) -> list[Fix] | Decoded:
    """:func:`decode_fixes`, with the outcome of a message whose every fix is valid (nearly all of them)
    given as the plain list of its fixes: the ingest loop then builds no :class:`Decoded` for it."""
    try:
        prescan(payload, limits)
    except InvalidPayload as exc:
        return Decoded(dead=[DeadLetter(topic, exc.reason, exc.detail, payload, device_id)])
    typed = typed_fixes(device_id, payload, now, limits)
    if typed is not None and typed.complete:
        return typed.fixes
    return _general_fixes(topic, device_id, payload, now, limits, [] if typed is None else typed.fixes)


def _general_fixes(
    topic: str, device_id: str, payload: bytes, now: datetime, limits: DecodeLimits, done: list[Fix]
) -> Decoded:
    """Every fix message the fast path did not take, once :func:`prescan` has passed it: the reference
    for what is kept and for every reason and detail recorded. ``done``: the fixes of the message's
    first elements, already accepted by the fast path (the elements are judged one by one)."""
    out = Decoded(done)
    try:
        doc = _parse(payload)
    except InvalidPayload as exc:
        out.dead.append(DeadLetter(topic, exc.reason, exc.detail, payload, device_id))
        return out
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        out.dead.append(DeadLetter(topic, "empty_batch", "an empty array of fixes", payload, device_id))
        return out
    if len(items) > MAX_BATCH:
        out.dead.append(
            DeadLetter(topic, "oversized", f"{len(items)} fixes > {MAX_BATCH}", payload, device_id)
        )
        return out
    for index in range(len(done), len(items)):
        try:
            out.fixes.append(fix_from_contract(device_id, items[index], now, limits))
        except InvalidPayload as exc:
            # The dead-letter row keeps the message (truncated) once, the first reasons and a count: past
            # those, a bad element costs a dict update, so 6,000 of them in one message stay cheap.
            if len(out.dead) < MAX_REASONS:
                where = f"[{index}] " if isinstance(doc, list) else ""
                out.dead.append(DeadLetter(topic, exc.reason, where + exc.detail, payload, device_id))
            else:
                out.more_dead[exc.reason] = out.more_dead.get(exc.reason, 0) + 1
    return out


def decode_event(topic: str, device_id: str, payload: bytes, now: datetime, limits: DecodeLimits) -> Decoded:
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
        try:
            check_data(data, limits)
        except InvalidPayload as exc:
            # The event itself (a tamper, a panic) is kept; the data PostgreSQL cannot hold is not, and
            # the message as sent is recorded as a dead letter.
            data = {"invalid_data": exc.reason}
            out.dead.append(
                DeadLetter(
                    topic, exc.reason, "event kept without its data: " + exc.detail, payload, device_id
                )
            )
        out.events.append(DeviceEvent(device_id, ts, EventType(kind), data))
    except InvalidPayload as exc:
        out.dead.append(DeadLetter(topic, exc.reason, exc.detail, payload, device_id))
    return out


def decode_owntracks(
    topic: str, device_id: str, payload: bytes, now: datetime, limits: DecodeLimits
) -> Decoded:
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
                out.events.append(
                    DeviceEvent(device_id, fix.ts, kind_, {"batt": fix.batt, "source": "owntracks"})
                )
        elif kind == "lwt":
            out.events.append(DeviceEvent(device_id, now, EventType.CONNECTION_LOST, {"source": "owntracks"}))
        else:
            # OwnTracks also sends transition/waypoint/card messages: recorded, not used.
            raise InvalidPayload("unsupported_owntracks_type", f"_type {str(kind)[:40]!r}")
    except InvalidPayload as exc:
        out.dead.append(DeadLetter(topic, exc.reason, exc.detail, payload, device_id))
    return out
