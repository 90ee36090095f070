"""The typed fast path for fix messages (issue #14) changes no outcome: where msgspec's typed decoding
differs from decoding into plain JSON values (duplicate keys, integers beyond 64 bits, big floats, ``-0``,
unknown fields, …) the message gets exactly the fixes, reasons and details it got before."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from emon.fix import Fix, FixSource, checked_fix
from emon.ingest import decode
from emon.ingest.decode import DecodeLimits, decode_fixes, typed_fixes

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LIM = DecodeLimits()
TS = b'"ts":"2026-11-25T11:59:00Z"'


def outcome(raw: bytes) -> tuple[list[tuple[float, float, float, int | None]], list[tuple[str, str]]]:
    out = decode_fixes("emon/v1/fix/tag-1", "tag-1", raw, NOW, LIM)
    return (
        [(f.lat, f.lon, f.acc_m, f.seq) for f in out.fixes],
        [(d.reason, d.detail) for d in out.dead],
    )


def fix(body: bytes) -> bytes:
    return b"{" + TS + b"," + body + b"}"


OK = [(52.1, 5.1, 8.0, None)]


@pytest.mark.parametrize(
    ("raw", "fixes", "dead"),
    [
        # Duplicate keys: the last one counts, as in a JSON object decoded to a dict, whatever the first.
        (fix(b'"lat":"x","lat":52.1,"lon":5.1,"acc":8'), OK, []),
        (
            fix(b'"lat":52.1,"lat":95,"lon":5.1,"acc":8'),
            [],
            [("bad_coordinates", "lat 95.0 outside -90..90")],
        ),
        (
            fix(b'"lat":52.1,"lon":5.1,"acc":8,"ts":null'),
            [],
            [("bad_timestamp", "ts must be RFC 3339 or Unix seconds")],
        ),
        # Fields outside the contract are ignored, whatever they hold, if it is JSON. (msgspec skips
        # unknown fields of a struct without checking their numbers or UTF-8: the fast path takes none.)
        (fix(b'"lat":52.1,"lon":5.1,"acc":8,"note":"a\\u0000b","n":1e308'), OK, []),
        (
            fix(b'"lat":52.1,"lon":5.1,"acc":8,"n":1e400'),
            [],
            [("invalid_json", "Number out of range - at `$[...]`")],
        ),
        (
            fix(b'"lat":52.1,"lon":5.1,"acc":8,"note":"\xff"'),
            [],
            [("invalid_utf8", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte")],
        ),
        # Integers beyond 64 bits: typed decoding makes them floats; the reason stays "out of range".
        (fix(b'"lat":%d,"lon":5.1,"acc":8' % 2**70), [], [("bad_coordinates", "lat is out of range")]),
        (fix(b'"lat":52.1,"lon":5.1,"acc":%d' % 2**64), [], [("bad_accuracy", "acc is out of range")]),
        (
            fix(b'"lat":52.1,"lon":5.1,"acc":8,"seq":%d' % 2**64),
            [],
            [("bad_field", "seq must be a non-negative integer")],
        ),
        (
            fix(b'"lat":52.1,"lon":5.1,"acc":8,"seq":%d' % 2**62),
            [],
            [("bad_field", "seq must be a non-negative integer")],
        ),
        (fix(b'"lat":52.1,"lon":5.1,"acc":8,"seq":%d' % (2**62 - 1)), [(52.1, 5.1, 8.0, 2**62 - 1)], []),
        (
            fix(b'"lat":52.1,"lon":5.1,"acc":8,"seq":1.0'),
            [],
            [("bad_field", "seq must be a non-negative integer")],
        ),
        # Big floats, and numbers JSON cannot hold.
        (fix(b'"lat":1e308,"lon":5.1,"acc":8'), [], [("bad_coordinates", "lat 1e+308 outside -90..90")]),
        (
            fix(b'"lat":52.1,"lon":5.1,"acc":1e400'),
            [],
            [("invalid_json", "Number out of range - at `$[...]`")],
        ),
        (
            fix(b'"lat":NaN,"lon":5.1,"acc":8'),
            [],
            [("invalid_json", "JSON is malformed: invalid character (byte 35)")],
        ),
        (fix(b'"lat":true,"lon":5.1,"acc":8'), [], [("bad_coordinates", "lat must be a finite number")]),
        (
            fix(b'"lat":52.1,"lon":5.1,"acc":8,"src":"GNSS"'),
            [],
            [("bad_field", "src must be one of ['gnss', 'wifi', 'cell']")],
        ),
        # Bytes around the document.
        (
            b"\xef\xbb\xbf" + fix(b'"lat":52.1,"lon":5.1,"acc":8'),
            [],
            [("invalid_json", "JSON is malformed: invalid character (byte 0)")],
        ),
        (
            fix(b'"lat":52.1,"lon":5.1,"acc":8') + b" x",
            [],
            [("invalid_json", "JSON is malformed: trailing characters (byte 60)")],
        ),
        (fix(b'"lat":52.1,"lon":5.1,"acc":8') + b" \r\n\t", OK, []),
        # A batch: the good fixes kept, the bad one recorded with its index.
        (
            b"[" + fix(b'"lat":52.1,"lon":5.1,"acc":8') + b"," + fix(b'"lat":52.1,"lon":5.1,"acc":-1') + b"]",
            OK,
            [("bad_accuracy", "[1] acc -1.0 is negative")],
        ),
        (b"[]", [], [("empty_batch", "an empty array of fixes")]),
        (
            b"["
            + b",".join([fix(b'"lat":52.1,"lon":5.1,"acc":8')] * 2 + [fix(b'"lat":52.1,"lon":5.1,"acc":-1')])
            + b","
            + b",".join([fix(b'"lat":52.1,"lon":5.1,"acc":8'), fix(b'"lat":52.1,"lon":5.1,"acc":8,"seq":-2')])
            + b"]",
            OK * 3,
            [
                ("bad_accuracy", "[2] acc -1.0 is negative"),
                ("bad_field", "[4] seq must be a non-negative integer"),
            ],
        ),
    ],
)
def test_where_typed_decoding_differs_the_outcome_does_not(
    raw: bytes, fixes: list[tuple[float, float, float, int | None]], dead: list[tuple[str, str]]
) -> None:
    assert outcome(raw) == (fixes, dead)


@pytest.mark.parametrize(("number", "negative"), [(b"-0", False), (b"-0.0", True), (b"0", False)])
def test_minus_zero_keeps_its_sign_only_as_a_float(number: bytes, negative: bool) -> None:
    # A JSON integer -0 is the integer 0, and float(0) is +0.0; the float -0.0 stays -0.0.
    (f,) = decode_fixes(
        "t", "tag-1", fix(b'"lat":%s,"lon":%s,"acc":%s' % (number, number, number)), NOW, LIM
    ).fixes
    assert [math.copysign(1.0, v) < 0 for v in (f.lat, f.lon, f.acc_m)] == [negative] * 3


@pytest.mark.parametrize(
    ("ts", "accepted"),
    [
        (NOW + LIM.max_future, True),
        (NOW + LIM.max_future + timedelta(microseconds=1), False),
        (NOW - decode.MAX_PAST, True),
        (NOW - decode.MAX_PAST - timedelta(microseconds=1), False),
    ],
)
def test_the_time_window_is_inclusive_to_the_microsecond(ts: datetime, accepted: bool) -> None:
    for value in (ts.isoformat(), ts.timestamp()):
        raw = json.dumps({"ts": value, "lat": 52.1, "lon": 5.1, "acc": 8}).encode()
        out = decode_fixes("t", "tag-1", raw, NOW, LIM)
        assert (len(out.fixes), len(out.dead)) == ((1, 0) if accepted else (0, 1))


def _random_payload(rng: random.Random) -> bytes:
    def pick(good: list[object], bad: list[object]) -> object:
        return rng.choice(good if rng.random() < 0.85 else bad)

    def one() -> dict[str, object]:
        fields: dict[str, object] = {
            "ts": pick(
                [
                    NOW.timestamp() - rng.uniform(-300, 4000),
                    "2026-11-25T12:59:00+01:00",
                    int(NOW.timestamp()),
                ],
                [NOW.timestamp() + 301, "2026-11-25T12:00:00", 2**64, "2026-11-25T12:00:00\u0000Z"],
            ),
            "lat": pick([52.1, -90, 90, -0.0, 0], [90.5, "52", None, 2**63, True]),
            "lon": pick([5.1, 180, -180], [-180.1, True, 1e308]),
            "acc": pick([8, 0, 100_000, 12.5], [100_000.5, -1, 2**64]),
        }
        for key, good, bad in (
            ("seq", [0, 2**62 - 1, None], [2**62, -1, 1.5, False]),
            ("batt", [0, 100, 55.5, None], [100.1, -1]),
            ("src", ["gnss", "wifi", "cell", None], ["sat", 1]),
            ("spd", [0, 400, 1.5], [401, -0.5]),
            ("hdg", [0, 360, 359.9], [360.5, -1]),
            ("note", ["x"], ["a\u0000"]),
        ):
            if rng.random() < 0.4:
                fields[key] = pick(good, bad)
        if rng.random() < 0.1:
            del fields[rng.choice(list(fields))]
        return fields

    doc: object = one() if rng.random() < 0.6 else [one() for _ in range(rng.randint(0, 4))]
    return json.dumps(doc).encode()


def _everything(out: decode.Decoded) -> tuple[list[str], list[tuple[str, str]], dict[str, int]]:
    return [repr(f) for f in out.fixes], [(d.reason, d.detail) for d in out.dead], out.more_dead


def test_the_fast_path_accepts_only_what_the_general_path_accepts_with_the_same_values() -> None:
    rng = random.Random(14)
    complete = partial = 0
    for _ in range(3_000):
        raw = _random_payload(rng)
        general = decode._general_fixes("t", "tag-1", raw, NOW, LIM, [])
        typed = typed_fixes("tag-1", raw, NOW, LIM)
        if typed is not None:
            complete += typed.complete
            partial += bool(typed.fixes) and not typed.complete
            n = len(typed.fixes)
            assert [repr(f) for f in typed.fixes] == [repr(f) for f in general.fixes[:n]]
            assert not typed.complete or (not general.dead and n == len(general.fixes))
        assert _everything(decode_fixes("t", "tag-1", raw, NOW, LIM)) == _everything(general)
    # The random payloads must reach both ways out of the fast path, or this proves nothing.
    assert complete > 400 and partial > 20


def test_checked_fix_is_the_fix_the_constructor_makes() -> None:
    args = ("tag-1", NOW, 52.1, 5.1, 8.0, 7, 55.0, FixSource.GNSS, 1.5, 90.0)
    made, checked = Fix(*args), checked_fix(*args)
    assert type(checked) is Fix and checked == made and hash(checked) == hash(made)
    assert repr(checked) == repr(made)
    with pytest.raises(AttributeError):
        checked.lat = 0.0  # type: ignore[misc]
