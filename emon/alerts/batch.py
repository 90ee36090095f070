"""The reads and outbox rows of a batch of decisions, done once per batch instead of once per decision.

A decision costs mostly its round trips to PostgreSQL, so the batch path of
:meth:`emon.alerts.service.AlertService._batch` reads up front, in three queries, what each decision
would have read alone: the alerts it may change (locked), the suppressions of its cases in force, and the
CAP messages already queued for those alerts. Each prefetched alert and dispatch history answers once:
a second change to the same alert in the batch reads the row its first change stored, exactly as a
decision on its own would. With nothing prefetched (:meth:`Batch.none`, the isolating per-item
path) every answer is the original per-decision query.

The outbox rows the batch queues are written in one statement (:meth:`Batch.flush`) at its end, and
before anything that reads or changes the outbox (a resolve cancelling victim re-sends, a pursuit
dropping an earlier end, a CAP history read), so every statement sees the rows it saw before.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from emon.alerts.model import Alert
from emon.alerts.types import AlertType
from emon.storage import alerts as st


class Batch:
    def __init__(
        self,
        alerts: dict[str, Alert | None] | None = None,
        suppressions: dict[str, list[frozenset[str] | None]] | None = None,
        dispatch: dict[str, list[tuple[str, datetime]]] | None = None,
        at: datetime | None = None,
    ) -> None:
        self._alerts = alerts or {}
        self._suppressions = suppressions
        self._dispatch = dispatch or {}
        self._at = at  # the ``now`` the suppressions were read for
        self._rows: list[tuple[st.Delivery, datetime]] = []
        self.added = 0  # outbox rows added by the flushes so far

    def queue(self, d: st.Delivery, now: datetime) -> None:
        """An outbox row to add at the next :meth:`flush` (idempotent on its id, as ever)."""
        self._rows.append((d, now))

    async def flush(self, conn: st.Conn) -> None:
        """Write the queued outbox rows (one statement) — before any statement that touches the outbox."""
        if self._rows:
            rows, self._rows = self._rows, []
            self.added += await st.add_deliveries(conn, rows)

    @classmethod
    def none(cls) -> Batch:
        """Nothing prefetched: every read is its own query (the per-item path)."""
        return cls()

    @classmethod
    async def load(
        cls, conn: st.Conn, alert_ids: Collection[str], case_ids: Collection[str], now: datetime
    ) -> Batch:
        """Lock and read these alerts (absent ones answer None), the suppressions of these cases in force
        at ``now`` and the alerts' dispatch histories — in the caller's transaction."""
        ids = sorted(set(alert_ids))
        stored = await st.get_many(conn, ids) if ids else {}
        alerts: dict[str, Alert | None] = {i: stored.get(i) for i in ids}
        held = await st.active_suppressions(conn, sorted(set(case_ids)), now) if case_ids else {}
        dispatch = await st.dispatch_histories(conn, list(stored)) if stored else {}
        known = {i: dispatch.get(i, []) for i in ids}
        return cls(alerts, {c: held.get(c, []) for c in case_ids}, known, now)

    async def alert(self, conn: st.Conn, alert_id: str) -> Alert | None:
        """The alert, locked: prefetched the first time, then re-read (a change of this batch stored it)."""
        if alert_id in self._alerts:
            return self._alerts.pop(alert_id)
        return await st.get(conn, alert_id, lock=True)

    def forget(self, alert_id: str) -> None:
        """The alert was just stored: its next read goes to the database."""
        self._alerts.pop(alert_id, None)

    async def suppressed(
        self, conn: st.Conn, case_id: str, alert_type: AlertType | None, now: datetime
    ) -> bool:
        """Whether a suppression of the case holds back ``alert_type`` at ``now``."""
        if alert_type is None:
            return False
        if self._suppressions is not None and now == self._at and case_id in self._suppressions:
            return st.suppresses(self._suppressions[case_id], alert_type)
        return await st.is_suppressed(conn, case_id, alert_type, now)

    async def dispatch_history(self, conn: st.Conn, alert_id: str) -> list[tuple[str, datetime]]:
        """The CAP messages already queued for the alert: prefetched the first time, then re-read."""
        if alert_id in self._dispatch:
            return self._dispatch.pop(alert_id)
        await self.flush(conn)
        return await st.dispatch_history(conn, alert_id)
