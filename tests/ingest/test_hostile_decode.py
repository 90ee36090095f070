"""Hostile payloads meet explicit limits before any work is done, and nothing PostgreSQL cannot hold
leaves the decoder (table-driven: bytes in → fixes, events and reasons out)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from emon.deadletters import clean_text
from emon.errors import InvalidPayload
from emon.fix import EventType
from emon.ingest.decode import DecodeLimits, check_data, decode_event, decode_fixes, decode_owntracks, prescan

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIM = DecodeLimits()
GOOD = {"ts": "2026-11-25T12:59:00+01:00", "lat": 52.1, "lon": 5.1, "acc": 12}


def reasons_for_fix(raw: bytes, limits: DecodeLimits = LIM) -> tuple[int, list[str]]:
    out = decode_fixes("emon/v1/fix/tag-1", "tag-1", raw, NOW, limits)
    return len(out.fixes), [d.reason for d in out.dead]


@pytest.mark.parametrize(
    ("raw", "stored", "reasons"),
    [
        (b"[" * 3000 + b"]" * 3000, 0, ["too_deep"]),  # the issue's first poison: RecursionError before
        (b"{" * 5000, 0, ["too_deep"]),  # unbalanced: refused on depth, not parsed
        (b'{"a":' * 9 + b"1" + b"}" * 9, 0, ["too_deep"]),
        (b"[" * 8 + b"]" * 8, 0, ["not_an_object"]),  # depth 8 is allowed: decoded, then judged
        (b"[" + b"0," * 60_000 + b"0]", 0, ["too_many_elements"]),
        (json.dumps({**GOOD, "note": "x" * 2000}).encode(), 0, ["string_too_long"]),
        (b'["\xed\xa0\x80"]', 0, ["invalid_utf8"]),  # a lone surrogate as UTF-8 bytes
        (b'{"ts": "\\ud800", "lat": 1, "lon": 1, "acc": 1}', 0, ["invalid_json"]),  # as an escape
        (b'{"ts": 1, "lat": 1e400, "lon": 1, "acc": 1}', 0, ["invalid_json"]),  # out of float range
        (json.dumps({**GOOD, "ts": "2026-11-25T12:00:00\u0000Z"}).encode(), 0, ["bad_timestamp"]),
        (json.dumps({**GOOD, "seq": 2**70}).encode(), 0, ["bad_field"]),
        (json.dumps([GOOD, {**GOOD, "lat": 91}]).encode(), 1, ["bad_coordinates"]),
    ],
)
def test_limits_before_work(raw: bytes, stored: int, reasons: list[str]) -> None:
    assert reasons_for_fix(raw) == (stored, reasons)


def test_brackets_and_quotes_inside_strings_are_not_structure() -> None:
    # Escaped quotes and backslashes are paired as a JSON parser pairs them: the brackets below are
    # text, so depth stays 1 and the message is judged on its fields.
    lim = DecodeLimits(max_string=4_000)
    note = '\\"' + "[" * 50 + "\\\\" + "{" * 50
    raw = (
        '{"ts": "2026-11-25T12:59:00+01:00", "lat": 52.1, "lon": 5.1, "acc": 12, "note": "' + note + '"}'
    ).encode()
    assert reasons_for_fix(raw, lim) == (1, [])
    # ... and a string that *looks* closed by an escaped quote does not hide real nesting.
    raw = b'["\\"", ' + b"[" * 20 + b"]" * 20 + b"]"
    assert reasons_for_fix(raw, lim) == (0, ["too_deep"])


def test_a_large_valid_batch_passes_the_limits() -> None:
    batch = json.dumps([{**GOOD, "seq": i} for i in range(1_500)]).encode()  # ≈ 110 KB, depth 2
    prescan(batch, LIM)
    assert reasons_for_fix(batch) == (1_500, [])


def test_bad_elements_past_the_first_five_are_counted_not_listed() -> None:
    out = decode_fixes(
        "emon/v1/fix/tag-1", "tag-1", json.dumps([{"lat": 99}] * 6_000 + [GOOD]).encode(), NOW, LIM
    )
    assert len(out.fixes) == 1 and len(out.dead) == 5 and out.more_dead == {"missing_field": 5_995}


def test_the_issues_event_poison_keeps_the_event_and_records_the_message() -> None:
    raw = b'{"type":"battery_low","ts":"2026-11-25T11:59:00Z","note":"a\\u0000b"}'
    out = decode_event("emon/v1/event/tag-1", "tag-1", raw, NOW, LIM)
    (event,) = out.events
    assert (event.type, event.data) == (EventType.BATTERY_LOW, {"invalid_data": "bad_text"})
    (dead,) = out.dead
    assert (dead.reason, dead.payload) == ("bad_text", raw)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"note": "fine", "n": [1, 2.5, None, True, {"k": "v"}]}, None),
        ({"note": "a\u0000b"}, "bad_text"),
        ({"a\u0000": 1}, "bad_text"),
        ({"note": "\ud800"}, "bad_text"),
        ({"n": 2**64}, "number_out_of_range"),
        ({"n": -(2**63)}, None),
        ({"note": "x" * 1025}, "string_too_long"),
        ({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}, "too_deep"),
    ],
)
def test_event_data_is_storable_as_jsonb(data: dict[str, object], reason: str | None) -> None:
    if reason is None:
        check_data(data, LIM)
    else:
        with pytest.raises(InvalidPayload) as err:
            check_data(data, LIM)
        assert err.value.reason == reason


def test_owntracks_is_limited_too() -> None:
    out = decode_owntracks("owntracks/a/b", "phone-1", b"[" * 2000 + b"]" * 2000, NOW, LIM)
    assert [d.reason for d in out.dead] == ["too_deep"]


@pytest.mark.parametrize(
    ("text", "clean"),
    [("plain", "plain"), ("a\u0000b", "a\ufffdb"), ("x\ud800y", "x?y"), ("é" * 20, "é" * 10)],
)
def test_clean_text(text: str, clean: str) -> None:
    assert clean_text(text, 10) == clean
