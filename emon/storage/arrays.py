"""Columns of a batch encoded as PostgreSQL binary arrays by emon itself, a column at a time.

psycopg encodes a list parameter element by element in Python (scanning the list twice first to pick the
element type): at 1,000 fixes a batch that was most of storing's client CPU. Here each column type has
its encoder chosen once, the elements go through C functions (``struct``, ``map``, ``bytes.join``), and
the result reaches psycopg as one already-encoded value whose dumper only names the array type.

Binary array layout (PostgreSQL's ``array_send``): dimensions, has-nulls flag, element type, then per
dimension its size and lower bound, then per element its length (-1 for NULL) and its bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import postgres
from psycopg.adapt import Buffer, Dumper, PyFormat
from psycopg.pq import Format

_HEAD = struct.Struct(">iiiii").pack  # one dimension: ndim, hasnull, element oid, size, lower bound
_EMPTY = struct.Struct(">iii").pack  # no dimension
_I32 = struct.Struct(">i").pack
_F8 = struct.Struct(">d").pack
_I8 = struct.Struct(">q").pack
_LEN_F8 = struct.Struct(">id").pack
_LEN8 = _I32(8)
_NULL = _I32(-1)
# psycopg's own (C) encoder of a UTC datetime: microseconds since 2000-01-01 as a big-endian int8.
_TIMESTAMPTZ = psycopg.adapters.get_dumper(datetime, PyFormat.BINARY)(datetime).dump

_TEXT, _FLOAT8, _INT8, _TSTZ, _BYTEA = (
    postgres.types[n].oid for n in ("text", "float8", "int8", "timestamptz", "bytea")
)


class Array(bytes):
    """A binary array of the element type ``ELEMENT`` (an oid)."""

    ELEMENT = 0


class TextArray(Array):
    ELEMENT = _TEXT


class Float8Array(Array):
    ELEMENT = _FLOAT8


class Int8Array(Array):
    ELEMENT = _INT8


class TimestamptzArray(Array):
    ELEMENT = _TSTZ


class ByteaArray(Array):
    ELEMENT = _BYTEA


def _head(n: int, hasnull: bool, element: int) -> bytes:
    return _HEAD(1, int(hasnull), element, n, 1) if n else _EMPTY(0, 0, element)


def texts(values: Sequence[str | None]) -> TextArray:
    """UTF-8, as the emon schema's connections use (a string that cannot be encoded raises
    ``UnicodeEncodeError``: content, like psycopg's own). A ``StrEnum`` member is its value."""
    n = len(values)
    try:
        # No NULL looked for first (a pass comparing every str with None): a None stops the encoding.
        encoded = list(map(str.encode, values))  # type: ignore[arg-type]
    except TypeError:
        nulls = values.count(None)
        if not nulls:
            raise  # not a str
        if nulls == n:  # a column no fix of the batch fills
            return TextArray(_head(n, True, _TEXT) + _NULL * n)
        body = b"".join([_NULL if v is None else _I32(len(b := v.encode())) + b for v in values])
        return TextArray(_head(n, True, _TEXT) + body)
    return TextArray(_head(n, False, _TEXT) + _prefixed(encoded))


def text_elements(values: Iterable[str]) -> dict[str | None, bytes]:
    """Each of a few known texts (an enum's values) as the element :func:`labels` lays out, and None
    as NULL's."""
    elements: dict[str | None, bytes] = {None: _NULL}
    for v in values:
        b = v.encode()
        elements[v] = _I32(len(b)) + b
    return elements


def labels(values: Sequence[str | None], elements: Mapping[str | None, bytes]) -> TextArray:
    """:func:`texts` of a column whose values are mostly among ``elements`` (made by
    :func:`text_elements`): each element looked up, not encoded (a quarter of the CPU). A value not
    among them (a plain str a caller built) is encoded as :func:`texts` does."""
    try:
        parts = list(map(elements.__getitem__, values))
    except KeyError:
        return texts(values)
    # Identity first: a NULL part is the very object ``elements`` holds, and no other part equals it.
    return TextArray(_head(len(values), _NULL in parts, _TEXT) + b"".join(parts))


def byteas(values: Sequence[bytes]) -> ByteaArray:
    """Byte strings, none NULL."""
    return ByteaArray(_head(len(values), False, _BYTEA) + _prefixed(values))


