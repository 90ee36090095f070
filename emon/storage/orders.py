"""The orders lifecycle in PostgreSQL: term watches, decisions and violation reports.

Functions over a connection the caller holds a transaction on, so a watch, its tasks and its alert
change commit together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from emon.orders.lifecycle import DecisionKind, Watch
from emon.orders.reports import ReportRow

Conn = AsyncConnection[tuple[object, ...]]

# A confirmed violation of an order: the alert types that open a "report to the prosecutor" task.
VIOLATIONS = ("exclusion_breach", "inclusion_breach", "proximity_breach", "retrospective_violation")


async def watch(conn: Conn, case_id: str, valid_until: datetime, *, lock: bool = False) -> Watch | None:
    cur = await conn.execute(
        f"SELECT reminded, decision, expired_at FROM order_watch WHERE case_id = %s AND valid_until = %s"
        f"{' FOR UPDATE' if lock else ''}".encode(),
        (case_id, valid_until),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    reminded, decision, expired_at = row
    assert isinstance(reminded, list)
    return Watch(
        case_id,
        valid_until,
        frozenset(int(x) for x in reminded),
        None if decision is None else DecisionKind(str(decision)),
        expired_at if isinstance(expired_at, datetime) else None,
    )


async def latest_watch(conn: Conn, case_id: str) -> Watch | None:
    """The watch of the case's most recent term."""
    cur = await conn.execute(
        "SELECT valid_until FROM order_watch WHERE case_id = %s ORDER BY valid_until DESC LIMIT 1", (case_id,)
    )
    row = await cur.fetchone()
    return None if row is None or not isinstance(row[0], datetime) else await watch(conn, case_id, row[0])


async def save_watch(conn: Conn, w: Watch) -> None:
    await conn.execute(
        "INSERT INTO order_watch (case_id, valid_until, reminded, decision, expired_at) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (case_id, valid_until) DO UPDATE SET reminded = excluded.reminded, "
        "decision = excluded.decision, expired_at = excluded.expired_at",
        (
            w.case_id,
            w.valid_until,
            sorted(w.reminded),
            None if w.decision is None else w.decision.value,
            w.expired_at,
        ),
    )


async def add_decision(
    conn: Conn,
    case_id: str,
    now: datetime,
    who: str,
    decision: DecisionKind,
    reason: str,
    *,
    old_until: datetime | None,
    new_until: datetime | None,
    from_version: int | None,
    to_version: int | None,
    gap: tuple[datetime, datetime] | None,
) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO order_decisions (case_id, decided_at, decided_by, decision, reason, old_until, new_until, "
            "from_version, to_version, gap_from, gap_to) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING *",
            (
                case_id,
                now,
                who,
                decision.value,
                reason,
                old_until,
                new_until,
                from_version,
                to_version,
                None if gap is None else gap[0],
                None if gap is None else gap[1],
            ),
        )
        row = await cur.fetchone()
    assert row is not None
    return decision_json(row)


def decision_json(r: dict[str, Any]) -> dict[str, Any]:
    """One ``order_decisions`` row as the API shows it (the one mapping for a new and a stored row)."""

    def t(v: datetime | None) -> str | None:
        return None if v is None else v.isoformat()

    return {
        "id": r["id"],
        "case_id": r["case_id"],
        "decided_at": r["decided_at"].isoformat(),
        "decided_by": r["decided_by"],
        "decision": r["decision"],
        "reason": r["reason"],
        "old_until": t(r["old_until"]),
        "new_until": t(r["new_until"]),
        "from_version": r["from_version"],
        "to_version": r["to_version"],
        "gap": None if r["gap_from"] is None else {"from": t(r["gap_from"]), "to": t(r["gap_to"])},
    }


async def decisions(conn: Conn, case_id: str) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM order_decisions WHERE case_id = %s ORDER BY id", (case_id,))
        rows = await cur.fetchall()
    return [decision_json(r) for r in rows]


