"""The reads and writes of a batch of decisions, done once per batch instead of once per decision.

A decision costs mostly its round trips to PostgreSQL, so the batch path of
:meth:`emon.alerts.service.AlertService._batch` runs in pipeline mode and reads up front, in one round
trip, what each decision would have read alone: the alerts it may change (locked), the suppressions of
its cases in force, and the CAP messages already queued for those alerts (:meth:`Batch.load`). A
prefetched alert answers every read of the batch: first as read, then as the batch's last change
stored it (:meth:`Batch.remember`; the row is locked, so that is the row a re-read would return —
but for ``order_version``, which the database stamps and the caller takes from each save's result).
A prefetched dispatch history likewise answers with the CAP rows the batch queued added in their
stored order. With nothing prefetched (:meth:`Batch.none`, the isolating per-item path) every answer is
the original per-decision query.

The writes are sent without waiting for their results, at the next flush (:meth:`Batch.flush`: at the
end, and before anything that reads the alerts or changes the outbox — a resolve cancelling victim
re-sends, a pursuit dropping an earlier end — so every statement sees the rows it saw before): the
waiting saves, one statement per run of distinct alerts (:meth:`Batch.save`), then the queued outbox
rows in one statement that NOTIFYs the delivery workers when a row was added; at the end the room tasks
in one statement (:meth:`Batch.finish`). They go out with the COMMIT; their results (order versions,
created tasks) are read after it (:meth:`Batch.versions`, :meth:`Batch.created_tasks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from emon.alerts.model import Alert, Change
from emon.alerts.types import AlertType
from emon.storage import alerts as st
from emon.storage import tasks as task_store
from emon.tasks.model import Task


class Batch:
    def __init__(
        self, reads: st.BatchReads | None = None, ids: Sequence[str] = (), at: datetime | None = None
    ) -> None:
        stored = {} if reads is None else reads.alerts
        self._alerts: dict[str, Alert | None] = {i: stored.get(i) for i in ids}
        self._suppressions = None if reads is None else reads.suppressions
        dispatch = {} if reads is None else reads.dispatch
        self._dispatch = {i: dispatch.get(i, []) for i in ids}
        self._at = at  # the ``now`` the suppressions were read for
        self._rows: list[tuple[st.Delivery, datetime]] = []
        self._notify: str | None = None
        self.tasks: list[Task] = []  # the room tasks to create at :meth:`finish`, in order
        self._tasks_sent: st.Sent | None = None
        self._hold = reads is not None  # saves wait for a flush: every read of this batch passes here
        self._saves: list[st.Save] = []  # a run of saves of distinct alerts, not sent yet
        self._saving: set[str] = set()  # their alerts
        self._runs: list[tuple[st.Sent, list[str]]] = []  # sent runs and the alert of each save, in order

    @classmethod
    def none(cls) -> Batch:
        """Nothing prefetched: every read is its own query (the per-item path)."""
        return cls()

    @classmethod
    async def load(
        cls, conn: st.Conn, alert_ids: Sequence[str], case_ids: Sequence[str], now: datetime
    ) -> Batch:
        """Lock and read these alerts (absent ones answer None), the suppressions of these cases in force
        at ``now`` and the alerts' dispatch histories — in the caller's transaction, one round trip in
        pipeline mode."""
        ids = sorted(set(alert_ids))
        cases = sorted(set(case_ids))
        reads = await st.batch_reads(conn, ids, cases, now)
        held = {c: reads.suppressions.get(c, []) for c in cases}
        return cls(st.BatchReads(reads.alerts, held, reads.dispatch), ids, now)

    # -- reads ---------------------------------------------------------------------------------

    async def alert(self, conn: st.Conn, alert_id: str) -> Alert | None:
        """The alert, locked: as prefetched, or as this batch last stored it; else read (and locked)."""
        if alert_id in self._alerts:
            return self._alerts[alert_id]
        await self.flush(conn)
        return await st.get(conn, alert_id, lock=True)

    def remember(self, alert: Alert) -> None:
        """The alert was just stored: a prefetched (locked) one's next read answers this."""
        if alert.alert_id in self._alerts:
            self._alerts[alert.alert_id] = alert

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
        """The CAP messages already queued for the alert, oldest first (created at, then id)."""
        if alert_id in self._dispatch:
            return list(self._dispatch[alert_id])
        await self.flush(conn)
        return await st.dispatch_history(conn, alert_id)

    # -- writes --------------------------------------------------------------------------------

    async def save(
        self, conn: st.Conn, change: Change, now: datetime, notes: Sequence[tuple[str, dict[str, Any]]]
    ) -> None:
        """Store a change (its order version: :meth:`versions`, after the pipeline synced). Saves of
        distinct alerts go in one statement at the next :meth:`flush`; a second change to an alert of
        the waiting run is sent after that run (one statement cannot change a row twice). Without a
        prefetch the save is sent at once: a read of this batch may go to the database."""
        if change.alert.alert_id in self._saving:
            await self._send_saves(conn)
        self._saves.append((change, now, notes))
        self._saving.add(change.alert.alert_id)
        self.remember(change.alert)
        if not self._hold:
            await self._send_saves(conn)

    async def _send_saves(self, conn: st.Conn) -> None:
        if self._saves:
            saves, self._saves = self._saves, []
            self._saving.clear()
            self._runs.append((await st.send_saves(conn, saves), [c.alert.alert_id for c, _, _ in saves]))

    async def versions(self) -> list[int | None]:
        """The order version each save returned, in the order of :meth:`save`."""
        out: list[int | None] = []
        for cur, ids in self._runs:
            stored = await st.saved_versions(cur)
            out += [stored.get(i) for i in ids]
        return out

    def queue(self, d: st.Delivery, now: datetime) -> None:
        """An outbox row to add at the next :meth:`flush` (idempotent on its id, as ever)."""
        self._rows.append((d, now))
        known = self._dispatch.get(d.alert_id) if d.channel == "dispatch" and d.alert_id else None
        if known is not None and all(did != d.delivery_id for did, _ in known):
            known.append((d.delivery_id, now))  # a row already stored (a replay) stays as it was
            known.sort(key=lambda row: (row[1], row[0]))

    def notify_on(self, channel_name: str) -> None:
        """NOTIFY ``channel_name`` at commit when a flush adds a row (PostgreSQL folds repeats)."""
        self._notify = channel_name

    async def flush(self, conn: st.Conn) -> None:
        """Send the waiting saves, then the queued outbox rows (one statement each) — before any statement
        that reads the alerts or touches the outbox (an outbox row's alert must be stored before it)."""
        await self._send_saves(conn)
        if self._rows:
            rows, self._rows = self._rows, []
            await st.send_deliveries(conn, rows, self._notify)  # its count is not needed

    async def finish(self, conn: st.Conn, now: datetime) -> None:
        """Send what is still queued: the outbox rows, then the room tasks created at ``now`` (one
        statement each)."""
        await self.flush(conn)
        if self.tasks:
            self._tasks_sent = await task_store.send_insert(conn, self.tasks, now)

    async def created_tasks(self) -> list[Task]:
        """The queued room tasks that were created (not replays), in order, each once."""
        if self._tasks_sent is None:
            return []
        created = await task_store.created(self._tasks_sent)
        out: list[Task] = []
        for t in self.tasks:
            if t.task_id in created:
                created.discard(t.task_id)
                out.append(t)
        return out
