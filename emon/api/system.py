"""Health, readiness and metrics (no auth). People and tokens are in :mod:`emon.api.users`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from emon import metrics
from emon.api.deps import runtime

if TYPE_CHECKING:
    from emon.ingest.pipeline import Health
    from emon.runtime import Runtime

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """Ready when PostgreSQL, Redis and the MQTT broker are reachable, every background loop is
    running and the ingest pipeline is moving (no message has waited longer than ``EMON_STALL_S``
    without a batch being committed in that time), and (several instances) this instance runs the
    cluster's partition count and protocol."""
    rt = runtime(request)
    health = _refresh(rt)
    checks: dict[str, bool] = {}
    checks["postgres"] = await rt.db.ping(timeout_s=2)
    try:
        checks["redis"] = await rt.live.ping()
    except Exception:
        checks["redis"] = False
    checks["mqtt"] = rt.mqtt.connected.is_set()
    dead = rt.dead_tasks()
    checks["loops"] = not dead
    checks["ingest"] = not health.stalled
    # Several instances: not ready while this one refuses to evaluate (another partition count or protocol).
    checks["cluster"] = rt.owner is None or rt.owner.refused is None
    ok = all(checks.values())
    body: dict[str, Any] = {
        "status": "ready" if ok else "not ready",
        "checks": checks,
        "queue": health.waiting,
        "ingest": {
            "waiting": health.waiting,
            "oldest_wait_s": round(health.oldest_wait_s, 3),
            "since_commit_s": round(health.since_commit_s, 3),
            "stalled": health.stalled,
            "stall_s": rt.pipeline.stall_s,
        },
        "dead_tasks": dead,
    }
    if rt.owner is not None and rt.coordinator is not None:
        # Several instances: which partitions of the cases this instance evaluates, and whether it runs
        # the instance-wide duties (docs/architecture.md, "Several instances").
        body["cluster"] = {
            "instance": rt.settings.instance_id,
            "partitions": rt.owner.owned(),
            "coordinator": rt.coordinator.lease.epoch is not None,
        }
    return JSONResponse(body, status_code=200 if ok else 503)


def _refresh(rt: Runtime) -> Health:
    """Set the gauges that describe progress from the pipeline's state now (at scrape time)."""
    health = rt.pipeline.health(time.monotonic())
    metrics.INGEST_WAITING.set(health.waiting)
    metrics.QUEUE_DEPTH.set(health.waiting)
    metrics.INGEST_OLDEST_WAIT.set(health.oldest_wait_s)
    metrics.INGEST_SINCE_COMMIT.set(health.since_commit_s)
    metrics.INGEST_STALLED.set(int(health.stalled))
    return health


@router.get("/metrics")
async def metrics_endpoint(request: Request) -> Response:
    _refresh(runtime(request))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
