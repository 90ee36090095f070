"""On the real PostgreSQL: the fix columns emon encodes as binary arrays itself store exactly what the
fixes hold (NULLs, ints given for doubles, any text), and content PostgreSQL cannot take is still
refused as content, not retried as an outage."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from emon.fix import Fix, FixSource
from emon.storage import arrays
from emon.storage.postgres import ContentRefused
from tests.storage.helpers import Store

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, 0, 123457, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


FIXES = [
    Fix("tag-1", at(0), 52.123456789012, 5.987654321098, 4.5, 1, 81.0, FixSource.GNSS, 1.25, 270.0),
    Fix("tag-1", at(1), 52, 5, 3, None, None, None, None, None),  # ints for doubles, every NULL
    Fix("tag-1", at(2), -89.5, -179.5, 0.0, 2**62 - 1, 0.5, FixSource.CELL, None, 0.0),
    Fix("tåg-ü €", at(3), 0.0, 0.0, 100_000.0, 0, None, FixSource.WIFI, 0.0, None),  # not ASCII
]


async def test_every_column_reads_back_as_stored(store: Store) -> None:
    new, _, stored_at = await store.records.store_batch(FIXES, [], [])
    assert new == FIXES and stored_at is not None
    back = await store.records.track("tag-1", at(-1), at(10), 10) + await store.records.track(
        "tåg-ü €", at(-1), at(10), 10
    )
    assert back == FIXES


async def test_duplicates_in_a_batch_and_of_stored_fixes_are_skipped_first_kept(store: Store) -> None:
    await store.records.store_batch(FIXES[:1], [], [])
    again = Fix("tag-1", at(1), 1.0, 1.0, 1.0)  # same key as FIXES[1], later in the batch
    new, _, _ = await store.records.store_batch([FIXES[0], FIXES[1], again, FIXES[2]], [], [])
    assert new == [FIXES[1], FIXES[2]]
    assert (await store.records.track("tag-1", at(1), at(1), 10)) == [FIXES[1]]


@pytest.mark.parametrize(
    "bad",
    [
        Fix("tag-1", at(5), 52.0, 5.0, 5.0, seq=2**63),  # outside int8
        Fix("tag-\udc80", at(5), 52.0, 5.0, 5.0),  # cannot be encoded as UTF-8
        Fix("tag-\x00", at(5), 52.0, 5.0, 5.0),  # PostgreSQL text holds no NUL
        Fix("tag-1", at(5), 52.0, 5.0, 5.0, speed_mps=1e300),  # outside real
    ],
)
async def test_content_postgresql_cannot_take_is_refused_and_nothing_of_the_batch_stored(
    store: Store, bad: Fix
) -> None:
    with pytest.raises(ContentRefused):
        await store.records.store_batch([FIXES[0], bad], [], [])
    assert await store.records.count_fixes() == 0


def test_an_empty_column_is_an_empty_array() -> None:
    """No dimension at all, as PostgreSQL writes an empty array (a batch has no fixes: not sent)."""
    assert arrays.float8s([]) == bytes.fromhex("00000000 00000000 000002bd")
    assert arrays.texts([]) == bytes.fromhex("00000000 00000000 00000019")


def test_a_naive_time_is_content_not_a_type_error() -> None:
    """A storing loop retries anything but content errors: a naive datetime must not stall it."""
    with pytest.raises(psycopg.DataError):
        arrays.timestamptzs([datetime(2026, 12, 1, 12, 0)])


def _reference(element: int, values: list[bytes | None]) -> bytes:
    """PostgreSQL's binary array layout written out element by element (array_send)."""
    head = struct.pack(">iiiii", 1, int(None in values), element, len(values), 1)
    return head + b"".join(
        struct.pack(">i", -1) if v is None else struct.pack(">i", len(v)) + v for v in values
    )


