"""The fix → alert decided histogram: one sample per decided alert change, fine buckets where the target is."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from benchmarks.e2e_decisions import stored_changes
from emon.alerts import metrics
from emon.geofence.events import EvalEventType as E
from tests.alerts.conftest import DB_URL, World
from tests.alerts.helpers import prox

pytestmark = pytest.mark.integration
NAME = "emon_fix_to_alert_decided_seconds"


def _count() -> float:
    return REGISTRY.get_sample_value(f"{NAME}_count") or 0.0


async def test_a_batch_of_n_decided_alerts_observes_n_samples(world: World) -> None:
    now = datetime.now(UTC)
    # three episodes of the contact ban: three alerts opened in one batch (one transaction)
    batch = [prox(E.PROXIMITY_BREACH, now, 150.0, episode=now - timedelta(minutes=k)) for k in range(3)]
    service = world.service()
    try:
        before = _count()
        await service.on_evaluation(batch, now, time.monotonic())
        assert _count() - before == 3
        # two of them again: two alerts updated, two changes, two samples
        before = _count()
        await service.on_evaluation(batch[:2], now, time.monotonic())
        assert _count() - before == 2
        # the benchmark counts the same decisions from the rows (benchmarks/e2e_decisions.py)
        stored = stored_changes(DB_URL, world.db.schema, since=now + timedelta(hours=1))
        assert (stored.by_action, stored.by_type, stored.before) == (
            {"opened": 3, "updated": 2},
            {"proximity_breach": 3},
            5,
        )
        assert stored_changes(DB_URL, world.db.schema, since=now - timedelta(hours=1)).before == 0
    finally:
        await service.close()


def test_buckets_resolve_the_50_ms_target() -> None:
    les = [
        float(s.labels["le"]) for s in metrics.FIX_TO_ALERT.collect()[0].samples if s.name.endswith("_bucket")
    ]
    bounds = [b for b in les if b <= 0.05]
    assert 0.05 in bounds  # the share of decisions within the target is read exactly
    assert len(bounds) >= 8  # a p99 below the target is read inside a bucket of at most 10 ms
    assert max(b - a for a, b in zip([0.0, *bounds], bounds, strict=False)) <= 0.01 + 1e-9
