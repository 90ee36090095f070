"""The fixes table: a TimescaleDB hypertable when the extension exists, else native monthly partitions.

Idempotency: a unique key on (device_id, ts, seq) with seq -1 when the device sends none, so a QoS 1
redelivery or a re-uploaded buffer is stored once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection, sql

_COLUMNS = """
    device_id   text NOT NULL,
    ts          timestamptz NOT NULL,
    seq         bigint NOT NULL DEFAULT -1,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    acc_m       real NOT NULL,
    batt        real,
    src         text,
    speed_mps   real,
    heading_deg real,
    received_at timestamptz NOT NULL DEFAULT now()
"""


async def timescale_available(conn: AsyncConnection[tuple[Any, ...]]) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    return await cur.fetchone() is not None


async def create_fixes_table(conn: AsyncConnection[tuple[Any, ...]]) -> None:
    if await timescale_available(conn):
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS fixes ({_COLUMNS}, UNIQUE (device_id, ts, seq))".encode()
        )
        await conn.execute("SELECT create_hypertable('fixes', 'ts', if_not_exists => TRUE)")
        return
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS fixes ({_COLUMNS}, UNIQUE (device_id, ts, seq)) PARTITION BY RANGE (ts)".encode()
    )
    # Fixes outside the prepared months (a tag with a wrong clock, a very late upload) are kept.
    await conn.execute("CREATE TABLE IF NOT EXISTS fixes_default PARTITION OF fixes DEFAULT")
    await ensure_partitions(conn, datetime.now(UTC), months_back=1, months_ahead=3)


async def ensure_partitions(
    conn: AsyncConnection[tuple[Any, ...]], around: datetime, *, months_back: int, months_ahead: int
) -> None:
    """Create monthly partitions around ``around`` (idempotent; no-op on a hypertable)."""
    cur = await conn.execute(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = 'fixes' AND n.nspname = current_schema()"
    )
    row = await cur.fetchone()
    if row is None or row[0] != "p":
        return
    for offset in range(-months_back, months_ahead + 1):
        start = _add_months(around.replace(day=1, hour=0, minute=0, second=0, microsecond=0), offset)
        end = _add_months(start, 1)
        name = sql.Identifier(f"fixes_{start:%Y_%m}")
        exists = await conn.execute("SELECT to_regclass(%s)", (f"fixes_{start:%Y_%m}",))
        found = await exists.fetchone()
        if found is not None and found[0] is not None:
            continue
        await conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF fixes FOR VALUES FROM ({}) TO ({})").format(
                name, sql.Literal(start), sql.Literal(end)
            )
        )


def _add_months(when: datetime, months: int) -> datetime:
    index = when.year * 12 + when.month - 1 + months
    return when.replace(year=index // 12, month=index % 12 + 1)
