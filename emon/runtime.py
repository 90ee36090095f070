"""The running service: every adapter and background loop, opened and closed together.

Background loops are named tasks owned by the runtime, started and stopped by the FastAPI lifespan;
a loop that dies takes the service down loudly rather than leaving it half-alive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from emon import collector, metrics
from emon.alerts.service import AlertService
from emon.case import Case, CaseStatus
from emon.casebook import CaseBook
from emon.cluster.coordinator import COORDINATOR, Coordinator
from emon.cluster.owner import PartitionOwner
from emon.cluster.sync import ClusterSync
from emon.device import DeviceRegistry
from emon.evaluation import AlertSink, Evaluation
from emon.geofence.config import EvalConfig
from emon.geofence.engine import Engine
from emon.hub import Hub
from emon.ingest.mqtt import MqttIngest
from emon.ingest.pipeline import Pipeline
from emon.orders import config as order_config
from emon.orders.channel import PaperworkChannel
from emon.orders.service import OrderDesk
from emon.settings import Settings
from emon.signing import load_private_key
from emon.storage import alerts as alert_store
from emon.storage.audit import AuditLog
from emon.storage.cases import CaseRecords
from emon.storage.compaction import run_compaction
from emon.storage.lease import Lease
from emon.storage.live import LiveState
from emon.storage.open_cases import stream_open_cases
from emon.storage.postgres import Database, maintain_partitions
from emon.storage.recall import RecallingLive
from emon.storage.records import Records
from emon.storage.retention import run_retention
from emon.storage.users import UserRecords
from emon.waiting import within

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 5.0


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(
            settings.database_url,
            settings.db_schema,
            application=f"emon:{settings.instance_id}",
            statement_timeout_s=settings.pg_statement_timeout_s or None,
        )
        self.records = Records(self.db)
        self.cases = CaseRecords(self.db)
        self.registry = DeviceRegistry()
        # Redis is a cache: what it lost is read back from PostgreSQL (silence, latest positions).
        self.live: LiveState = RecallingLive.connect(
            settings.redis_url, settings.redis_prefix, self.records, lambda: self.registry.by_id.keys()
        )
        self.casebook = CaseBook()
        self.hub = Hub()
        self.users = UserRecords(self.db)
        self.audit = AuditLog(
            self.db,
            None if settings.signing_key_file is None else load_private_key(settings.signing_key_file),
            checkpoint_every=settings.audit_checkpoint_every,
            checkpoint_s=settings.audit_checkpoint_s,
        )
        if settings.signing_key_file is None:
            log.warning("EMON_SIGNING_KEY_FILE is not set: the audit log is hash-chained but not signed")
        self.pipeline = Pipeline.from_settings(settings, self.records, self.live, self.registry)
        self.mqtt = MqttIngest.from_settings(settings, self.pipeline.submit)
        self.alerts = AlertService(self.db, settings, self.hub, self.casebook, self.registry, self.live)
        self.pipeline.ack_handler = self.alerts.on_ack
        self.evaluation = self._evaluation(self.cases, self.alerts, behind=settings.evaluation_behind)
        self.orders = OrderDesk(
            self.db,
            self.hub,
            self.casebook,
            self.cases,
            self.alerts,
            offsets_days=order_config.reminder_days(settings.order_reminder_days),
            leads=order_config.leads(settings.order_unit_leads),
            lookback=timedelta(days=settings.order_violation_lookback_days),
            key_file=settings.signing_key_file,
            evidence_s=(settings.evidence_before_s, settings.evidence_after_s),
            police_url=settings.order_police_url,
            prosecutor_url=settings.order_prosecutor_url,
        )
        # Paperwork goes through the same durable outbox, on channels of its own (docs/order-schema.md).
        self.paperwork = PaperworkChannel(
            None if settings.webhook_secret is None else str(settings.webhook_secret)
        )
        self.alerts.worker.senders["police_orders"] = self.paperwork.send
        self.alerts.worker.senders["prosecutor"] = self.paperwork.send
        # Several instances: the cases are spread over the live instances in partitions, each evaluated by
        # the holder of its lease from what every instance stored; the coordinator lease's holder runs the
        # instance-wide time-based duties (docs/architecture.md, "Several instances").
        self.owner: PartitionOwner | None = None
        self.coordinator: Coordinator | None = None
        self.sync: ClusterSync | None = None
        if settings.instance_id:
            self.owner = PartitionOwner(
                self.db,
                self.records,
                self.casebook,
                self.alerts,
                self._evaluation,
                instance_id=settings.instance_id,
                partitions=settings.partitions,
                ttl_s=settings.lease_s,
                renew_s=settings.lease_renew_s,
                tick_s=settings.tick_s,
            )
            self.coordinator = Coordinator(
                Lease(self.db, COORDINATOR, settings.instance_id, settings.lease_s),
                self.alerts,
                self.orders,
                renew_s=settings.lease_renew_s,
                tick_s=settings.tick_s,
                order_tick_s=settings.order_tick_s,
            )
            self.sync = ClusterSync(
                self.db,
                self.records,
                self.cases,
                self.registry,
                self.casebook,
                self._case_seen,
                on_alert=self._alert_seen,
                application=f"emon:{settings.instance_id}",
            )
            self.pipeline.consumers.append(self.owner)
        else:
            self.pipeline.consumers.append(self.evaluation)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        # A background task that dies ends the process (non-zero exit, so a supervisor restarts it):
        # ``on_fatal`` is how the server is told to stop; ``fatal`` names the task that died.
        self.on_fatal: Callable[[str], None] | None = None
        self.fatal: str | None = None
        self._closing = False

    async def open(self) -> None:
        await self.db.open()
        await self.db.migrate()
        await self.live.ping()
        self.registry.replace_all(await self.records.devices())
        async for case in stream_open_cases(self.db):  # one document at a time (emon.storage.open_cases)
            self.casebook.put(case)
        await self.alerts.open()
        if self.owner is not None and self.coordinator is not None and self.sync is not None:
            self.spawn("cluster-owner", self.owner.run())
            self.spawn("cluster-coordinator", self.coordinator.run())  # alerting's tick and orders
            self.spawn("cluster-sync", self.sync.run())
        else:
            await self.evaluation.load(self.casebook.documents())
            await self.evaluation.recover(self.records, datetime.now(UTC))
            self.spawn("evaluation-tick", self.evaluation.run_ticks(self.settings.tick_s))
            self.spawn("order-lifecycle", self.orders.run(self.settings.order_tick_s))
        self.spawn("alert-delivery", self.alerts.run_delivery())
        self.spawn("fix-partitions", maintain_partitions(self.db))
        self.spawn("ingest-pipeline", self.pipeline.run())
        self.spawn("dead-letter-maintenance", self.pipeline.maintain_dead_letters())
        self.spawn("mqtt-ingest", self.mqtt.run())
        collector.observe_pauses()
        if self.settings.gc_freeze:
            log.info("%d start-up objects exempted from garbage collection", collector.freeze_start_up())
        s = self.settings
        self.spawn(
            "evidence-compaction",
            run_compaction(
                self.db,
                dense_days=s.evidence_dense_days,
                before_s=s.evidence_before_s,
                after_s=s.evidence_after_s,
                interval_s=s.retention_check_s,
            ),
        )
        if s.retention_days > 0:
            self.spawn("retention", run_retention(self.db, s.retention_days, s.retention_check_s, self.audit))

    def _evaluation(self, cases: CaseRecords, alerts: AlertSink, *, behind: int = 0) -> Evaluation:
        """An evaluation with an engine of its own (one instance: every case, up to ``behind`` batches'
        alerting and persisting overlapping the next batches' evaluation; several: one partition's)."""
        s = self.settings
        engine = Engine(EvalConfig(freshness_s=s.freshness_s, stale_s=s.stale_s))
        return Evaluation(
            engine,
            cases,
            self.casebook,
            self.hub,
            alerts=alerts,
            snapshot_s=s.evidence_snapshot_s,
            behind=behind,
        )

    async def case_changed(self, case: Case, version: int | None = None) -> None:
        """A case was created, replaced or closed (as order ``version``): update everything that holds it in memory."""
        self.casebook.put(case)
        if self.owner is not None:
            await self.owner.case_changed(case, version)
        else:
            await self.evaluation.case_changed(case, version)
        if case.status is CaseStatus.CLOSED:
            await self.alerts.case_closed(case.case_id, datetime.now(UTC))
            await self.orders.case_closed(case, version or 1, datetime.now(UTC))

    async def _case_seen(self, case: Case) -> None:
        """Another instance changed ``case`` (seen by the cluster sync)."""
        self.casebook.put(case)
        if self.owner is not None:
            await self.owner.case_changed(case, None)

    async def _alert_seen(self, alert_id: str) -> None:
        """Another instance changed alert ``alert_id``: show it on this instance's room stream."""
        async with self.db.pool.connection() as conn:
            alert = await alert_store.get(conn, alert_id)
        if alert is not None:
            self.alerts.room.publish(alert)

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self.tasks[name] = task
        metrics.TASK_UP.labels(name).set(1)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """Every background loop runs until the runtime closes: one that ends before (with an error, or
        returning, or cancelled by someone else) leaves the service half-alive, so it ends the process."""
        metrics.TASK_UP.labels(task.get_name()).set(0)
        if self._closing:
            return
        error = None if task.cancelled() else task.exception()
        log.critical("background task %s ended; stopping emon", task.get_name(), exc_info=error)
        if self.fatal is None:
            self.fatal = task.get_name()
            if self.on_fatal is not None:
                self.on_fatal(task.get_name())

    def dead_tasks(self) -> list[str]:
        """Names of background tasks that have ended while the runtime is open."""
        return sorted(name for name, task in self.tasks.items() if task.done())

    async def wait_connected(self, within_s: float = 10.0) -> None:
        await within(self.mqtt.connected.wait(), within_s)

    async def close(self) -> None:
        self._closing = True
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            # A loop stuck in a library's teardown (an MQTT disconnect the broker never answers) must
            # not hold the shutdown: the broker keeps our session, and the outbox keeps deliveries.
            _, stuck = await asyncio.wait(self.tasks.values(), timeout=CLOSE_WAIT_S)
            for task in stuck:
                log.warning("background task %s did not stop within %ss", task.get_name(), CLOSE_WAIT_S)
        self.tasks.clear()
        await self.evaluation.close()  # the batch still being alerted and persisted, if any
        if self.owner is not None and self.coordinator is not None:
            # A clean stop hands over at once, not after the leases expire.
            await self.owner.release_all()
            await self.coordinator.lease.release()
        try:
            await self.alerts.close()
        except Exception:
            log.exception("closing the alert channels failed")
        await self.paperwork.close()
        await self.live.close()
        await self.db.close()
