"""One partition of the cases, as held by this instance: its lease, its engine, its watermark.

A partition is taken whole and fresh: a new :class:`Partition` (with a new engine) restores the state
of the partition's open cases and the partition's watermark from PostgreSQL, then evaluates what was
stored after it (decisions and alert ids are deterministic, so a step seen twice does no harm). Every
write it makes — evaluation state, journal, watermark, decisions — is fenced by the partition's lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from emon.alerts.service import AlertService
from emon.case import Case
from emon.casebook import CaseBook
from emon.evaluation import AlertSink, Evaluation
from emon.fix import DeviceEvent, Fix
from emon.geofence.events import EvalEvent
from emon.partitioning import PROTOCOL, lease_name, partition_of
from emon.storage.cases import CaseRecords
from emon.storage.lease import Fence, Lease
from emon.storage.postgres import Database

log = logging.getLogger(__name__)

MakeEvaluation = Callable[[CaseRecords, AlertSink], Evaluation]


class PartitionAlerts:
    """Alerting as one partition's evaluation sees it: decisions fenced by the partition's lease, device
    events only for the partition's cases, and no tick (the coordinator runs alerting's tick)."""

    def __init__(self, alerts: AlertService, fence: Fence, owns: Callable[[str], bool]) -> None:
        self.alerts = alerts
        self.fence = fence
        self.owns = owns

    async def on_evaluation(self, events: Sequence[EvalEvent], now: datetime, received_mono: float) -> None:
        await self.alerts.on_evaluation(events, now, received_mono, fence=self.fence)

    async def on_device_events(
        self, events: Sequence[DeviceEvent], now: datetime, received_mono: float
    ) -> None:
        await self.alerts.on_device_events(events, now, received_mono, fence=self.fence, only=self.owns)

    async def tick(self, now: datetime) -> None:
        """Escalation and silence are instance-wide duties: :class:`emon.cluster.coordinator.Coordinator`."""


class Partition:
    """Partition ``index`` of ``count`` while this instance holds (or tries to hold) its lease."""

    def __init__(
        self,
        index: int,
        count: int,
        db: Database,
        instance_id: str,
        ttl_s: float,
        casebook: CaseBook,
        alerts: AlertService,
        make_evaluation: MakeEvaluation,
    ) -> None:
        self.index = index
        self.count = count
        self.casebook = casebook
        self.lease = Lease(db, lease_name(index), instance_id, ttl_s)
        self.cases = CaseRecords(db)
        # Writes are made under the epoch the state is restored under, never the lease's current one: a
        # step computed before the lease was lost and taken back (a new epoch) is refused.
        self.cases.fence = Fence(self.lease, expected=lambda: self._epoch, layout=(count, PROTOCOL))
        self.cases.partition = (index, count)
        self._alerts = PartitionAlerts(alerts, self.cases.fence, self.owns)
        self._make_evaluation = make_evaluation
        self.evaluation = self._fresh_evaluation()
        self.turn = asyncio.Lock()  # restore, batches, ticks, case changes and hand-over take turns
        self._ready: int | None = None  # the epoch whose state has been restored
        self._epoch: int | None = None  # the epoch being restored or restored: the one writes are made under

    def _fresh_evaluation(self) -> Evaluation:
        evaluation = self._make_evaluation(self.cases, self._alerts)
        evaluation.journal_detail = {"partition": self.index, "partitions": self.count}
        return evaluation

    def owns(self, case_id: str) -> bool:
        return partition_of(case_id, self.count) == self.index

    @property
    def ready(self) -> bool:
        """True while we hold the lease under the epoch whose state we restored."""
        return self._ready is not None and self._ready == self.lease.epoch

    def lost(self) -> None:
        self._ready = self._epoch = None

    def open_cases(self) -> Sequence[Case]:
        return self.casebook.documents(lambda c: self.owns(c.case_id))

    async def restore(self) -> None:
        """Load the partition's open cases with their persisted state, and continue after its watermark."""
        async with self.turn:
            epoch = self.lease.epoch
            if epoch is None:
                return
            started = time.monotonic()
            self._epoch = epoch
            cases = self.open_cases()
            watermark = await self.cases.watermark()
            # A fresh engine each time: what an earlier holding left in memory is not trusted.
            self.evaluation = self._fresh_evaluation()
            await self.evaluation.load(cases, datetime.now(UTC))
            if watermark is not None:
                self.evaluation.resume_from(watermark)
            self._ready = epoch
            log.warning(
                "partition %d owned (epoch %d): %d cases restored in %.2fs",
                self.index,
                epoch,
                len(cases),
                time.monotonic() - started,
            )

    async def consume(
        self,
        fixes: Sequence[Fix],
        events: Sequence[DeviceEvent],
        since: datetime,
        through: datetime,
    ) -> None:
        """Evaluate this partition's fixes and events (of its cases' devices) stored in (``since``,
        ``through``]; with none, only move on in memory (the watermark is persisted at the next tick).
        A read that no longer starts where the partition stands (another step went first) is dropped."""
        async with self.turn:
            if not self.ready or self.evaluation.evaluated_through != since:
                return
            if fixes or events:
                await self.evaluation.consume(fixes, events, datetime.now(UTC), time.monotonic(), through)
            else:
                self.evaluation.resume_from(through)

    async def tick(self, now: datetime) -> None:
        """Advance the engine's time for the partition's cases, and persist how far it has evaluated."""
        async with self.turn:
            if not self.ready:
                return
            await self.evaluation.tick(now)
            await self.persist_watermark()

    async def stop(self) -> None:
        """Persist how far the partition has evaluated (fenced) and stop acting for it: nothing of ours
        runs after this last persist, so the next owner restores exactly where we stopped."""
        async with self.turn:
            try:
                if self.ready:
                    await self.persist_watermark()
            finally:
                self._ready = self._epoch = None

    async def persist_watermark(self) -> None:
        through = self.evaluation.evaluated_through
        if through is not None:
            await self.cases.save_evaluation({}, [], watermark=through)

    async def case_changed(self, case: Case, version: int | None) -> None:
        async with self.turn:
            if self.ready:
                await self.evaluation.case_changed(case, version)

    @property
    def evaluated_through(self) -> datetime | None:
        return self.evaluation.evaluated_through if self.ready else None
