"""Dead letters are bounded: one row per message, a truncated payload with its hash, a global budget."""

from __future__ import annotations

import hashlib

from emon.deadletters import DeadLetterBudget, DeadLetterPolicy, row_for
from emon.fix import DeadLetter


def letters(n: int, device: str | None = "tag-1") -> list[DeadLetter]:
    return [
        DeadLetter("emon/v1/fix/tag-1", "bad_coordinates", f"[{i}] lat out of range", b"{}", device)
        for i in range(n)
    ]


def test_one_row_per_message_whatever_the_number_of_bad_elements() -> None:
    payload = b"[" + b",".join([b'{"lat": 99}'] * 6_000) + b"]"
    # The decoder keeps the first five reasons and counts the rest.
    row = row_for("emon/v1/fix/tag-1", payload, letters(5), payload_bytes=2_048, more=5_995)
    assert row.bad_elements == 6_000
    assert row.reasons == ("bad_coordinates",) * 5
    assert row.detail.splitlines()[0] == "bad_coordinates: [0] lat out of range"
    assert row.detail.splitlines()[-1] == "… and 5995 more"
    assert row.payload == payload[:2_048]
    assert (row.payload_len, row.payload_sha256) == (len(payload), hashlib.sha256(payload).digest())


def test_hostile_topic_and_device_id_are_made_storable() -> None:
    row = row_for("emon/v1/fix/\u0000\ud800", b"x", letters(1, "\u0000"), payload_bytes=10)
    assert "\u0000" not in row.topic and row.topic.encode("utf-8")
    assert row.device_id == "\ufffd"


def size(row: object) -> int:
    return row.size  # type: ignore[attr-defined, no-any-return]


def budget(**policy: int) -> DeadLetterBudget:
    return DeadLetterBudget(DeadLetterPolicy(**policy))  # type: ignore[arg-type]


def test_rows_per_minute_are_global_and_reset_each_minute() -> None:
    b = budget(rows_per_min=3)
    # Different topics and devices draw on the same budget: inventing ids does not get around it.
    rows = [row_for(f"emon/v1/fix/rand-{i}", b"x", letters(1, f"rand-{i}"), 2_048) for i in range(5)]
    assert [b.admit(size(r), now=100.0 + i) for i, r in enumerate(rows)] == [True, True, True, False, False]
    assert b.admit(size(rows[0]), now=160.0)  # a new minute


def test_bytes_per_minute_and_the_total_cap() -> None:
    row = row_for("t", b"x" * 1_000, letters(1), 2_048)
    b = budget(bytes_per_min=row.size * 2, rows_per_min=100)
    assert [b.admit(row.size, 0.0), b.admit(row.size, 1.0), b.admit(row.size, 2.0)] == [True, True, False]
    capped = budget(max_total_bytes=row.size * 3, rows_per_min=100)
    capped.total_bytes = row.size * 2  # as measured
    assert capped.admit(row.size, 0.0)
    assert capped.full and not capped.admit(row.size, 70.0)  # a new minute does not lift the cap
    capped.total_bytes = 0  # retention deleted rows; the next measurement says so
    assert capped.admit(row.size, 71.0)
