"""Start-up objects are kept out of the garbage collector's full walks, and its pauses are timed."""

from __future__ import annotations

import gc

from prometheus_client import REGISTRY

from emon import collector


def test_objects_alive_at_start_up_are_not_walked_by_later_full_collections() -> None:
    held = [[i] for i in range(20_000)]  # tracked objects, as cases and compiled rules are
    gc.collect()
    assert any(o is held for o in gc.get_objects(generation=2))
    try:
        assert collector.freeze_start_up() >= len(held)
        assert not any(o is held for o in gc.get_objects(generation=2))
        made_later = [[0]]
        gc.collect()
        assert any(o is made_later for o in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()


def test_every_collection_is_timed_by_generation() -> None:
    collector.observe_pauses()
    collector.observe_pauses()  # once only
    assert gc.callbacks.count(collector._time_collection) == 1

    def count() -> float:
        return REGISTRY.get_sample_value("emon_gc_pause_seconds_count", {"generation": "2"}) or 0.0

    before = count()
    gc.collect()
    assert count() == before + 1
