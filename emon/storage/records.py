"""The durable record in PostgreSQL: devices, fixes, device events, dead letters."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar

import psycopg
from psycopg.types.numeric import Int8

from emon.deadletters import ROW_OVERHEAD_BYTES, DeadLetterRow
from emon.device import Device, DeviceKind
from emon.errors import StorageError
from emon.fix import DeviceEvent, EventType, Fix, FixSource
from emon.storage import arrays
from emon.storage.postgres import Database, translate

T = TypeVar("T")

_FIX_COLUMNS = "device_id, ts, seq, lat, lon, acc_m, batt, src, speed_mps, heading_deg"


class Records:
    """Reads and writes of the durable record. Writes are batched: one transaction per batch."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # devices -------------------------------------------------------------------------------
    async def add_device(self, device: Device) -> bool:
        """Register a device; False if the id (or OwnTracks topic) is already taken."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO devices (device_id, kind, owntracks_topic, report_interval_s) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING device_id",
                (device.device_id, device.kind.value, device.owntracks_topic, device.report_interval_s),
            )
            return await cur.fetchone() is not None

    async def devices(self) -> list[Device]:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT device_id, kind, owntracks_topic, report_interval_s FROM devices ORDER BY device_id"
            )
            return [Device(r[0], DeviceKind(r[1]), r[2], r[3]) for r in await cur.fetchall()]

    # one batch ---------------------------------------------------------------------------
    async def store_batch(
        self, fixes: Sequence[Fix], events: Sequence[DeviceEvent], dead: Sequence[DeadLetterRow]
    ) -> tuple[list[Fix], list[DeviceEvent], datetime | None]:
        """Store a batch's fixes, events and dead letters in one transaction, on one connection, the
        statements and the COMMIT sent together (libpq pipeline mode: 4 round trips per batch — the pool's
        liveness check, psycopg's BEGIN, the batch, the pipeline's closing sync — where separate
        statements took 9, measured with strace); return the new fixes and events (duplicates skipped)
        and their latest storing time (``received_at``, stamped by PostgreSQL's clock inside the
        transaction; None when nothing new was stored).

        A caller that stores its batches one after the other (as :class:`~emon.ingest.pipeline.Pipeline`
        does) gets storing times that follow the batch order: every row of a batch is stamped after every
        row of the batches before it, so the returned time separates the batches.

        Raises :class:`~emon.storage.postgres.ContentRefused` when a row's content was refused (nothing
        of the batch is stored), :class:`StorageError` for anything else (retry)."""
        try:
            async with self.db.pool.connection() as conn:
                async with conn.pipeline():
                    # Shared with every other storing transaction, exclusive for a reader taking its
                    # cut-off (:meth:`cutoff`): rows are stamped after it is granted, so a cut-off never
                    # passes a row that is not yet committed. First in the pipeline: the server runs the
                    # statements in the order sent.
                    await conn.execute(_LOCK_SHARED, prepare=True)
                    if dead:
                        await conn.cursor().executemany(_INSERT_DEAD_LETTER, [_dead_params(d) for d in dead])
                    # Prepared on first use on each connection (psycopg's default waits for the fifth).
                    fix_cur = (
                        await conn.execute(_INSERT_FIXES, _fix_params(fixes), prepare=True) if fixes else None
                    )
                    event_cur = await conn.execute(_INSERT_EVENTS, _event_arrays(events)) if events else None
                    await conn.commit()
                # The pipeline is synchronised and the transaction committed: the results are here.
                fix_row = await fix_cur.fetchone() if fix_cur is not None else None
                event_rows = await event_cur.fetchall() if event_cur is not None else []
        except Exception as exc:
            raise translate(
                exc, f"storing {len(fixes)} fixes, {len(events)} events, {len(dead)} dead letters"
            ) from exc
        new_fixes, fixes_at = _new_fixes(fixes, fix_row)
        new_events = _in_input_order(
            events, {(r[0], r[1], r[2]) for r in event_rows}, lambda e: (e.device_id, e.ts, e.type.value)
        )
        stored_at = max(
            chain(map(_RECEIVED_AT, event_rows), () if fixes_at is None else (fixes_at,)), default=None
        )
        return new_fixes, new_events, stored_at

    async def dead_letter_totals(self) -> tuple[int, int]:
        """Rows in the dead-letter table and the bytes they cost, as the budget counts them."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*), coalesce(sum(octet_length(payload) + octet_length(detail) "
                "+ octet_length(topic) + %s), 0) FROM dead_letters",
                (ROW_OVERHEAD_BYTES,),
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row[0]), int(row[1])

    async def prune_dead_letters(self, older_than: datetime) -> int:
        """Delete dead letters received before ``older_than`` (UTC); return how many."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM dead_letters WHERE received_at < %s", (older_than,))
            return cur.rowcount

    # fixes ---------------------------------------------------------------------------------
    async def insert_fixes(self, fixes: Sequence[Fix]) -> list[Fix]:
        """Store fixes on their own; return the new ones (duplicates on (device, ts, seq) are skipped)."""
        if not fixes:
            return []
        try:
            async with self.db.pool.connection() as conn, conn.transaction():
                return await _insert_fixes(conn, fixes)
        except psycopg.Error as exc:
            raise StorageError(f"storing {len(fixes)} fixes failed: {exc}") from exc

    async def track(self, device_id: str, start: datetime, end: datetime, limit: int) -> list[Fix]:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_FIX_COLUMNS} FROM fixes WHERE device_id = %s AND ts >= %s AND ts <= %s "
                "ORDER BY ts, seq LIMIT %s",
                (device_id, start, end, limit),
            )
            return [_fix_from_row(r) for r in await cur.fetchall()]

    async def received_after(self, since: datetime) -> tuple[list[Fix], list[DeviceEvent], datetime | None]:
        """Fixes and device events stored after ``since`` (UTC), oldest fix time first, and the latest
        storing time among them; used to evaluate again what a crash left unevaluated."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_FIX_COLUMNS}, received_at FROM fixes WHERE received_at > %s ORDER BY ts, seq",
                (since,),
            )
            rows = await cur.fetchall()
            fixes = [_fix_from_row(r) for r in rows]
            cur = await conn.execute(
                "SELECT device_id, ts, type, data, received_at FROM device_events WHERE received_at > %s "
                "ORDER BY ts",
                (since,),
            )
            event_rows = await cur.fetchall()
            events = [DeviceEvent(r[0], r[1], EventType(r[2]), dict(r[3])) for r in event_rows]
        through = max([r[-1] for r in rows] + [r[-1] for r in event_rows], default=None)
        return fixes, events, through

    async def cutoff(self) -> datetime:
        """PostgreSQL's clock at a moment when no storing transaction is open: every fix and event stored
        (by any instance) up to it is committed and visible, every later one is stamped after it."""
        async with self.db.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('emon-store:' || current_schema()))")
            cur = await conn.execute("SELECT clock_timestamp()")
            row = await cur.fetchone()
            assert row is not None
            at: datetime = row[0]
            return at

    async def received_between(
        self, after: datetime, through: datetime
    ) -> tuple[list[Fix], list[DeviceEvent]]:
        """Fixes (oldest fix time first) and device events stored in (``after``, ``through``] (UTC)."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_FIX_COLUMNS} FROM fixes WHERE received_at > %s AND received_at <= %s ORDER BY ts, seq",
                (after, through),
            )
            fixes = [_fix_from_row(r) for r in await cur.fetchall()]
            cur = await conn.execute(
                "SELECT device_id, ts, type, data FROM device_events WHERE received_at > %s AND received_at <= %s "
                "ORDER BY ts",
                (after, through),
            )
            events = [DeviceEvent(r[0], r[1], EventType(r[2]), dict(r[3])) for r in await cur.fetchall()]
        return fixes, events

    async def latest_fixes(self, device_ids: Collection[str]) -> dict[str, tuple[Fix, datetime]]:
        """The latest fix (by fix time) of each of ``device_ids`` that has one, with its storing time."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT f.{_FIX_COLUMNS.replace(', ', ', f.')}, f.received_at FROM unnest(%s::text[]) AS d(id) "
                "CROSS JOIN LATERAL (SELECT * FROM fixes WHERE device_id = d.id ORDER BY ts DESC, seq DESC LIMIT 1) f",
                (list(device_ids),),
            )
            return {str(r[0]): (_fix_from_row(r), r[-1]) for r in await cur.fetchall()}

    async def last_received(self, device_ids: Collection[str]) -> dict[str, datetime]:
        """When each of ``device_ids`` was last heard from, as far as PostgreSQL knows: the storing time
        of its latest fix or latest device event (by device time), whichever is later."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT d.id, greatest("
                "(SELECT received_at FROM fixes WHERE device_id = d.id ORDER BY ts DESC, seq DESC LIMIT 1), "
                "(SELECT received_at FROM device_events WHERE device_id = d.id ORDER BY ts DESC LIMIT 1)) "
                "FROM unnest(%s::text[]) AS d(id)",
                (list(device_ids),),
            )
            return {str(r[0]): r[1] for r in await cur.fetchall() if r[1] is not None}

    async def count_fixes(self, device_prefix: str = "") -> int:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM fixes WHERE device_id LIKE %s", (device_prefix + "%",)
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    # dead letters --------------------------------------------------------------------------
    async def dead_letters(self, limit: int = 100) -> list[DeadLetterRow]:
        """The latest dead letters, newest first."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT topic, device_id, reason, reasons, detail, bad_elements, payload, payload_len, "
                "payload_sha256 FROM dead_letters ORDER BY id DESC LIMIT %s",
                (limit,),
            )
            return [
                DeadLetterRow(
                    topic=r[0],
                    device_id=r[1],
                    reason=r[2],
                    reasons=tuple(r[3] or (r[2],)),
                    detail=r[4],
                    bad_elements=int(r[5]),
                    payload=bytes(r[6]),
                    payload_len=int(r[7] if r[7] is not None else len(r[6])),
                    payload_sha256=bytes(r[8] or b""),
                )
                for r in await cur.fetchall()
            ]


