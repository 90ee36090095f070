"""Every instance follows the devices and cases registered through any other.

A LISTEN connection wakes a re-read of the devices and open cases (the tables are small; a re-read is
simpler and safer than applying deltas); after every (re)connect everything is re-read, because a
NOTIFY sent while the listener was away is lost; and a slow periodic re-read covers a listener that
is silently stuck.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from emon.backoff import Backoff
from emon.case import Case, CaseStatus
from emon.casebook import CaseBook
from emon.device import DeviceRegistry
from emon.storage.cases import CaseRecords
from emon.storage.postgres import DRIVER_ERRORS, Database
from emon.storage.records import Records
from emon.waiting import woken

log = logging.getLogger(__name__)

_DOWN: tuple[type[Exception], ...] = (*DRIVER_ERRORS, TimeoutError)

CaseChanged = Callable[[Case], Awaitable[None]]
AlertChanged = Callable[[str], Awaitable[None]]


class ClusterSync:
    """Keeps ``registry`` and ``casebook`` equal to PostgreSQL within about ``notify`` latency (or
    ``resync_s`` seconds without notifications); ``on_case`` is told of every case that changed."""

    def __init__(
        self,
        db: Database,
        records: Records,
        cases: CaseRecords,
        registry: DeviceRegistry,
        casebook: CaseBook,
        on_case: CaseChanged,
        *,
        on_alert: AlertChanged | None = None,
        application: str = "",
        resync_s: float = 5.0,
    ) -> None:
        self.db = db
        self.records = records
        self.cases = cases
        self.registry = registry
        self.casebook = casebook
        self.on_case = on_case
        self.on_alert = on_alert
        self.application = application  # our own application_name: our own alert changes are not news
        self.resync_s = resync_s
        self.wake = asyncio.Event()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._listen(), name="cluster-listen")
            tg.create_task(self._resync_loop(), name="cluster-resync")

    async def resync(self) -> None:
        """Re-read devices and open cases; hand every case that differs from memory to ``on_case``."""
        self.registry.replace_all(await self.records.devices())
        stored = {c.case_id: c for c in await self.cases.all(CaseStatus.OPEN)}
        for case_id in [c.case_id for c in self.casebook.all() if c.case_id not in stored]:
            closed = await self.cases.get(case_id)
            if closed is not None:
                await self.on_case(closed)
            else:
                self.casebook.remove(case_id)
        for case in stored.values():
            if not self.casebook.holds(case):
                await self.on_case(case)

    async def _resync_loop(self) -> None:
        while True:
            await woken(self.wake, self.resync_s)
            self.wake.clear()
            try:
                await self.resync()
            except _DOWN as exc:
                log.warning("cluster resync failed (%s); retrying", exc)

    async def _notified(self, payload: str) -> None:
        """``devices`` / ``cases``: re-read them; ``alert <id> <application_name>``: another instance
        changed an alert (its room stream already has it; ours gets it now)."""
        kind, _, rest = payload.partition(" ")
        if kind != "alert":
            self.wake.set()
            return
        alert_id, _, origin = rest.partition(" ")
        if self.on_alert is not None and origin != self.application:
            try:
                await self.on_alert(alert_id)
            except DRIVER_ERRORS as exc:
                log.warning("reading changed alert %s failed (%s)", alert_id, exc)

    async def _listen(self) -> None:
        backoff = Backoff(0.2, 5.0)
        channel = f"{self.db.schema}_changes"
        while True:
            try:
                async for payload in self.db.notifications(channel):
                    if payload is None:  # listening: whatever was notified while we were away
                        backoff.reset()
                        self.wake.set()
                    else:
                        await self._notified(payload)
            except DRIVER_ERRORS as exc:
                log.warning("cluster LISTEN failed (%s); reconnecting", exc)
            await asyncio.sleep(backoff.next_wait())
