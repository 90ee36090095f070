"""The outbox worker: delivers queued notifications at least once, surviving restarts.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` (several workers never send the same row at the
same time), sent, and updated in the same transaction. A crash between send and commit means the
row is sent again after restart — hence *at least once*; every message carries its stable delivery
id (``notification_id`` / ``webhook-id``) so recipients deduplicate. Wake-ups come from an
in-process event and from PostgreSQL ``LISTEN``; a poll every ``poll_s`` is the backstop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

from emon.alerts import metrics
from emon.alerts.channels import DeliveryError
from emon.alerts.config import AlertConfig
from emon.backoff import Backoff
from emon.storage import alerts as st
from emon.storage.postgres import DRIVER_ERRORS, Database
from emon.waiting import woken

log = logging.getLogger(__name__)

# Called inside the worker's transaction when a delivery first crosses the failure alarm threshold.
FailingHook = Callable[[st.Conn, st.Delivery, str, datetime], Awaitable[None]]
# One sender per channel name ("victim", "dispatch", "command"): sends one stored row, raises DeliveryError.
Sender = Callable[[st.Delivery, datetime], Awaitable[None]]


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """The wait before retrying a delivery that failed ``attempts`` times: uniformly in [½, 1] ×
    min(max, base × 2^attempts) seconds. A function of the row's stored attempt count, not a
    :class:`~emon.backoff.Backoff`, because the retry state lives in the outbox row, not in a loop."""
    ceiling = min(max_s, base_s * (2 ** min(attempts, 30)))
    return float(ceiling * random.uniform(0.5, 1.0))


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        config: AlertConfig,
        senders: Mapping[str, Sender],
        on_failing: FailingHook,
        notify_channel: str,
    ) -> None:
        self.db = db
        self.config = config
        self.senders = dict(senders)
        self.on_failing = on_failing
        self.notify_channel = notify_channel
        self.wake = asyncio.Event()

    async def deliver_due(self, now: datetime) -> int:
        """Send every due delivery once (one batch, concurrently: a slow webhook never holds a victim
        warning back); record the outcomes in the claiming transaction (one statement for the round,
        then the failing alarm of each delivery that just crossed its threshold); return how many were
        tried."""
        async with self.db.pool.connection() as conn, conn.transaction():
            due = await st.claim_due(conn, now, self.config.batch_size)
            if not due:
                return 0
            outcomes = await asyncio.gather(*(self._send(d, now) for d in due))
            attempts = [
                self._attempt(d, error, latency_s, now)
                for d, (error, latency_s) in zip(due, outcomes, strict=True)
            ]
            await st.record_attempts(conn, attempts, now)
            for d, (error, _), attempt in zip(due, outcomes, attempts, strict=True):
                if error is not None and attempt.failing and not d.failing:
                    metrics.DELIVERY_FAILING.labels(d.channel).inc()
                    log.error("delivery %s (%s) keeps failing: %s", d.delivery_id, d.channel, error)
                    await self.on_failing(conn, d, error, now)
        return len(due)

    async def _send(self, d: st.Delivery, now: datetime) -> tuple[str | None, float]:
        metrics.DELIVERY_ATTEMPTS.labels(d.channel).inc()
        started = time.monotonic()
        try:
            sender = self.senders.get(d.channel)
            if sender is None:
                raise DeliveryError(f"no channel {d.channel!r}")
            await sender(d, now)
        except DeliveryError as exc:
            return str(exc), time.monotonic() - started
        return None, time.monotonic() - started

    def _attempt(self, d: st.Delivery, error: str | None, latency_s: float, now: datetime) -> st.Attempt:
        """The record of one attempt and the row's next state: a failure is retried after a backoff (and
        is failing once it crossed the attempts or age threshold); a victim warning is re-sent until
        acknowledged; anything else is delivered."""
        if error is not None:
            metrics.DELIVERY_FAILURES.labels(d.channel).inc()
            wait = backoff_s(
                d.attempts, self.config.dispatch_backoff_base_s, self.config.dispatch_backoff_max_s
            )
            age = (now - d.created_at).total_seconds() if d.created_at else 0.0
            failing = (
                d.attempts + 1 >= self.config.failing_after_attempts or age >= self.config.failing_after_s
            )
            return st.Attempt(
                d.delivery_id,
                ok=False,
                latency_s=latency_s,
                detail=error,
                state=d.state,
                next_attempt_at=now + timedelta(seconds=wait),
                failing=failing or d.failing,
            )
        if d.first_sent_at is None and d.created_at is not None:
            metrics.DELIVERY_LATENCY.labels(d.channel).observe(max(0.0, (now - d.created_at).total_seconds()))
        if d.requires_ack:  # keep re-sending the same notification until the device acknowledges it
            state, next_at = "sent", now + timedelta(seconds=self.config.victim_resend_s)
        else:
            state, next_at = "delivered", now
        return st.Attempt(
            d.delivery_id,
            ok=True,
            latency_s=latency_s,
            detail="ok",
            state=state,
            next_attempt_at=next_at,
            failing=d.failing,
        )

    async def run(self) -> None:
        """Forever: deliver what is due, then wait for a wake-up or ``poll_s``. Errors are counted, not fatal."""
        backoff = Backoff(0.5, 30.0)
        while True:
            self.wake.clear()  # before the pass: a wake-up during it is not lost
            try:
                while await self.deliver_due(datetime.now(UTC)) >= self.config.batch_size:
                    pass
                backoff.reset()
            except DRIVER_ERRORS as exc:
                metrics.DELIVERY_FAILURES.labels("outbox").inc()
                log.warning("outbox pass failed (%s); retrying", exc)
                await asyncio.sleep(backoff.next_wait())
                continue
            await woken(self.wake, self.config.poll_s)

    async def listen(self) -> None:
        """Forever: turn PostgreSQL notifications from other processes into wake-ups."""
        backoff = Backoff(0.5, 30.0)
        while True:
            try:
                async for _ in self.db.notifications(self.notify_channel):
                    backoff.reset()
                    self.wake.set()
            except DRIVER_ERRORS as exc:
                log.warning("outbox LISTEN failed (%s); reconnecting", exc)
                await asyncio.sleep(backoff.next_wait())
