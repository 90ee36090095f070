"""Python's cyclic garbage collector kept off the alert path.

A full collection (the oldest generation) walks every object the collector tracks, on the one event
loop that also decides alerts: measured on the reference machine, 58 ms with the objects of 10,000
monitored devices and 220 ms with 100,000 — a pause every decision of that moment waits for. Almost
all of those objects are built at start-up and kept for the life of the process (cases, compiled
rules, the device registry, modules). :func:`freeze_start_up` moves them out of the collector's
generations (``gc.freeze``), so later collections walk only what was allocated since. Frozen objects
are still freed by reference counting when dropped; only garbage *cycles* among them would stay.

:func:`observe_pauses` times every collection (``emon_gc_pause_seconds`` by generation).
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Histogram

GC_PAUSE = Histogram(
    "emon_gc_pause_seconds",
    "Pauses of Python's cyclic garbage collector, by generation collected",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

_started: list[float] = []


def _time_collection(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
    elif _started:
        GC_PAUSE.labels(str(info.get("generation"))).observe(time.perf_counter() - _started.pop())


def observe_pauses() -> None:
    """Time every collection from now on (idempotent)."""
    if _time_collection not in gc.callbacks:
        gc.callbacks.append(_time_collection)


def freeze_start_up() -> int:
    """Collect once, then exempt every object alive now from later collections; returns how many."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
