"""Fixes are stored in monthly partitions prepared ahead; a fix with an odd clock is still kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from emon.fix import Fix
from emon.storage.fixes_table import ensure_partitions
from emon.storage.postgres import Database, drop_schema
from emon.storage.records import Records
from tests.harness import PG_URL

pytestmark = pytest.mark.integration


async def test_partitions_ahead_and_a_default_for_everything_else() -> None:
    schema = f"t_parts_{uuid.uuid4().hex[:8]}"
    db = Database(PG_URL, schema)
    await db.open()
    try:
        await db.migrate()
        async with db.pool.connection() as conn, conn.transaction():
            await ensure_partitions(conn, datetime(2030, 1, 15, tzinfo=UTC), months_back=0, months_ahead=1)
            await ensure_partitions(
                conn, datetime(2030, 1, 15, tzinfo=UTC), months_back=0, months_ahead=1
            )  # idempotent
        records = Records(db)
        fixes = [
            Fix("tag", datetime(2030, 2, 3, tzinfo=UTC), 52.0, 5.0, 5.0, seq=1),
            Fix("tag", datetime(2031, 7, 1, tzinfo=UTC), 52.0, 5.0, 5.0, seq=2),  # no partition prepared
        ]
        assert len(await records.insert_fixes(fixes)) == 2
        async with db.pool.connection() as conn:
            cur = await conn.execute("SELECT tableoid::regclass::text, seq FROM fixes ORDER BY seq")
            rows = await cur.fetchall()
        assert [(name.split(".")[-1], seq) for name, seq in rows] == [
            ("fixes_2030_02", 1),
            ("fixes_default", 2),
        ]
    finally:
        await db.close()
        await drop_schema(PG_URL, schema)
