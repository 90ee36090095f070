"""The ingest-lag histogram takes a batch of values per call and exposes what prometheus_client's own
Histogram exposes for the same values, one by one (issue #14)."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram

from emon.metrics import BatchHistogram

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600)


def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (s.name, s.labels.get("le", "")): s.value
        for m in registry.collect()
        for s in m.samples
        if not s.name.endswith("_created")
    }


@pytest.mark.parametrize(
    "batches",
    [
        [],
        [[0.0]],
        [[0.05, 0.1, 0.25]],  # on a bound: in that bucket, as observe puts it
        [[0.0501, 0.7, 1.0, 2.5], [3600.0, 3600.5, 1e9], [0.02]],
        [[float(i) / 7 for i in range(5000)]],
    ],
)
def test_batches_expose_what_observe_one_by_one_exposes(batches: list[list[float]]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    batch_histogram = BatchHistogram("lag_seconds", "lag", BUCKETS, registry=ours)
    reference = Histogram("lag_seconds", "lag", buckets=BUCKETS, registry=theirs)
    for values in batches:
        batch_histogram.observe_many(values)
        for v in values:
            reference.observe(v)
    got, want = samples(ours), samples(theirs)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12), key
    assert got[("lag_seconds_count", "")] == sum(map(len, batches))


def test_one_value_and_infinity() -> None:
    registry = CollectorRegistry()
    h = BatchHistogram("x_seconds", "x", (1.0,), registry=registry)
    h.observe(0.5)
    h.observe_many([math.inf])
    got = samples(registry)
    assert got[("x_seconds_bucket", "1.0")] == 1
    assert got[("x_seconds_bucket", "+Inf")] == 2
    assert got[("x_seconds_sum", "")] == math.inf