def _prefixed(values: Sequence[bytes]) -> bytes:
    """Variable-length elements, none NULL: each one's length, then its bytes."""
    lengths = list(map(len, values))
    # Laid out by slice assignment, then joined: a join over ``chain(zip(...))`` cost twice as much.
    parts = [b""] * (2 * len(values))
    parts[::2] = map(_LENGTHS.__getitem__ if max(lengths, default=0) < len(_LENGTHS) else _I32, lengths)
    parts[1::2] = values
    return b"".join(parts)


def float8s(values: Sequence[float | None]) -> Float8Array:
    """Doubles (an int is taken as its double)."""
    n = len(values)
    if n >= _NUMPY_FROM:
        try:
            # Packed by struct in one call, native order (numpy's conversion of a list of floats cost
            # three times as much), a None refused there: no NULL looked for first (``count(None)``
            # compares every float with None).
            doubles = struct.pack(f"{n}d", *values)
        except struct.error:  # a NULL (or not a number: the way below says which)
            pass
        else:
            return Float8Array(_head(n, False, _FLOAT8) + _elements(_F8_ELEMENTS, np.frombuffer(doubles)))
    nulls = values.count(None)
    if nulls:
        if nulls == n:  # a column no fix of the batch fills (speed, heading: most devices send neither)
            return Float8Array(_head(n, True, _FLOAT8) + _NULL * n)
        body = b"".join([_NULL if v is None else _LEN_F8(8, v) for v in values])
        return Float8Array(_head(n, True, _FLOAT8) + body)
    return Float8Array(_head(n, False, _FLOAT8) + _fixed8(map(_F8, values), n))


def int8s(values: Sequence[int]) -> Int8Array:
    """Raises :class:`psycopg.DataError` (content) for an int outside int8, as PostgreSQL would, or for
    a value that is not an int (never truncated)."""
    n = len(values)
    try:
        if n >= _NUMPY_FROM:  # packed as the doubles are (see float8s)
            ints = np.frombuffer(struct.pack(f"{n}q", *values), dtype=np.int64)
            return Int8Array(_head(n, False, _INT8) + _elements(_I8_ELEMENTS, ints))
        return Int8Array(_head(n, False, _INT8) + _fixed8(map(_I8, values), n))
    except struct.error as exc:
        raise psycopg.DataError(f"bigint out of range: {exc}") from exc


def timestamptzs(values: Sequence[datetime]) -> TimestamptzArray:
    """Timezone-aware datetimes (a ``Fix`` holds UTC ones). A naive one is content PostgreSQL would not
    take (:class:`psycopg.DataError`), not a ``TypeError`` a storing loop would retry for ever."""
    try:
        return TimestamptzArray(
            _head(len(values), False, _TSTZ) + _fixed8(map(_TIMESTAMPTZ, values), len(values))
        )
    except TypeError as exc:
        raise psycopg.DataError(f"timestamptz needs a timezone-aware datetime: {exc}") from exc


# Eight-byte numbers none of which is NULL: each element is its length (8) and its big-endian value,
# laid out by numpy from the packed column in one C loop (struct.pack per element and a join cost three
# times as much, and there are up to seven such columns per fix) — from ``_NUMPY_FROM`` values on:
# below, numpy's few microseconds a call cost more than they save.
_NUMPY_FROM = 32
_F8_ELEMENTS = np.dtype([("length", ">i4"), ("value", ">f8")])
_I8_ELEMENTS = np.dtype([("length", ">i4"), ("value", ">i8")])
# The length prefix of a text element, made once for the usual lengths (device ids are at most 64).
_LENGTHS = [_I32(i) for i in range(256)]


def _elements(dtype: np.dtype[Any], values: Sequence[Any] | NDArray[Any]) -> bytes:
    out = np.empty(len(values), dtype=dtype)
    out["length"] = 8
    out["value"] = values
    return out.tobytes()


def _fixed8(items: Any, n: int) -> bytes:
    """Eight-byte elements, none NULL: each one's length prefix is the same four bytes."""
    return _LEN8 + _LEN8.join(items) if n else b""


class _ArrayDumper(Dumper):
    """Passes an :class:`Array` through, typed as the array of its element type."""

    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer | None:
        assert isinstance(obj, Array)
        return obj


def _register() -> None:
    """Dumpers on psycopg's global adapters, which every connection starts from: only for the classes
    above, so nothing else changes."""
    for cls in (TextArray, Float8Array, Int8Array, TimestamptzArray, ByteaArray):
        info = postgres.types.get(cls.ELEMENT)
        assert info is not None
        dumper = type(f"_{cls.__name__}Dumper", (_ArrayDumper,), {"oid": info.array_oid})
        psycopg.adapters.register_dumper(cls, dumper)


_register()
