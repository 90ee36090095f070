"""Cases and their evaluation state in PostgreSQL."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from psycopg.types.json import Jsonb

from emon.case import Case, CaseStatus
from emon.geofence.events import EvalEvent
from emon.storage import arrays
from emon.storage.lease import Conn, Fence
from emon.storage.postgres import Database

# A case's evaluation state as stored: packed bytes (emon.geofence.state.CaseState.pack) or a JSON document.
CaseStateData = bytes | dict[str, Any]

# A step's rows name its journal number without reading it back: the sequence value this session drew
# last (the journal row is inserted first in the same transaction; nothing else draws from its sequence).
_THIS_STEP = "currval(pg_get_serial_sequence('eval_journal', 'n'))"
_NO_STEP = "NULL"


def _snapshot_documents(
    states: Mapping[str, CaseStateData], snapshot: Collection[str] | Mapping[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The JSON documents to keep as snapshots: those given in ``snapshot``, or the states it names
    that are JSON documents (a packed state is not a snapshot: packs and replays read JSON)."""
    if isinstance(snapshot, Mapping):
        return {c: dict(doc) for c, doc in snapshot.items()}
    return {c: v for c in snapshot if isinstance(v := states.get(c), dict)}


def case_document(case: Case) -> dict[str, Any]:
    return case.model_dump(mode="json", exclude_none=True)


async def seed_partition_watermarks(conn: Conn, old: int | None, new: int) -> None:
    """The partition count changes from ``old`` to ``new`` (in the caller's transaction): every new
    partition starts from the oldest watermark of the old partitions (an old partition without one of its
    own counts as the one-owner watermark), so no case's fixes are skipped; a step seen twice does no harm.
    With ``old`` unknown (the first layout stored), the count whose watermarks were written last."""
    if old is None:
        cur = await conn.execute(
            "SELECT partitions FROM eval_partition_watermarks GROUP BY partitions ORDER BY max(through) DESC LIMIT 1"
        )
        row = await cur.fetchone()
        old = None if row is None else int(row[0])
    if old is None or old == new:
        return
    await conn.execute("DELETE FROM eval_partition_watermarks WHERE partitions = %s", (new,))
    await conn.execute(
        "INSERT INTO eval_partition_watermarks (partitions, partition, through) "
        "SELECT %(new)s, k, m FROM generate_series(0, %(new)s - 1) AS k, "
        "(SELECT min(coalesce(w.through, (SELECT through FROM eval_watermark WHERE id = 1))) AS m "
        "FROM generate_series(0, %(old)s - 1) AS o LEFT JOIN eval_partition_watermarks w "
        "ON w.partitions = %(old)s AND w.partition = o) AS s WHERE m IS NOT NULL",
        {"old": old, "new": new},
    )


class EvaluationWrite(NamedTuple):
    """One :meth:`CaseRecords.save_evaluation` call's arguments, for :meth:`CaseRecords.save_evaluations`."""

    states: Mapping[str, CaseStateData]
    events: Sequence[EvalEvent]
    watermark: datetime | None = None
    step: JournalStep | None = None
    snapshot: Collection[str] | Mapping[str, dict[str, Any]] = ()
    versions: dict[str, int] | None = None
    config: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class JournalStep:
    """One evaluation step for the journal: ``kind`` batch / tick / case / start, at decision time ``now``
    (UTC), the cases whose state it changed, the fixes it evaluated as (device, ts, seq or -1) keys, and
    ``detail`` ({"version": n} for a case change, {"config": ...} for a start)."""

    kind: str
    now: datetime
    case_ids: tuple[str, ...]
    fixes: tuple[tuple[str, datetime, int], ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderVersion:
    """One version of a case's document: who changed it, when (UTC), what they did and why."""

    case_id: str
    version: int
    changed_at: datetime
    changed_by: str
    action: str
    reason: str | None
    document: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "version": self.version,
            "changed_at": self.changed_at.isoformat(),
            "changed_by": self.changed_by,
            "action": self.action,
            "reason": self.reason,
            "document": self.document,
        }


