"""Prometheus metrics (one registry, the process default)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import numpy as np
from numpy.typing import NDArray
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# The label text of a bucket bound, as prometheus_client writes it (the library does not annotate it).
_le_text = cast(Callable[[float], str], floatToGoString)


class BatchHistogram(Collector):
    """A histogram exposed as prometheus_client's own is (``_bucket`` by ``le``, ``_count``, ``_sum``),
    fed a batch of values per call: ``Histogram.observe`` costs about 2 µs a value (a lock per sum and
    bucket, a Python loop over the buckets), which was 4 % of emon's CPU per fix under overload, where
    a batch holds 1,000 fixes (issue #14). A value goes in the first bucket whose bound it does not
    exceed, as ``observe`` puts it."""

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self._bounds = np.array(sorted({*map(float, buckets), math.inf}), dtype=np.float64)
        self._counts = np.zeros(len(self._bounds), dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()  # the exposition may be collected from another thread
        if registry is not None:
            registry.register(self)

    def observe_many(self, values: Sequence[float] | NDArray[np.float64]) -> None:
        """Count every one of ``values``."""
        if len(values) == 0:
            return
        v = np.asarray(values, dtype=np.float64)
        counts = np.bincount(np.searchsorted(self._bounds, v, side="left"), minlength=len(self._bounds))
        total = float(v.sum())
        with self._lock:
            self._counts += counts[: len(self._bounds)]  # a NaN sorts past +Inf: counted in the sum only
            self._sum += total

    def observe(self, value: float) -> None:
        self.observe_many([value])

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total = self._sum
        yield HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=[(_le_text(b), float(c)) for b, c in zip(self._bounds.tolist(), cumulative, strict=True)],
            sum_value=total,
        )

    def describe(self) -> Iterator[Metric]:
        yield HistogramMetricFamily(self.name, self.documentation)


FIXES_RECEIVED = Counter("emon_fixes_received", "Fixes received (elements of fix messages)")
FIXES_ACCEPTED = Counter("emon_fixes_accepted", "Fixes stored (new, valid, registered device)")
FIXES_DUPLICATE = Counter("emon_fixes_duplicate", "Valid fixes already stored (redelivery, re-upload)")
MESSAGES_RECEIVED = Counter("emon_messages_received", "MQTT messages received", ["kind"])
REJECTED = Counter("emon_rejected", "Messages or batch elements sent to dead letters", ["reason"])
EVENTS_ACCEPTED = Counter("emon_device_events_accepted", "Device events stored", ["type"])
INGEST_LAG = BatchHistogram(
    "emon_ingest_lag_seconds",
    "Fix time to stored, seconds (includes device buffering)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
RECEIVE_TO_STORED = Histogram(
    "emon_receive_to_stored_seconds",
    "MQTT receive to stored in PostgreSQL and Redis, seconds",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
QUEUE_DEPTH = Gauge("emon_ingest_queue_depth", "Messages received and not yet stored")
STORAGE_ERRORS = Counter("emon_storage_errors", "Failed storage attempts (retried)", ["backend"])
EVALUATION_SECONDS = Histogram(
    "emon_evaluation_seconds",
    "Time to evaluate one batch of fixes against all rules, seconds",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
DEAD_LETTERS_STORED = Counter(
    "emon_dead_letters_stored", "Dead-letter rows written (one per message at most)"
)
DEAD_LETTERS_OVER_BUDGET = Counter(
    "emon_dead_letters_over_budget",
    "Messages refused without a dead-letter row: the dead-letter budget (per minute or total size) was spent",
    ["reason"],
)
DEAD_LETTER_ROWS = Gauge("emon_dead_letter_rows", "Rows in the dead-letter table, as last measured")
DEAD_LETTER_BYTES = Gauge(
    "emon_dead_letter_bytes", "Bytes of the dead-letter table as the budget counts them"
)
STORAGE_REFUSED = Counter(
    "emon_storage_refused",
    "Storage attempts PostgreSQL refused for a message's content (isolated, not retried)",
)
INGEST_WAITING = Gauge(
    "emon_ingest_waiting_messages", "Messages received and not yet committed (queued or storing)"
)
INGEST_OLDEST_WAIT = Gauge(
    "emon_ingest_oldest_wait_seconds", "How long the oldest uncommitted message has waited"
)
INGEST_SINCE_COMMIT = Gauge("emon_ingest_seconds_since_commit", "Seconds since the last batch was committed")
INGEST_STALLED = Gauge(
    "emon_ingest_stalled", "1 when messages wait and nothing was committed for EMON_STALL_S"
)
TASK_UP = Gauge(
    "emon_background_task_up", "1 while the named background task runs, 0 once it has ended", ["task"]
)
LEASE_HELD = Gauge(
    "emon_lease_held", "1 while this instance holds the named lease (epoch in emon_lease_epoch)", ["lease"]
)
LEASE_EPOCH = Gauge("emon_lease_epoch", "The epoch of the named lease this instance last held", ["lease"])
DUTY_RUNS = Counter(
    "emon_duty_runs",
    "Passes of an instance-wide duty (alerts: escalation and silence; orders: the lifecycle) this instance ran",
    ["duty"],
)
LAYOUT_MISMATCH = Gauge(
    "emon_cluster_layout_mismatch",
    "1 while this instance refuses to evaluate: its partition count or protocol differs from the cluster's",
)
OWNED_PARTITIONS = Gauge(
    "emon_owned_partitions", "Partitions of the cases this instance holds and evaluates (several instances)"
)
FENCED_WRITES = Counter(
    "emon_fenced_writes",
    "Writes refused because this instance no longer holds the lease they need",
    ["lease"],
)
DECISION_STAGES = Histogram(
    "emon_decision_stage_seconds",
    "Where an evaluation decision's time goes, one sample per decision and stage: received (the batch's "
    "first message) to its evaluation starting, evaluating the batch, waiting for the batch before to be "
    "alerted and persisted, and alerting (the alert transaction)",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 1, 5),
)
