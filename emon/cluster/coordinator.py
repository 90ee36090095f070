"""Instance-wide time-based duties, run by one instance at a time: the coordinator lease's holder.

Alerting's tick (ack deadlines, unacknowledged victim warnings, silence / no_communication, room-task
escalation) and the orders lifecycle pass (reminders, expiry, police and prosecutor messages) look at
every case, not one partition's; they run where the ``coordinator`` lease is held, and their writes are
fenced by it (the same :class:`~emon.storage.lease.Fence` as the partitions'). A dead coordinator is
replaced within ``ttl_s + renew_s`` seconds; a duty due meanwhile runs at the new holder's first pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from emon import metrics
from emon.alerts.service import AlertService
from emon.errors import StorageError
from emon.orders.service import OrderDesk
from emon.storage.lease import Fence, Fenced, Lease
from emon.storage.postgres import DRIVER_ERRORS

log = logging.getLogger(__name__)

COORDINATOR = "coordinator"
_DOWN: tuple[type[Exception], ...] = (StorageError, *DRIVER_ERRORS)


class Coordinator:
    """Holds (or waits for) the coordinator lease; while held, ticks alerting and the orders desk."""

    def __init__(
        self,
        lease: Lease,
        alerts: AlertService,
        orders: OrderDesk,
        *,
        renew_s: float,
        tick_s: float,
        order_tick_s: float,
    ) -> None:
        self.lease = lease
        self.alerts = alerts
        self.orders = orders
        self.renew_s = renew_s
        self.tick_s = tick_s
        self.order_tick_s = order_tick_s
        alerts.fence = orders.fence = Fence(lease)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._hold(), name="coordinator-lease")
            tg.create_task(
                self._every("alerts", self.tick_s, self.alerts.tick), name="coordinator-alert-tick"
            )
            tg.create_task(
                self._every("orders", self.order_tick_s, self.orders.tick), name="coordinator-orders"
            )

    async def _hold(self) -> None:
        while True:
            await self.lease.try_hold()
            await asyncio.sleep(self.renew_s)

    async def _every(
        self, name: str, interval_s: float, duty: Callable[[datetime], Awaitable[object]]
    ) -> None:
        """Run ``duty`` every ``interval_s`` while we hold the lease (and at once when we take it)."""
        last: float | None = None
        held: int | None = None
        while True:
            epoch = self.lease.epoch
            if epoch is not None and (held != epoch or last is None or time.monotonic() - last >= interval_s):
                last, held = time.monotonic(), epoch
                try:
                    await duty(datetime.now(UTC))
                    metrics.DUTY_RUNS.labels(name).inc()
                except Fenced as exc:
                    log.warning("%s", exc)
                except _DOWN as exc:
                    log.warning("coordinator duty: PostgreSQL unreachable (%s)", exc)
            await asyncio.sleep(min(interval_s, self.renew_s / 2))
