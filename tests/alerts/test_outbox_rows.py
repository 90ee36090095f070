"""The outbox's multi-row statements on the real PostgreSQL: rows added in one statement wake the delivery
workers only when a row was added, and a round of delivery attempts is recorded in one statement exactly
as one statement per attempt recorded it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from emon.storage import alerts as st
from emon.storage.postgres import Database

pytestmark = pytest.mark.integration
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHANNEL = "t_outbox_rows"


def _command(n: int, *, due: datetime | None = None) -> st.Delivery:
    """A device command: an outbox row without an alert."""
    return st.Delivery(
        f"00000000-0000-5000-8000-{n:012d}",
        None,
        "command",
        f"emon/v1/cmd/tag-{n}",
        "locate",
        b'{"cmd":"locate"}',
        next_attempt_at=due,
        case_id="case-1",
        reason="bench",
    )


async def _add(db: Database, rows: list[st.Delivery], channel: str | None = CHANNEL) -> int:
    async with db.pool.connection() as conn, conn.transaction():
        return await st.add_deliveries(conn, [(d, T) for d in rows], channel)


async def test_rows_added_notify_at_commit_and_a_replay_does_not(db: Database) -> None:
    notes = db.notifications(CHANNEL)
    try:
        assert await anext(notes) is None  # LISTEN holds
        assert await _add(db, [_command(1), _command(2), _command(1)]) == 2  # the repeated id: skipped
        async with asyncio.timeout(5.0):
            assert await anext(notes) == ""
        assert await _add(db, [_command(2), _command(1)]) == 0  # a replay adds nothing, wakes nobody
        assert await _add(db, [_command(3)], channel=None) == 1  # the caller NOTIFYs (or not) itself
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await anext(notes)
    finally:
        await notes.aclose()
    async with db.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT delivery_id::text, state, next_attempt_at, created_at, case_id, reason FROM alert_outbox"
            " ORDER BY delivery_id"
        )
        assert await cur.fetchall() == [
            (_command(n).delivery_id, "pending", T, T, "case-1", "bench") for n in (1, 2, 3)
        ]


async def test_a_round_of_attempts_is_recorded_in_order_with_each_rows_next_state(db: Database) -> None:
    rows = [_command(n) for n in (1, 2, 3)]
    await _add(db, rows)
    now = T + timedelta(seconds=3)
    retry = now + timedelta(seconds=2)
    async with db.pool.connection() as conn, conn.transaction():
        await st.record_attempts(
            conn,
            [
                st.Attempt(rows[2].delivery_id, False, 0.25, "refused " + "x" * 3000, "pending", retry, True),
                st.Attempt(rows[0].delivery_id, True, 0.01, "ok", "delivered", now, False),
                st.Attempt(rows[1].delivery_id, True, 0.02, "ok", "sent", retry, False),
            ],
            now,
        )
    async with db.pool.connection() as conn, conn.transaction():  # a second round: the failed one, now ok
        await st.record_attempts(
            conn, [st.Attempt(rows[2].delivery_id, True, 0.03, "ok", "delivered", retry, True)], retry
        )
    async with db.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT delivery_id::text, at, ok, latency_s, length(detail) FROM alert_delivery_attempts ORDER BY id"
        )
        assert await cur.fetchall() == [
            (rows[2].delivery_id, now, False, 0.25, 2000),
            (rows[0].delivery_id, now, True, 0.01, 2),
            (rows[1].delivery_id, now, True, 0.02, 2),
            (rows[2].delivery_id, retry, True, 0.03, 2),
        ]
        cur = await conn.execute(
            "SELECT delivery_id::text, attempts, state, next_attempt_at, first_sent_at, delivered_at,"
            " length(last_error), failing FROM alert_outbox ORDER BY delivery_id"
        )
        assert await cur.fetchall() == [
            (rows[0].delivery_id, 1, "delivered", now, now, now, None, False),
            (rows[1].delivery_id, 1, "sent", retry, now, None, None, False),
            (rows[2].delivery_id, 2, "delivered", retry, retry, retry, 2000, True),
        ]
