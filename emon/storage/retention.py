"""Retention: the positions of cases closed longer than a configured period are removed, except while a
case is under a legal hold (evidence in proceedings). What was removed is recorded.

Removed per case: the fixes of its devices up to its closing time (not when a device also serves a case
that is open, held or closed more recently than the period), its evaluation state and state snapshots,
and the positions in its alerts, alert history, decisions and sent messages (coordinates in explanations
and message bodies). Kept: the case, its order versions, alerts, decisions (rule, distances, times) and
device events, so the record still says what happened, but no longer where.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from emon.access import ALL_UNITS, Principal, Role
from emon.audit import Entry, Outcome
from emon.storage.audit import AuditLog
from emon.storage.postgres import Database, unbounded

log = logging.getLogger(__name__)
Conn = AsyncConnection[tuple[Any, ...]]

_NO_EVIDENCE = "CASE WHEN {c} ? 'evidence' THEN jsonb_set({c}, '{{evidence}}', '[]') ELSE {c} END"


@dataclass(frozen=True, slots=True)
class Removed:
    """What retention removed for one case (counts of rows changed)."""

    case_id: str
    closed_at: datetime
    devices: tuple[str, ...]
    kept_devices: tuple[str, ...]  # shared with a case that still needs them
    fixes: int
    snapshots: int
    alerts: int
    decisions: int
    messages: int


RETENTION = Principal("system:retention", Role.ADMIN, frozenset({ALL_UNITS}))


async def record_removal(
    conn: Conn, removed: Removed, audit: AuditLog, who: Principal, now: datetime
) -> None:
    """Record what retention removed, in the same transaction as the removal: a ``retention_log`` row and
    an audit record (action ``retention.remove``, done by ``who``) that commit together with it."""
    detail = {
        k: v
        for k, v in asdict(removed).items()
        if k in ("kept_devices", "snapshots", "alerts", "decisions", "messages")
    }
    await conn.execute(
        "INSERT INTO retention_log (case_id, closed_at, devices, fixes, events, detail) VALUES (%s, %s, %s, %s, 0, %s)",
        (removed.case_id, removed.closed_at, list(removed.devices), removed.fixes, Jsonb(detail)),
    )
    entry = Entry.of(
        who,
        now,
        "retention.remove",
        Outcome.ALLOWED,
        case_id=removed.case_id,
        detail={"devices": list(removed.devices), "fixes": removed.fixes, **detail},
    )
    await audit.append_in(conn, [entry])


async def apply_retention(
    db: Database, now: datetime, days: float, audit: AuditLog, who: Principal = RETENTION
) -> list[Removed]:
    """Remove the positions of every case closed before ``now - days`` (UTC) and not under legal hold;
    each case in its own transaction, recorded by :func:`record_removal`. Returns what was removed (cases
    with nothing left to remove are skipped)."""
    cutoff = now - timedelta(days=days)
    async with db.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT case_id, closed_at FROM cases WHERE status = 'closed' AND closed_at < %s AND NOT legal_hold "
            "ORDER BY closed_at",
            (cutoff,),
        )
        due = [(str(r[0]), r[1]) for r in await cur.fetchall()]
        await conn.commit()
    out = []
    for case_id, closed_at in due:
        removed = await _remove(db, case_id, closed_at, cutoff, audit, who, now)
        if removed is not None:
            out.append(removed)
    return out


async def _remove(
    db: Database,
    case_id: str,
    closed_at: datetime,
    cutoff: datetime,
    audit: AuditLog,
    who: Principal,
    now: datetime,
) -> Removed | None:
    async with db.pool.connection() as conn, conn.transaction():
        await unbounded(conn)
        # Re-checked under a row lock: a hold set meanwhile wins.
        cur = await conn.execute(
            "SELECT offender_device, victim_device FROM cases WHERE case_id = %s AND status = 'closed' "
            "AND NOT legal_hold FOR UPDATE",
            (case_id,),
        )
        row = await cur.fetchone()
        if row is None:
            return None
        devices = [d for d in row if d]
        cur = await conn.execute(
            "SELECT DISTINCT d FROM cases, unnest(ARRAY[offender_device, victim_device]) AS d WHERE case_id <> %s "
            "AND d = ANY (%s) AND (status = 'open' OR legal_hold OR closed_at >= %s)",
            (case_id, devices, cutoff),
        )
        kept = sorted(str(r[0]) for r in await cur.fetchall())
        purge = [d for d in devices if d not in kept]
        counts = [
            await _count(
                conn, "DELETE FROM fixes WHERE device_id = ANY (%s) AND ts <= %s", (purge, closed_at)
            ),
            await _count(conn, "DELETE FROM eval_snapshots WHERE case_id = %s", (case_id,)),
            await _count(
                conn,
                "UPDATE alerts SET offender_position = NULL, victim_position = NULL, explanation = "
                + _NO_EVIDENCE.format(c="explanation")
                + " WHERE case_id = %s AND (offender_position IS NOT NULL OR victim_position IS NOT NULL "
                "OR explanation -> 'evidence' <> '[]'::jsonb)",
                (case_id,),
            ),
            await _count(
                conn,
                "UPDATE eval_events SET explanation = "
                + _NO_EVIDENCE.format(c="explanation")
                + " WHERE case_id = %s AND explanation -> 'evidence' <> '[]'::jsonb",
                (case_id,),
            ),
            await _count(
                conn,
                "UPDATE alert_outbox SET body = ''::bytea WHERE alert_id IN (SELECT alert_id FROM alerts "
                "WHERE case_id = %s) AND state NOT IN ('pending', 'sent') AND body <> ''::bytea",
                (case_id,),
            ),
        ]
        await conn.execute(
            "UPDATE alert_history SET detail = "
            + _NO_EVIDENCE.format(c="detail")
            + " WHERE alert_id IN (SELECT alert_id FROM alerts WHERE case_id = %s)",
            (case_id,),
        )
        await conn.execute("DELETE FROM eval_state WHERE case_id = %s", (case_id,))
        if not any(counts):
            return None
        removed = Removed(case_id, closed_at, tuple(purge), tuple(kept), *counts)
        await record_removal(conn, removed, audit, who, now)
        return removed


async def _count(conn: Conn, query: str, params: tuple[Any, ...]) -> int:
    cur = await conn.execute(query.encode(), params)
    return max(cur.rowcount, 0)


async def retention_logged(db: Database, case_id: str) -> list[dict[str, Any]]:
    """The retention records of a case, oldest first."""
    async with db.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT at, closed_at, devices, fixes, detail FROM retention_log WHERE case_id = %s ORDER BY id",
            (case_id,),
        )
        return [
            {"at": r[0], "closed_at": r[1], "devices": list(r[2]), "fixes": r[3], "detail": dict(r[4])}
            for r in await cur.fetchall()
        ]


async def run_retention(db: Database, days: float, interval_s: float, audit: AuditLog) -> None:
    """Apply retention every ``interval_s`` seconds while the service runs (a background loop)."""
    from datetime import UTC

    while True:
        try:
            for r in await apply_retention(db, datetime.now(UTC), days, audit):
                log.info("retention: case %s, %d fixes removed", r.case_id, r.fixes)
        except Exception:
            log.exception("retention failed; trying again later")
        await asyncio.sleep(interval_s)
