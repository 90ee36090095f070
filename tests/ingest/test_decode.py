"""The device contract, decoded: payloads in → fixes, events and dead-letter reasons out (table-driven)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from emon.device import Device, DeviceKind, DeviceRegistry
from emon.fix import EventType, FixSource
from emon.ingest.decode import DecodeLimits, decode_event, decode_fixes, decode_owntracks
from emon.ingest.topics import MessageKind, route

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIM = DecodeLimits()
TOPIC = "emon/v1/fix/tag-1"


def fixes(payload: object | bytes) -> tuple[list[tuple[float, float, float]], list[str]]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    out = decode_fixes(TOPIC, "tag-1", raw, NOW, LIM)
    return [(f.lat, f.lon, f.acc_m) for f in out.fixes], [d.reason for d in out.dead]


GOOD = {"ts": "2026-11-25T12:59:00+01:00", "lat": 52.1, "lon": 5.1, "acc": 12}


@pytest.mark.parametrize(
    ("payload", "fixes_out", "reasons"),
    [
        (GOOD, [(52.1, 5.1, 12.0)], []),
        ({**GOOD, "ts": NOW.timestamp() - 5}, [(52.1, 5.1, 12.0)], []),
        ({**GOOD, "ts": "2026-11-25T11:59:00Z"}, [(52.1, 5.1, 12.0)], []),
        ([GOOD, {**GOOD, "lat": 100}], [(52.1, 5.1, 12.0)], ["bad_coordinates"]),
        ([GOOD, "nope", {**GOOD, "acc": -3}], [(52.1, 5.1, 12.0)], ["not_an_object", "bad_accuracy"]),
        (b"{", [], ["invalid_json"]),
        (b'{"ts": 1, "lat": NaN, "lon": 1, "acc": 1}', [], ["invalid_json"]),
        ({**GOOD, "lat": None}, [], ["missing_field"]),
        ({k: v for k, v in GOOD.items() if k != "ts"}, [], ["missing_field"]),
        ({**GOOD, "lon": -180.5}, [], ["bad_coordinates"]),
        ({**GOOD, "lat": "52.1"}, [], ["bad_coordinates"]),
        ({**GOOD, "lat": True}, [], ["bad_coordinates"]),
        ({**GOOD, "acc": 1e9}, [], ["bad_accuracy"]),
        ({**GOOD, "ts": "2026-11-25T12:00:00"}, [], ["bad_timestamp"]),
        ({**GOOD, "ts": "yesterday"}, [], ["bad_timestamp"]),
        ({**GOOD, "ts": (NOW + timedelta(hours=1)).isoformat()}, [], ["future_timestamp"]),
        ({**GOOD, "ts": 1e20}, [], ["bad_timestamp"]),
        ({**GOOD, "ts": "2020-01-01T00:00:00Z"}, [], ["stale_timestamp"]),
        ({**GOOD, "seq": -1}, [], ["bad_field"]),
        ({**GOOD, "src": "psychic"}, [], ["bad_field"]),
        ({**GOOD, "batt": 101}, [], ["bad_field"]),
        (b" " * (LIM.max_payload_bytes + 1), [], ["oversized"]),
        ([GOOD] * 10_001, [], ["oversized"]),
    ],
)
def test_fix_payloads(
    payload: object, fixes_out: list[tuple[float, float, float]], reasons: list[str]
) -> None:
    assert fixes(payload) == (fixes_out, reasons)


def test_fix_fields_are_carried_in_utc() -> None:
    out = decode_fixes(
        TOPIC,
        "tag-1",
        json.dumps({**GOOD, "seq": 7, "batt": 55, "src": "wifi", "spd": 1.5, "hdg": 90}).encode(),
        NOW,
        LIM,
    )
    (f,) = out.fixes
    assert f.ts == datetime(2026, 11, 25, 11, 59, tzinfo=UTC) and f.ts.tzinfo is UTC
    assert (f.seq, f.batt, f.src, f.speed_mps, f.heading_deg) == (7, 55.0, FixSource.WIFI, 1.5, 90.0)


def test_a_bad_element_of_a_batch_is_kept_raw_with_its_index() -> None:
    out = decode_fixes(TOPIC, "tag-1", json.dumps([GOOD, {**GOOD, "lat": 95}]).encode(), NOW, LIM)
    (dead,) = out.dead
    assert dead.detail.startswith("[1] ") and "95" in dead.detail


@pytest.mark.parametrize(
    ("payload", "kind", "reason"),
    [
        ({"ts": NOW.isoformat(), "type": "tamper"}, EventType.TAMPER, None),
        ({"ts": NOW.isoformat(), "type": "panic", "pressed": 2}, EventType.PANIC, None),
        ({"type": "connection_lost"}, EventType.CONNECTION_LOST, None),
        ({"ts": NOW.isoformat(), "type": "teleport"}, None, "unknown_event_type"),
        ({"type": "tamper"}, None, "bad_timestamp"),
        ([1], None, "not_an_object"),
    ],
)
def test_events(payload: object, kind: EventType | None, reason: str | None) -> None:
    out = decode_event("emon/v1/event/tag-1", "tag-1", json.dumps(payload).encode(), NOW, LIM)
    assert [e.type for e in out.events] == ([kind] if kind else [])
    assert [d.reason for d in out.dead] == ([reason] if reason else [])


def test_owntracks_location_and_lwt() -> None:
    loc = {
        "_type": "location",
        "lat": 52.3,
        "lon": 4.9,
        "tst": int(NOW.timestamp()),
        "acc": 20,
        "vel": 36,
        "cog": 370,
        "batt": 64,
        "tid": "vp",
    }
    out = decode_owntracks("owntracks/anna/phone", "phone-1", json.dumps(loc).encode(), NOW, LIM)
    (f,) = out.fixes
    assert (f.lat, f.lon, f.acc_m, f.speed_mps, f.heading_deg, f.batt) == (52.3, 4.9, 20.0, 10.0, 10.0, 64.0)
    lwt = decode_owntracks("owntracks/anna/phone", "phone-1", b'{"_type": "lwt", "tst": 1}', NOW, LIM)
    assert [e.type for e in lwt.events] == [EventType.CONNECTION_LOST]
    other = decode_owntracks("owntracks/anna/phone", "phone-1", b'{"_type": "transition"}', NOW, LIM)
    assert [d.reason for d in other.dead] == ["unsupported_owntracks_type"]


def test_topics_route_to_registered_devices_only() -> None:
    reg = DeviceRegistry(
        [
            Device("tag-1", DeviceKind.ANKLE_TAG),
            Device("phone-1", DeviceKind.VICTIM_DEVICE, "owntracks/anna/phone"),
        ]
    )
    r = route("p/x/emon/v1/fix/tag-1", "p/x", reg)
    assert r is not None and (r.kind, r.device_id) == (MessageKind.FIX, "tag-1")
    r = route("owntracks/anna/phone", "", reg)
    assert r is not None and (r.kind, r.device_id) == (MessageKind.OWNTRACKS, "phone-1")
    r = route("owntracks/bob/phone", "", reg)
    assert r is not None and r.device_id is None
    assert route("emon/v1/fix/tag-1", "p/x", reg) is None
    assert route("emon/v2/fix/tag-1", "", reg) is None
    r = route("emon/v1/fix/bad id!", "", reg)
    assert r is not None and r.device_id is None
