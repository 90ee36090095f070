"""The durable record in PostgreSQL: devices, fixes, device events, dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from emon.access import Role
from emon.device import Device, DeviceKind
from emon.errors import StorageError
from emon.fix import DeadLetter, DeviceEvent, EventType, Fix, FixSource
from emon.storage.postgres import Database
from emon.storage.users import UserRecords

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

    # fixes ---------------------------------------------------------------------------------
    async def insert_fixes(self, fixes: Sequence[Fix]) -> list[Fix]:
        """Store a batch; return the fixes that were new (duplicates on (device, ts, seq) are skipped)."""
        if not fixes:
            return []
        try:
            async with self.db.pool.connection() as conn, conn.transaction():
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
                    f"INSERT INTO fixes ({_FIX_COLUMNS}) SELECT DISTINCT ON (device_id, ts, seq) {_FIX_COLUMNS} "
                    "FROM fix_stage ON CONFLICT DO NOTHING RETURNING device_id, ts, seq"
                )
                new = {(r[0], r[1], r[2]) for r in await cur.fetchall()}
        except psycopg.Error as exc:
            raise StorageError(f"storing {len(fixes)} fixes failed: {exc}") from exc
        out, seen = [], set()
        for f in fixes:
            key = f.key
            if key in new and key not in seen:
                seen.add(key)
                out.append(f)
        return out

    async def track(self, device_id: str, start: datetime, end: datetime, limit: int) -> list[Fix]:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_FIX_COLUMNS} FROM fixes WHERE device_id = %s AND ts >= %s AND ts <= %s "
                "ORDER BY ts, seq LIMIT %s",
                (device_id, start, end, limit),
            )
            return [_fix_from_row(r) for r in await cur.fetchall()]

    async def clock(self) -> datetime:
        """PostgreSQL's clock now (UTC): later than every row committed before this call, earlier than
        every row stored after it. The pipeline stamps each stored batch with it (the evaluation
        watermark), so the database's own clock decides what was stored before what."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute("SELECT clock_timestamp()")
            row = await cur.fetchone()
            assert row is not None
            return row[0]  # type: ignore[no-any-return]

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

    async def count_fixes(self, device_prefix: str = "") -> int:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) FROM fixes WHERE device_id LIKE %s", (device_prefix + "%",)
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0

    # events and dead letters ---------------------------------------------------------------
    async def insert_events(self, events: Sequence[DeviceEvent]) -> list[DeviceEvent]:
        """Store device events; return those that were new."""
        out: list[DeviceEvent] = []
        if not events:
            return out
        async with self.db.pool.connection() as conn, conn.transaction():
            for e in events:
                cur = await conn.execute(
                    "INSERT INTO device_events (device_id, ts, type, data) VALUES (%s, %s, %s, %s) "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    (e.device_id, e.ts, e.type.value, Jsonb(e.data)),
                )
                if await cur.fetchone() is not None:
                    out.append(e)
        return out

    async def insert_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        async with self.db.pool.connection() as conn, conn.transaction(), conn.cursor().copy(
            "COPY dead_letters (topic, device_id, reason, detail, payload) FROM STDIN"
        ) as cp:
            for d in letters:
                await cp.write_row((d.topic, d.device_id, d.reason, d.detail, d.payload))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT topic, reason, detail, payload, device_id FROM dead_letters ORDER BY id DESC LIMIT %s",
                (limit,),
            )
            return [DeadLetter(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in await cur.fetchall()]

    # tokens --------------------------------------------------------------------------------
    async def add_token(self, token_sha256: str, name: str, role: Role) -> None:
        """Kept for the deprecated ``POST /tokens`` route; tokens live in :mod:`emon.storage.users`."""
        await UserRecords(self.db).add_legacy_token(token_sha256, name, role)


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
