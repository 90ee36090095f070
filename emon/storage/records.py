"""The durable record in PostgreSQL: devices, fixes, device events, dead letters."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from emon.deadletters import ROW_OVERHEAD_BYTES, DeadLetterRow
from emon.device import Device, DeviceKind
from emon.errors import StorageError
from emon.fix import DeviceEvent, EventType, Fix, FixSource
from emon.storage.postgres import Database, translate

_FIX_COLUMNS = "device_id, ts, seq, lat, lon, acc_m, batt, src, speed_mps, heading_deg"


class Records:
    """Reads and writes of the durable record. Writes are batched: one round trip per batch."""

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
    ) -> tuple[list[Fix], list[DeviceEvent], datetime]:
        """Store a batch's fixes, events and dead letters in one transaction; return the new fixes and
        events (duplicates skipped) and PostgreSQL's clock at the end of the transaction, which is later
        than every row stored by it or before it and earlier than every row stored after it.

        Raises :class:`~emon.storage.postgres.ContentRefused` when a row's content was refused (nothing
        of the batch is stored), :class:`StorageError` for anything else (retry)."""
        try:
            async with self.db.pool.connection() as conn, conn.transaction():
                # Shared with every other storing transaction, exclusive for a reader taking its cut-off
                # (:meth:`cutoff`): rows are stamped after it is granted, so a cut-off never passes a row
                # that is not yet committed.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock_shared(hashtext('emon-store:' || current_schema()))"
                )
                await _copy_dead_letters(conn, dead)
                new_fixes = await _insert_fixes(conn, fixes)
                new_events = await _insert_events(conn, events)
                cur = await conn.execute("SELECT clock_timestamp()")
                row = await cur.fetchone()
                assert row is not None
                stored_at: datetime = row[0]
        except Exception as exc:
            raise translate(
                exc, f"storing {len(fixes)} fixes, {len(events)} events, {len(dead)} dead letters"
            ) from exc
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


async def _insert_fixes(conn: Conn, fixes: Sequence[Fix]) -> list[Fix]:
    """COPY into a staging table, then one de-duplicating INSERT; the new fixes, in input order."""
    if not fixes:
        return []
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS fix_stage (LIKE fixes INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    async with conn.cursor().copy(f"COPY fix_stage ({_FIX_COLUMNS}) FROM STDIN") as copy:
        for f in fixes:
            await copy.write_row(
                (
                    f.device_id,
                    f.ts,
                    -1 if f.seq is None else f.seq,
                    f.lat,
                    f.lon,
                    f.acc_m,
                    f.batt,
                    None if f.src is None else f.src.value,
                    f.speed_mps,
                    f.heading_deg,
                )
            )
    cur = await conn.execute(
        f"INSERT INTO fixes ({_FIX_COLUMNS}, received_at) SELECT DISTINCT ON (device_id, ts, seq) {_FIX_COLUMNS}, "
        "clock_timestamp() FROM fix_stage ON CONFLICT DO NOTHING RETURNING device_id, ts, seq"
    )
    new = {(r[0], r[1], r[2]) for r in await cur.fetchall()}
    out, seen = [], set()
    for f in fixes:
        key = f.key
        if key in new and key not in seen:
            seen.add(key)
            out.append(f)
    return out


async def _insert_events(conn: Conn, events: Sequence[DeviceEvent]) -> list[DeviceEvent]:
    """Insert device events (duplicates on (device, ts, type) skipped); the new ones."""
    out: list[DeviceEvent] = []
    for e in events:
        cur = await conn.execute(
            "INSERT INTO device_events (device_id, ts, type, data, received_at) VALUES (%s, %s, %s, %s, clock_timestamp()) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            (e.device_id, e.ts, e.type.value, Jsonb(e.data)),
        )
        if await cur.fetchone() is not None:
            out.append(e)
    return out


async def _copy_dead_letters(conn: Conn, rows: Sequence[DeadLetterRow]) -> None:
    if not rows:
        return
    async with conn.cursor().copy(
        "COPY dead_letters (topic, device_id, reason, reasons, detail, bad_elements, payload, payload_len, "
        "payload_sha256) FROM STDIN"
    ) as cp:
        for d in rows:
            await cp.write_row(
                (
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
            )


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