Conn = psycopg.AsyncConnection[tuple[Any, ...]]


_LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtext('emon-store:' || current_schema()))"

# One statement per table, the rows as arrays (no staging table, no COPY: COPY cannot be pipelined).
# DISTINCT ON … ORDER BY the input position: of duplicates within the batch, the first is the one stored,
# as it is the one handed on. The storing time is PostgreSQL's clock as each row is inserted.
# The fix arrays go in binary (%b): a third less client CPU than text, on a par with COPY.
# Numbers travel as float8 and take the column's type on insert (acc_m is exact: float8).
# The fixes' statement answers with one row: how many were new, their latest storing time, and only when
# some were not new (a redelivery, a re-upload, another instance's copy) the keys of the new ones; a row
# per fix cost client CPU to read and server CPU to send for the common case, where all are new.
_INSERT_FIXES = (
    "WITH new AS ("
    f"INSERT INTO fixes ({_FIX_COLUMNS}, received_at) "
    f"SELECT DISTINCT ON (device_id, ts, seq) {_FIX_COLUMNS}, clock_timestamp() "
    "FROM unnest(%b::text[], %b::timestamptz[], %b::int8[], %b::float8[], %b::float8[], %b::float8[], "
    "%b::float8[], %b::text[], %b::float8[], %b::float8[]) WITH ORDINALITY "
    f"AS u({_FIX_COLUMNS}, n) ORDER BY device_id, ts, seq, n "
    "ON CONFLICT DO NOTHING RETURNING device_id, ts, seq, received_at) "
    "SELECT count(*), max(received_at), "
    "CASE WHEN count(*) < %b THEN array_agg(device_id) END, "
    "CASE WHEN count(*) < %b THEN array_agg(ts) END, "
    "CASE WHEN count(*) < %b THEN array_agg(seq) END FROM new"
)
_INSERT_EVENTS = (
    "INSERT INTO device_events (device_id, ts, type, data, received_at) "
    "SELECT DISTINCT ON (device_id, ts, type) device_id, ts, type, data::jsonb, clock_timestamp() "
    "FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::text[]) WITH ORDINALITY "
    "AS u(device_id, ts, type, data, n) ORDER BY device_id, ts, type, n "
    "ON CONFLICT DO NOTHING RETURNING device_id, ts, type, received_at"
)
_INSERT_DEAD_LETTER = (
    "INSERT INTO dead_letters (topic, device_id, reason, reasons, detail, bad_elements, payload, "
    "payload_len, payload_sha256) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


async def _insert_fixes(conn: Conn, fixes: Sequence[Fix]) -> list[Fix]:
    """One de-duplicating INSERT; the new fixes, in input order."""
    if not fixes:
        return []
    cur = await conn.execute(_INSERT_FIXES, _fix_params(fixes))
    return _new_fixes(fixes, await cur.fetchone())[0]


def _fix_params(fixes: Sequence[Fix]) -> tuple[Any, ...]:
    """:data:`_INSERT_FIXES`'s parameters: the columns, then the batch size (an int8, always: a prepared
    statement's parameter types must not change with the size)."""
    n = Int8(len(fixes))
    return (*_fix_arrays(fixes), n, n, n)


def _new_fixes(fixes: Sequence[Fix], row: tuple[Any, ...] | None) -> tuple[list[Fix], datetime | None]:
    """The fixes :data:`_INSERT_FIXES` stored (answering ``row``), in input order, and their latest
    storing time (None when none was new)."""
    if row is None:
        return [], None
    count, stored_at, device_ids, times, seqs = row
    if count == len(fixes):  # every fix new, none repeated: the common case, without a key per fix
        return list(fixes), stored_at
    if not count:
        return [], None
    new = set(zip(device_ids, times, seqs, strict=True))
    return _in_input_order(fixes, new, lambda f: f.key), stored_at


def _fix_arrays(fixes: Sequence[Fix]) -> tuple[arrays.Array, ...]:
    """The fixes as one binary array per column, in :data:`_FIX_COLUMNS` order (see
    :mod:`emon.storage.arrays`: psycopg's own list encoding was most of storing's client CPU). A number
    may be an int (a ``Fix`` built outside the decoder): it is sent as a double. At least one fix: its
    callers send no statement for none."""
    # A column at a time, each read in a comprehension: the interpreter reads a slot there at less than
    # half the cost of ``attrgetter`` (a tuple per fix transposed by ``zip`` was a third of storing's
    # CPU), and builds no object per fix for the garbage collector to walk.
    return (
        arrays.texts([f.device_id for f in fixes]),
        arrays.timestamptzs([f.ts for f in fixes]),
        arrays.int8s([-1 if f.seq is None else f.seq for f in fixes]),
        arrays.float8s([f.lat for f in fixes]),
        arrays.float8s([f.lon for f in fixes]),
        arrays.float8s([f.acc_m for f in fixes]),
        arrays.float8s([f.batt for f in fixes]),
        arrays.labels([f.src for f in fixes], _SOURCES),  # a FixSource is a str: its value
        arrays.float8s([f.speed_mps for f in fixes]),
        arrays.float8s([f.heading_deg for f in fixes]),
    )


_RECEIVED_AT = itemgetter(3)  # of a row an INSERT returned
_SOURCES = arrays.text_elements(FixSource)


def _event_arrays(events: Sequence[DeviceEvent]) -> tuple[list[Any], ...]:
    return (
        [e.device_id for e in events],
        [e.ts for e in events],
        [e.type.value for e in events],
        [json.dumps(e.data) for e in events],
    )


def _dead_params(d: DeadLetterRow) -> tuple[Any, ...]:
    return (
        d.topic,
        d.device_id,
        d.reason,
        list(d.reasons),
        d.detail,
        d.bad_elements,
        d.payload,
        d.payload_len,
        d.payload_sha256,
    )


def _in_input_order(items: Sequence[T], new: set[Any], key: Callable[[T], Any]) -> list[T]:
    """The items whose key is in ``new`` (the rows PostgreSQL inserted), first occurrence only, in order."""
    out: list[T] = []
    seen: set[Any] = set()
    for item in items:
        k = key(item)
        if k in new and k not in seen:
            seen.add(k)
            out.append(item)
    return out


def _fix_from_row(r: tuple[Any, ...]) -> Fix:
    seq = int(r[2])
    return Fix(
        device_id=str(r[0]),
        ts=r[1],
        seq=None if seq == -1 else seq,
        lat=float(r[3]),
        lon=float(r[4]),
        acc_m=float(r[5]),
        batt=None if r[6] is None else float(r[6]),
        src=None if r[7] is None else FixSource(str(r[7])),
        speed_mps=None if r[8] is None else float(r[8]),
        heading_deg=None if r[9] is None else float(r[9]),
    )