class CaseRecords:
    def __init__(self, db: Database) -> None:
        self.db = db
        # Set when several instances run: evaluation writes check the evaluation lease (emon.storage.lease).
        self.fence: Fence | None = None
        # Set when several instances run: (partition, partitions) whose cases these records evaluate; the
        # watermark is then that partition's own (emon.cluster.partition).
        self.partition: tuple[int, int] | None = None

    async def add(self, case: Case, who: str, reason: str | None = None) -> int | None:
        """Create a case as order version 1 (returned); None if the id exists."""
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
                return None
            await self._history(conn, case.case_id, who, "create", doc, 1, reason)
            return 1

    async def replace(self, case: Case, who: str, reason: str | None = None) -> int | None:
        """Replace a case's document (a new order version, returned with who and ``reason``); None if unknown."""
        doc = case_document(case)
        async with self.db.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE cases SET risk = %s, offender_device = %s, victim_device = %s, document = %s, "
                "status = %s, units = %s, updated_at = now(), version = version + 1, "
                "closed_at = CASE WHEN %s = 'closed' THEN coalesce(closed_at, now()) ELSE NULL END, "
                "closed_by = CASE WHEN %s = 'closed' THEN %s ELSE NULL END "
                "WHERE case_id = %s RETURNING version",
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
            row = await cur.fetchone()
            if row is None:
                return None
            version = int(row[0])
            action = "close" if case.status is CaseStatus.CLOSED else "update"
            await self._history(conn, case.case_id, who, action, doc, version, reason)
            return version

    async def get(self, case_id: str) -> Case | None:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute("SELECT document FROM cases WHERE case_id = %s", (case_id,))
            row = await cur.fetchone()
            return None if row is None else Case.model_validate(row[0])

    async def all(
        self, status: CaseStatus | None = None, *, units: frozenset[str] | None = None
    ) -> list[Case]:
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
            # Row by row: one JSON document parsed at a time (psycopg converts a row when it is read),
            # not every open case's document as Python objects at once (≈ 13 KB each) at start-up,
            # whose freed arenas would stay interleaved with the cases kept.
            return [Case.model_validate(r[0]) async for r in cur]

    async def states(self, case_ids: Collection[str] | None = None) -> dict[str, CaseStateData]:
        """The persisted evaluation state of every case (or of ``case_ids`` only): packed bytes
        (``Engine.packed``) or, for a state written as a JSON document, that document (``Engine.add_case``
        takes either)."""
        query, args = "SELECT case_id, packed, state FROM eval_state", []
        if case_ids is not None:
            query, args = f"{query} WHERE case_id = ANY (%s)", [list(case_ids)]
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(query, args)
            return {str(r[0]): bytes(r[1]) if r[1] is not None else dict(r[2]) for r in await cur.fetchall()}

    async def save_evaluation(
        self,
        states: Mapping[str, CaseStateData],
        events: Sequence[EvalEvent],
        *,
        watermark: datetime | None = None,
        step: JournalStep | None = None,
        snapshot: Collection[str] | Mapping[str, dict[str, Any]] = (),
        versions: dict[str, int] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        """Store changed evaluation states (packed bytes or JSON documents) and the decisions made, in
        one transaction.

        ``watermark``: also record that everything stored up to this time (PostgreSQL's clock) has
        been evaluated and handed to alerting (see :meth:`watermark`); it never moves back.
        ``step``: the evaluation step that made them, appended to the journal; the states of the cases
        in ``snapshot`` are also kept as snapshots after that step (with their order version in
        ``versions`` and the engine ``config``), the starting points of a replay: ``snapshot`` maps
        those case ids to their JSON document (``Engine.snapshot``), or names cases whose state in
        ``states`` is a JSON document.
        """
        if not states and not events and watermark is None and step is None:
            return
        # One round trip when unfenced: BEGIN, every statement and COMMIT are sent before any result is
        # read (pipeline mode), the journal step's number reached by ``currval`` instead of read back,
        # the packed states one statement over arrays instead of a statement per case.
        await self.save_evaluations(
            [EvaluationWrite(states, events, watermark, step, snapshot, versions, config)]
        )

    async def save_evaluations(self, writes: Sequence[EvaluationWrite]) -> None:
        """Several evaluation steps' :meth:`save_evaluation`, in order, in one transaction sent as one
        round trip (steps that waited together: one commit instead of one each)."""
        if not writes:
            return
        async with self.db.pool.connection() as conn, conn.pipeline(), conn.transaction():
            if self.fence is not None:
                await self.fence.check(conn)  # several instances: only the evaluation lease's holder writes
            for w in writes:
                await self._write_evaluation(
                    conn, w.states, w.events, w.watermark, w.step, w.snapshot, w.versions, w.config
                )

    async def _write_evaluation(
        self,
        conn: Conn,
        states: Mapping[str, CaseStateData],
        events: Sequence[EvalEvent],
        watermark: datetime | None,
        step: JournalStep | None,
        snapshot: Collection[str] | Mapping[str, dict[str, Any]],
        versions: dict[str, int] | None,
        config: dict[str, Any] | None,
    ) -> None:
        cur = conn.cursor()
        n = _NO_STEP
        if step is not None:
            await cur.execute(
                "INSERT INTO eval_journal (kind, now, case_ids, fixes, detail) VALUES (%s, %s, %s, %s, %s)",
                (
                    step.kind,
                    step.now,
                    list(step.case_ids),
                    Jsonb([[d, t.isoformat(), q] for d, t, q in step.fixes]),
                    Jsonb(step.detail),
                ),
            )
            n = _THIS_STEP
            docs = _snapshot_documents(states, snapshot)
            if docs:
                await cur.executemany(
                    "INSERT INTO eval_snapshots (case_id, n, at, order_version, config, state) "
                    f"VALUES (%s, {n}, %s, %s, %s, %s)",
                    [
                        (c, step.now, (versions or {}).get(c), Jsonb(config or {}), Jsonb(doc))
                        for c, doc in docs.items()
                    ],
                )
        if watermark is not None and self.partition is not None:
            await cur.execute(
                "INSERT INTO eval_partition_watermarks AS w (partitions, partition, through) "
                "VALUES (%s, %s, %s) ON CONFLICT (partitions, partition) "
                "DO UPDATE SET through = GREATEST(w.through, excluded.through)",
                (self.partition[1], self.partition[0], watermark),
            )
        elif watermark is not None:
            await cur.execute(
                "INSERT INTO eval_watermark (id, through) VALUES (1, %s) ON CONFLICT (id) "
                "DO UPDATE SET through = GREATEST(eval_watermark.through, excluded.through)",
                (watermark,),
            )
        packed = {k: v for k, v in states.items() if isinstance(v, bytes)}
        if packed:
            await cur.execute(
                "INSERT INTO eval_state (case_id, packed, state, updated_at) "
                "SELECT c, p, NULL, now() FROM unnest(%s, %s) AS s (c, p) "
                "ON CONFLICT (case_id) DO UPDATE SET packed = excluded.packed, state = NULL, updated_at = now()",
                (arrays.texts(list(packed)), arrays.byteas(list(packed.values()))),
            )
        documents = [(k, None, Jsonb(v)) for k, v in states.items() if not isinstance(v, bytes)]
        if documents:
            await cur.executemany(
                "INSERT INTO eval_state (case_id, packed, state, updated_at) VALUES (%s, %s, %s, now()) "
                "ON CONFLICT (case_id) DO UPDATE SET packed = excluded.packed, state = excluded.state, "
                "updated_at = now()",
                documents,
            )
        if events:
            await cur.executemany(
                "INSERT INTO eval_events (case_id, type, rule, at, episode, decided_at, live, explanation, "
                f"order_version, journal_n) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, {n}) ON CONFLICT DO NOTHING",
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
                        e.detail.get("order_version"),
                    )
                    for e in events
                ],
            )

    async def watermark(self) -> datetime | None:
        """When the last evaluated batch was persisted; None before the first one. With a partition set,
        that partition's (the one-owner watermark until the partition has its own)."""
        query, args = "SELECT through FROM eval_watermark WHERE id = 1", []
        if self.partition is not None:
            query = (
                "SELECT coalesce((SELECT through FROM eval_partition_watermarks WHERE partitions = %s "
                "AND partition = %s), (SELECT through FROM eval_watermark WHERE id = 1))"
            )
            args = [self.partition[1], self.partition[0]]
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(query, args)
            row = await cur.fetchone()
            return None if row is None else row[0]

    async def eval_events(self, case_id: str, limit: int = 500) -> list[dict[str, Any]]:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT explanation FROM eval_events WHERE case_id = %s ORDER BY at, id LIMIT %s",
                (case_id, limit),
            )
            return [dict(r[0]) for r in await cur.fetchall()]

    # -- order versions and legal hold ------------------------------------------------------

    async def current_versions(self) -> dict[str, int]:
        """The order version in force of every case."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute("SELECT case_id, version FROM cases")
            return {str(r[0]): int(r[1]) for r in await cur.fetchall()}

    async def current_version(self, case_id: str) -> int | None:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute("SELECT version FROM cases WHERE case_id = %s", (case_id,))
            row = await cur.fetchone()
            return None if row is None else int(row[0])

    async def versions(self, case_id: str) -> list[OrderVersion]:
        """Every version of a case's document, oldest first (empty if the case is unknown)."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT case_id, version, changed_at, changed_by, action, reason, document FROM case_history "
                "WHERE case_id = %s ORDER BY version",
                (case_id,),
            )
            return [
                OrderVersion(r[0], int(r[1]), r[2], r[3], r[4], r[5], dict(r[6]))
                for r in await cur.fetchall()
            ]

    async def history(self, case_id: str) -> list[dict[str, Any]]:
        """Every stored change of a case, oldest first (empty for an unknown case)."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT changed_at, changed_by, action, document FROM case_history WHERE case_id = %s ORDER BY id",
                (case_id,),
            )
            rows = await cur.fetchall()
        return [
            {"changed_at": r[0].isoformat(), "changed_by": r[1], "action": r[2], "document": r[3]}
            for r in rows
        ]

    async def set_legal_hold(self, case_id: str, hold: bool, who: str, reason: str | None) -> bool:
        """Mark (or unmark) a case as evidence in proceedings; False if the case is unknown."""
        async with self.db.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE cases SET legal_hold = %s, legal_hold_reason = %s, legal_hold_by = %s, legal_hold_at = now() "
                "WHERE case_id = %s RETURNING 1",
                (hold, reason, who, case_id),
            )
            return await cur.fetchone() is not None

    async def legal_hold(self, case_id: str) -> dict[str, Any] | None:
        """{"legal_hold", "reason", "by", "at"} of a case; None if the case is unknown."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT legal_hold, legal_hold_reason, legal_hold_by, legal_hold_at FROM cases WHERE case_id = %s",
                (case_id,),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return {
            "legal_hold": bool(row[0]),
            "reason": row[1],
            "by": row[2],
            "at": None if row[3] is None else row[3].isoformat(),
        }

    @staticmethod
    async def _history(
        conn: Any, case_id: str, who: str, action: str, doc: dict[str, Any], version: int, reason: str | None
    ) -> None:
        await conn.execute(
            "INSERT INTO case_history (case_id, changed_by, action, document, version, reason) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (case_id, who, action, Jsonb(doc), version, reason),
        )
