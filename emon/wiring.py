"""What the pipeline feeds: evaluation and alerting are attached here, at the edge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from emon.alerts.service import AlertService
from emon.evaluation import Evaluation
from emon.geofence.config import EvalConfig
from emon.geofence.engine import Engine

if TYPE_CHECKING:
    from emon.runtime import Runtime


async def attach(rt: Runtime) -> None:
    """Attach evaluation and alerting to the runtime's pipeline, tick loop and delivery worker."""
    alerts = AlertService(rt.db, rt.settings, rt.hub, rt.casebook, rt.registry, rt.live)
    await alerts.open()
    rt.alerts = alerts
    rt.closers.append(alerts.close)
    rt.pipeline.ack_handler = alerts.on_ack

    config = EvalConfig(freshness_s=rt.settings.freshness_s, stale_s=rt.settings.stale_s)
    evaluation = Evaluation(Engine(config), rt.cases, rt.casebook, rt.hub, alerts=alerts)
    await evaluation.load(rt.casebook.all())
    await evaluation.recover(rt.records, datetime.now(UTC))
    rt.evaluation = evaluation
    rt.pipeline.consumers.append(evaluation)
    rt.case_listeners.append(evaluation.case_changed)
    rt.spawn("evaluation-tick", evaluation.run_ticks(rt.settings.tick_s))
    rt.spawn("alert-delivery", alerts.run_delivery())
