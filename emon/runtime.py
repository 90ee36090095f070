"""The running service: every adapter and background loop, opened and closed together.

Background loops are named tasks owned by the runtime, started and stopped by the FastAPI lifespan;
a loop that dies takes the service down loudly rather than leaving it half-alive.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from emon.alerts.service import AlertService
from emon.api.auth import Authenticator
from emon.case import Case, CaseStatus
from emon.casebook import CaseBook
from emon.evaluation import Evaluation
from emon.geofence.config import EvalConfig
from emon.geofence.engine import Engine
from emon.hub import Hub
from emon.ingest.decode import Limits
from emon.ingest.mqtt import MqttIngest
from emon.ingest.pipeline import Pipeline
from emon.ingest.topics import DeviceRegistry
from emon.settings import Settings
from emon.storage.cases import CaseRecords
from emon.storage.live import LiveState
from emon.storage.postgres import Database, maintain_partitions
from emon.storage.records import Records

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 5.0


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url, settings.db_schema)
        self.records = Records(self.db)
        self.cases = CaseRecords(self.db)
        self.live = LiveState.from_url(settings.redis_url, settings.redis_prefix)
        self.registry = DeviceRegistry()
        self.casebook = CaseBook()
        self.hub = Hub()
        self.auth = Authenticator(self.records, settings.admin_token)
        self.pipeline = Pipeline(
            self.records,
            self.live,
            self.registry,
            prefix=settings.mqtt_topic_prefix,
            limits=Limits(settings.max_payload_bytes, timedelta(seconds=settings.max_future_s)),
            batch_max=settings.batch_max,
            batch_wait_s=settings.batch_wait_ms / 1000,
        )
        host, port = settings.mqtt_host_port
        self.mqtt = MqttIngest(
            host, port, settings.mqtt_client_id, settings.mqtt_topic_prefix, self.pipeline.submit, settings.mqtt_protocol
        )
        self.alerts = AlertService(self.db, settings, self.hub, self.casebook, self.registry, self.live)
        self.pipeline.ack_handler = self.alerts.on_ack
        engine = Engine(EvalConfig(freshness_s=settings.freshness_s, stale_s=settings.stale_s))
        self.evaluation = Evaluation(engine, self.cases, self.casebook, self.hub, alerts=self.alerts)
        self.pipeline.consumers.append(self.evaluation)
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def open(self) -> None:
        await self.db.open()
        await self.db.migrate()
        await self.live.ping()
        self.registry.replace_all(await self.records.devices())
        for case in await self.cases.all(CaseStatus.OPEN):
            self.casebook.put(case)
        await self.alerts.open()
        await self.evaluation.load(self.casebook.all())
        await self.evaluation.recover(self.records, datetime.now(UTC))
        self.spawn("evaluation-tick", self.evaluation.run_ticks(self.settings.tick_s))
        self.spawn("alert-delivery", self.alerts.run_delivery())
        self.spawn("fix-partitions", maintain_partitions(self.db))
        self.spawn("ingest-pipeline", self.pipeline.run())
        self.spawn("mqtt-ingest", self.mqtt.run())

    async def case_changed(self, case: Case) -> None:
        """A case was created, replaced or closed: update everything that holds it in memory."""
        self.casebook.put(case)
        await self.evaluation.case_changed(case)
        if case.status is CaseStatus.CLOSED:
            await self.alerts.case_closed(case.case_id, datetime.now(UTC))

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self.tasks[name] = task

    @staticmethod
    def _task_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.critical("background task %s died", task.get_name(), exc_info=task.exception())

    async def wait_connected(self, within_s: float = 10.0) -> None:
        await asyncio.wait_for(self.mqtt.connected.wait(), within_s)

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            # A loop stuck in a library's teardown (an MQTT disconnect the broker never answers) must
            # not hold the shutdown: the broker keeps our session, and the outbox keeps deliveries.
            _, stuck = await asyncio.wait(self.tasks.values(), timeout=CLOSE_WAIT_S)
            for task in stuck:
                log.warning("background task %s did not stop within %ss", task.get_name(), CLOSE_WAIT_S)
        self.tasks.clear()
        try:
            await self.alerts.close()
        except Exception:
            log.exception("closing the alert channels failed")
        await self.live.close()
        await self.db.close()
