"""Prometheus metrics (one registry, the process default)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FIXES_RECEIVED = Counter("emon_fixes_received", "Fixes received (elements of fix messages)")
FIXES_ACCEPTED = Counter("emon_fixes_accepted", "Fixes stored (new, valid, registered device)")
FIXES_DUPLICATE = Counter("emon_fixes_duplicate", "Valid fixes already stored (redelivery, re-upload)")
MESSAGES_RECEIVED = Counter("emon_messages_received", "MQTT messages received", ["kind"])
REJECTED = Counter("emon_rejected", "Messages or batch elements sent to dead letters", ["reason"])
EVENTS_ACCEPTED = Counter("emon_device_events_accepted", "Device events stored", ["type"])
INGEST_LAG = Histogram(
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