@pytest.mark.parametrize(
    "values",
    [
        [1.5],
        [52.1, -0.0, 1e-300, 3],
        [None, None, None],
        [None, 2.0],
        [float("nan"), float("inf")],
        [i / 7 for i in range(-50, 50)] + [2, True],  # long enough for the numpy layout
        [None] * 40,
    ],
)
def test_doubles_as_postgresql_lays_them_out(values: list[float | None]) -> None:
    """The numpy layout of a column without NULLs, the all-NULL and the mixed column: byte for byte."""
    expected = _reference(701, [None if v is None else struct.pack(">d", v) for v in values])
    assert arrays.float8s(values) == expected
    assert arrays.float8s(tuple(values)) == expected


@pytest.mark.parametrize("values", [["tag-1", "tåg-ü €", ""], [None, None], ["gnss", None], ["x" * 300]])
def test_texts_as_postgresql_lays_them_out(values: list[str | None]) -> None:
    expected = _reference(25, [None if v is None else v.encode() for v in values])
    assert arrays.texts(values) == expected


@pytest.mark.parametrize("values", [[b"\x00\xff", b"", b"packed state"], [b"1"], [b"x" * 300]])
def test_byteas_as_postgresql_lays_them_out(values: list[bytes]) -> None:
    assert arrays.byteas(values) == _reference(17, values)


async def test_a_bytea_array_reads_back_as_sent(store: Store) -> None:
    values = [b"\x00\xff\x80", b"", bytes(range(256))]
    assert await store.scalar("SELECT %s::bytea[]", arrays.byteas(values)) == values


@pytest.mark.parametrize(
    "values", [[1, -1, 2**63 - 1, -(2**63)], [True, 0], [*range(-1, 100), 2**63 - 1, -(2**63)]]
)
def test_bigints_as_postgresql_lays_them_out(values: list[int]) -> None:
    assert arrays.int8s(values) == _reference(20, [struct.pack(">q", v) for v in values])


@pytest.mark.parametrize(
    "bad", [[2**63], [1, 1.5], [-(2**63) - 1], [*range(40), 1.5], [*range(40), 2**63], [*range(40), 2**64]]
)
def test_a_bigint_column_refuses_what_int8_cannot_hold_exactly(bad: list[int]) -> None:
    """Never truncated (numpy would make 1.5 a 1): refused as content."""
    with pytest.raises(psycopg.DataError):
        arrays.int8s(bad)


async def test_a_batch_stored_again_is_all_duplicates_with_no_storing_time(store: Store) -> None:
    first, _, at = await store.records.store_batch(FIXES, [], [])
    again, _, at_again = await store.records.store_batch(FIXES, [], [])
    assert (first, again, at_again) == (FIXES, [], None) and at is not None


@pytest.mark.parametrize(
    "values",
    [
        [FixSource.GNSS, FixSource.WIFI, FixSource.CELL],
        [FixSource.GNSS, None, FixSource.CELL, None],  # NULLs among them
        [None] * 40,
        ["gnss", "wifi"],  # plain strs equal to members
        [FixSource.GNSS, "gps", None],  # a text no member holds: encoded as texts() does
    ],
)
def test_labels_as_postgresql_lays_them_out(values: list[str | None]) -> None:
    expected = _reference(25, [None if v is None else v.encode() for v in values])
    assert arrays.labels(values, arrays.text_elements(FixSource)) == expected


@pytest.mark.parametrize(
    "values",
    [
        [*(i / 3 for i in range(40)), None, 1.5],  # a NULL late in a long column
        [None, *(float(i) for i in range(40))],
        [*(float(i) for i in range(40)), float("nan"), float("-inf")],  # no NULL: NaN stays NaN
    ],
)
def test_a_long_double_column_with_nulls_or_nan_is_laid_out_exactly(values: list[float | None]) -> None:
    """struct refuses a None: the column goes the NULL-aware way, and a NaN is never taken for NULL."""
    expected = _reference(701, [None if v is None else struct.pack(">d", v) for v in values])
    assert arrays.float8s(values) == expected