async def unreported_violations(conn: Conn, since: datetime) -> list[dict[str, Any]]:
    """Confirmed-violation alerts opened since ``since`` that have no report row yet."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT a.alert_id, a.case_id, a.type, a.rule, a.risk, a.opened_at FROM alerts a "
            "WHERE a.type = ANY(%s) AND a.opened_at >= %s AND NOT EXISTS "
            "(SELECT 1 FROM violation_reports v WHERE v.alert_id = a.alert_id) ORDER BY a.opened_at",
            (list(VIOLATIONS), since),
        )
        return list(await cur.fetchall())


async def open_report(
    conn: Conn,
    alert_id: str,
    task_id: str,
    case_id: str,
    units: Sequence[str],
    kind: str,
    risk: str,
    opened_at: datetime,
    due_at: datetime,
) -> bool:
    cur = await conn.execute(
        "INSERT INTO violation_reports (alert_id, task_id, case_id, units, kind, risk, opened_at, due_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (alert_id) DO NOTHING",
        (alert_id, task_id, case_id, list(units), kind, risk, opened_at, due_at),
    )
    return bool(cur.rowcount)


async def report_by_task(conn: Conn, task_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT * FROM violation_reports WHERE task_id = %s{' FOR UPDATE' if lock else ''}".encode(),
            (task_id,),
        )
        return await cur.fetchone()


async def mark_reported(
    conn: Conn, alert_id: str, now: datetime, who: str, assessment: str, report: dict[str, Any]
) -> None:
    await conn.execute(
        "UPDATE violation_reports SET reported_at = %s, reported_by = %s, assessment = %s, report = %s "
        "WHERE alert_id = %s",
        (now, who, assessment, Jsonb(report), alert_id),
    )


async def report_rows(
    conn: Conn, since: datetime, until: datetime, units: Sequence[str] | None
) -> list[ReportRow]:
    """Reports of violations opened in [since, until), of cases naming one of ``units`` (None: all)."""
    cur = await conn.execute(
        "SELECT opened_at, due_at, reported_at FROM violation_reports WHERE opened_at >= %s AND opened_at < %s "
        "AND (%s::text[] IS NULL OR units && %s::text[])",
        (since, until, None if units is None else list(units), None if units is None else list(units)),
    )
    out: list[ReportRow] = []
    for opened, due, reported in await cur.fetchall():
        assert isinstance(opened, datetime) and isinstance(due, datetime)
        out.append(ReportRow(opened, due, reported if isinstance(reported, datetime) else None))
    return out


async def recent_violations(
    conn: Conn, case_ids: Sequence[str], since: datetime
) -> dict[str, tuple[int, datetime | None]]:
    """{case_id: (confirmed violations opened since ``since``, the latest one's time)}."""
    cur = await conn.execute(
        "SELECT case_id, count(*), max(opened_at) FROM alerts WHERE case_id = ANY(%s) AND type = ANY(%s) "
        "AND opened_at >= %s GROUP BY case_id",
        (list(case_ids), list(VIOLATIONS), since),
    )
    out: dict[str, tuple[int, datetime | None]] = {}
    for case_id, n, last in await cur.fetchall():
        out[str(case_id)] = (int(str(n)), last if isinstance(last, datetime) else None)
    return out


async def decided_terms(conn: Conn) -> set[tuple[str, datetime]]:
    """(case, valid_until) of every term with a recorded decision about its end."""
    cur = await conn.execute("SELECT case_id, valid_until FROM order_watch WHERE decision IS NOT NULL")
    return {(str(c), u) for c, u in await cur.fetchall() if isinstance(u, datetime)}


async def police_notice(conn: Conn, case_id: str, *, lock: bool = False) -> tuple[int, int, bool] | None:
    """(version, extensions, ended) police systems were last told of ``case_id``; None if never."""
    cur = await conn.execute(
        f"SELECT version, extensions, ended FROM order_police_notices WHERE case_id = %s"
        f"{' FOR UPDATE' if lock else ''}".encode(),
        (case_id,),
    )
    row = await cur.fetchone()
    return None if row is None else (int(str(row[0])), int(str(row[1])), bool(row[2]))


async def save_police_notice(
    conn: Conn, case_id: str, version: int, extensions: int, ended: bool, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO order_police_notices (case_id, version, extensions, ended, at) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (case_id) DO UPDATE SET version = excluded.version, extensions = excluded.extensions, "
        "ended = excluded.ended, at = excluded.at",
        (case_id, version, extensions, ended, now),
    )


async def all_watches(conn: Conn) -> dict[tuple[str, datetime], Watch]:
    """Every term's watch, keyed by (case, valid_until): one read for a whole lifecycle pass."""
    cur = await conn.execute("SELECT case_id, valid_until, reminded, decision, expired_at FROM order_watch")
    out: dict[tuple[str, datetime], Watch] = {}
    for case_id, until, reminded, decision, expired_at in await cur.fetchall():
        assert isinstance(until, datetime) and isinstance(reminded, list)
        out[(str(case_id), until)] = Watch(
            str(case_id),
            until,
            frozenset(int(x) for x in reminded),
            None if decision is None else DecisionKind(str(decision)),
            expired_at if isinstance(expired_at, datetime) else None,
        )
    return out


async def all_police_notices(conn: Conn) -> dict[str, tuple[int, int, bool]]:
    cur = await conn.execute("SELECT case_id, version, extensions, ended FROM order_police_notices")
    return {str(c): (int(str(v)), int(str(e)), bool(d)) for c, v, e, d in await cur.fetchall()}
