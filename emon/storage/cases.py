"""Cases and their evaluation state in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from emon.case import Case, CaseStatus
from emon.geofence.events import EvalEvent
from emon.storage.postgres import Database


def case_document(case: Case) -> dict[str, Any]:
    return case.model_dump(mode="json", exclude_none=True)


class CaseRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, case: Case, who: str) -> bool:
        """Create a case; False if the id exists."""
        doc = case_document(case)
        async with self.db.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO cases (case_id, risk, offender_device, victim_device, document, status, units) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                (
                    case.case_id,
                    case.risk.value,
                    case.offender_device,
                    case.victim_device,
                    Jsonb(doc),
                    case.status.value,
                    list(case.units),
                ),
            )
            if await cur.fetchone() is None:
                return False
            await self._history(conn, case.case_id, who, "create", doc)
            return True

    async def replace(self, case: Case, who: str) -> bool:
        doc = case_document(case)
        async with self.db.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE cases SET risk = %s, offender_device = %s, victim_device = %s, document = %s, "
                "status = %s, units = %s, updated_at = now(), "
                "closed_at = CASE WHEN %s = 'closed' THEN coalesce(closed_at, now()) ELSE NULL END, "
                "closed_by = CASE WHEN %s = 'closed' THEN %s ELSE NULL END "
                "WHERE case_id = %s RETURNING 1",
                (
                    case.risk.value,
                    case.offender_device,
                    case.victim_device,
                    Jsonb(doc),
                    case.status.value,
                    list(case.units),
                    case.status.value,
                    case.status.value,
                    who,
                    case.case_id,
                ),
            )
            if await cur.fetchone() is None:
                return False
            action = "close" if case.status is CaseStatus.CLOSED else "update"
            await self._history(conn, case.case_id, who, action, doc)
            return True

    async def get(self, case_id: str) -> Case | None:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute("SELECT document FROM cases WHERE case_id = %s", (case_id,))
            row = await cur.fetchone()
            return None if row is None else Case.model_validate(row[0])

    async def all(self, status: CaseStatus | None = None, *, units: frozenset[str] | None = None) -> list[Case]:
        """Every case (of ``status``), or only those naming one of ``units`` (None: no unit filter)."""
        where: list[str] = ["true"]
        args: list[Any] = []
        if status is not None:
            where.append("status = %s")
            args.append(status.value)
        if units is not None:
            where.append("units && %s")
            args.append(sorted(units))
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT document FROM cases WHERE {' AND '.join(where)} ORDER BY case_id", args
            )
            return [Case.model_validate(r[0]) for r in await cur.fetchall()]

    async def states(self) -> dict[str, dict[str, Any]]:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute("SELECT case_id, state FROM eval_state")
            return {str(r[0]): dict(r[1]) for r in await cur.fetchall()}

    async def save_evaluation(
        self, states: dict[str, dict[str, Any]], events: Sequence[EvalEvent], *, watermark: datetime | None = None
    ) -> None:
        """Store changed evaluation states and the decisions made, in one transaction.

        ``watermark``: also record that everything stored up to this time (PostgreSQL's clock) has
        been evaluated and handed to alerting (see :meth:`watermark`); it never moves back.
        """
        if not states and not events and watermark is None:
            return
        async with self.db.pool.connection() as conn, conn.transaction():
            cur = conn.cursor()
            if watermark is not None:
                await cur.execute(
                    "INSERT INTO eval_watermark (id, through) VALUES (1, %s) ON CONFLICT (id) "
                    "DO UPDATE SET through = GREATEST(eval_watermark.through, excluded.through)",
                    (watermark,),
                )
            if states:
                await cur.executemany(
                    "INSERT INTO eval_state (case_id, state, updated_at) VALUES (%s, %s, now()) "
                    "ON CONFLICT (case_id) DO UPDATE SET state = excluded.state, updated_at = now()",
                    [(k, Jsonb(v)) for k, v in states.items()],
                )
            if events:
                await cur.executemany(
                    "INSERT INTO eval_events (case_id, type, rule, at, episode, decided_at, live, explanation) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [
                        (
                            e.case_id,
                            e.type.value,
                            e.rule,
                            e.at,
                            e.episode,
                            e.decided_at,
                            e.live,
                            Jsonb(e.explain()),
                        )
                        for e in events
                    ],
                )

    async def watermark(self) -> datetime | None:
        """When the last evaluated batch was persisted; None before the first one."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute("SELECT through FROM eval_watermark WHERE id = 1")
            row = await cur.fetchone()
            return None if row is None else row[0]

    async def eval_events(self, case_id: str, limit: int = 500) -> list[dict[str, Any]]:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT explanation FROM eval_events WHERE case_id = %s ORDER BY at, id LIMIT %s",
                (case_id, limit),
            )
            return [dict(r[0]) for r in await cur.fetchall()]

    @staticmethod
    async def _history(conn: Any, case_id: str, who: str, action: str, doc: dict[str, Any]) -> None:
        await conn.execute(
            "INSERT INTO case_history (case_id, changed_by, action, document) VALUES (%s, %s, %s, %s)",
            (case_id, who, action, Jsonb(doc)),
        )
