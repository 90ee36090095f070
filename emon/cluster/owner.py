"""The evaluation owner: the one instance that holds the evaluation lease evaluates and ticks.

It reads what every instance stored from PostgreSQL (never from one process's memory): fixes and
events stored after its cursor up to a cut-off at which no storing transaction is open
(:meth:`emon.storage.records.Records.cutoff`), so nothing committed late is skipped. When it takes the
lease it restores the state of every open case and the watermark from PostgreSQL and evaluates
everything stored after the watermark again (decisions and alert ids are deterministic, so a step seen
twice does no harm). Every write it makes is fenced by the lease's epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from emon.backoff import Backoff
from emon.case import Case
from emon.casebook import CaseBook
from emon.errors import StorageError
from emon.evaluation import Evaluation
from emon.fix import DeviceEvent, Fix
from emon.storage.cases import CaseRecords
from emon.storage.lease import Fenced, Lease
from emon.storage.postgres import DRIVER_ERRORS
from emon.storage.records import Records

log = logging.getLogger(__name__)

_DOWN: tuple[type[Exception], ...] = (StorageError, *DRIVER_ERRORS)


class EvaluationOwner:
    """Holds (or waits for) the evaluation lease; while held, feeds and ticks the evaluation.

    ``renew_s`` must be well under the lease's ``ttl_s`` (default 2 s and 6 s): an owner that dies is
    replaced within ``ttl_s + renew_s`` seconds, plus the restore.
    """

    def __init__(
        self,
        lease: Lease,
        evaluation: Evaluation,
        records: Records,
        cases: CaseRecords,
        casebook: CaseBook,
        *,
        renew_s: float,
        tick_s: float,
        poll_s: float = 0.2,
    ) -> None:
        self.lease = lease
        self.evaluation = evaluation
        self.records = records
        self.cases = cases
        self.casebook = casebook
        self.renew_s = renew_s
        self.tick_s = tick_s
        self.poll_s = poll_s
        self.wake = asyncio.Event()
        self._ready: int | None = None  # the epoch whose state has been restored
        self._turn = asyncio.Lock()  # restore, feed, tick and case changes take turns

    @property
    def ready(self) -> bool:
        """True while this instance owns the evaluation and has restored its state."""
        return self._ready is not None and self._ready == self.lease.epoch

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._hold(), name="evaluation-lease")
            tg.create_task(self._feed(), name="evaluation-feed")
            tg.create_task(self._ticks(), name="evaluation-tick")

    async def consume(
        self,
        fixes: Sequence[Fix],
        events: Sequence[DeviceEvent],
        now: datetime,
        received_mono: float,
        stored_at: datetime | None = None,
    ) -> None:
        """A pipeline consumer that only wakes the feed: the batch is read back from PostgreSQL."""
        self.wake.set()

    async def case_changed(self, case: Case, version: int | None) -> None:
        """A case changed (through this instance's API or seen by sync): the owner evaluates it anew."""
        async with self._turn:
            if self.ready:
                try:
                    await self.evaluation.case_changed(case, version)
                except Fenced:
                    self._ready = None

    async def _hold(self) -> None:
        while True:
            held = await self.lease.try_hold()
            if held and not self.ready:
                try:
                    await self._restore()
                except _DOWN as exc:
                    log.warning("restoring the evaluation failed (%s); retrying", exc)
            elif not held:
                self._ready = None
            await asyncio.sleep(self.renew_s)

    async def _restore(self) -> None:
        async with self._turn:
            epoch = self.lease.epoch
            if epoch is None:
                return
            started = time.monotonic()
            watermark = await self.cases.watermark()
            await self.evaluation.load(self.casebook.all(), datetime.now(UTC))
            if watermark is not None:
                self.evaluation.resume_from(watermark)
            self._ready = epoch
            log.warning(
                "evaluation owned (epoch %d): %d cases restored in %.2fs",
                epoch,
                len(self.casebook),
                time.monotonic() - started,
            )
        self.wake.set()

    async def _feed(self) -> None:
        backoff = Backoff(0.1, 2.0)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.poll_s)
            self.wake.clear()
            try:
                await self._step()
                backoff.reset()
            except Fenced as exc:
                log.warning("%s", exc)
                self._ready = None
            except _DOWN as exc:
                log.warning("evaluation feed: PostgreSQL unreachable (%s)", exc)
                await asyncio.sleep(backoff.next_wait())

    async def _step(self) -> None:
        async with self._turn:
            since = self.evaluation.evaluated_through
            if not self.ready or since is None:
                return
            cutoff = await self.records.cutoff()
            fixes, events = await self.records.received_between(since, cutoff)
            if fixes or events:
                await self.evaluation.consume(fixes, events, datetime.now(UTC), time.monotonic(), cutoff)

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            async with self._turn:
                if not self.ready:
                    continue
                try:
                    await self.evaluation.tick(datetime.now(UTC))
                except Fenced as exc:
                    log.warning("%s", exc)
                    self._ready = None
                except _DOWN as exc:
                    log.warning("evaluation tick: PostgreSQL unreachable (%s)", exc)
