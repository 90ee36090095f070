"""The per-message shortcuts of the ingest loop (issue #14) lose nothing: ``submit`` wakes the pipeline
only when the queue was empty, ``decode`` counts the common valid fix message apart from the others, and
the routes of emon topics are remembered."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from emon.deadletters import DeadLetterRow
from emon.device import Device, DeviceKind, DeviceRegistry
from emon.fix import DeviceEvent, Fix
from emon.ingest import topics
from emon.ingest.pipeline import Pipeline, RawMessage
from emon.ingest.topics import MessageKind, TopicRoute, route
from tests.harness import eventually

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def fix(seq: int, ts: float = NOW.timestamp()) -> bytes:
    return b'{"ts":%.3f,"lat":52.1,"lon":5.1,"acc":5.0,"seq":%d}' % (ts, seq)


class _Records:
    """Stores nothing, remembers the fixes of every batch."""

    def __init__(self) -> None:
        self.seqs: list[int | None] = []

    async def store_batch(
        self, fixes: Sequence[Fix], events: Sequence[DeviceEvent], dead: Sequence[DeadLetterRow]
    ) -> tuple[list[Fix], list[DeviceEvent], datetime | None]:
        self.seqs += [f.seq for f in fixes]
        return list(fixes), list(events), datetime.now(UTC)


class _Live:
    async def update(self, fixes: Collection[Fix], seen: Mapping[str, datetime]) -> None:
        pass


async def test_messages_submitted_after_the_queue_ran_dry_wake_the_pipeline() -> None:
    """The wake-up is set only when a message finds the queue empty: a burst sets it once, and every
    burst after the pipeline drained the queue (and went to sleep) wakes it again."""
    records = _Records()
    registry = DeviceRegistry([Device("tag-1", DeviceKind.ANKLE_TAG)])
    pipeline = Pipeline(cast(Any, records), cast(Any, _Live()), registry, batch_wait_s=0.0)
    runner = asyncio.create_task(pipeline.run())
    now = datetime.now(UTC).timestamp()
    try:
        seq = 0
        for burst in (1, 3, 50, 1, 2):
            for _ in range(burst):
                seq += 1
                pipeline.submit("emon/v1/fix/tag-1", fix(seq, now))
            expected = list(range(1, seq + 1))

            async def all_stored(expected: list[int] = expected) -> bool:
                return records.seqs == expected and not pipeline.pending

            await eventually(all_stored, within=5.0, interval=0.005)
            await asyncio.sleep(0.01)  # the pipeline is asleep on an empty queue again
            assert not pipeline._wakeup.is_set()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def _received(kind: str) -> float:
    return REGISTRY.get_sample_value("emon_messages_received_total", {"kind": kind}) or 0.0


def test_messages_are_counted_by_kind_whatever_they_decode_to() -> None:
    registry = DeviceRegistry([Device("tag-1", DeviceKind.ANKLE_TAG), Device("tag-2", DeviceKind.ANKLE_TAG)])
    pipe = Pipeline(cast(Any, None), cast(Any, None), registry)
    batch = [
        RawMessage("emon/v1/fix/tag-1", fix(1), 0.0, 0.0),  # valid: counted apart, added at the end
        RawMessage("emon/v1/fix/tag-1", b'{"lat":1}', 0.0, 0.0),  # a dead letter, still a fix message
        RawMessage("emon/v1/event/tag-2", b'{"type":"tamper","ts":%.0f}' % NOW.timestamp(), 0.0, 0.0),
        RawMessage("emon/v1/fix/tag-2", fix(2), 0.0, 0.0),
        RawMessage("emon/v1/fix/tag-9", fix(3), 0.0, 0.0),  # unknown device: counted as a fix message
        RawMessage("nowhere/at/all", b"{}", 0.0, 0.0),  # no kind at all
        RawMessage("emon/v1/ack/tag-1", b"{}", 0.0, 0.0),
    ]
    before = {k: _received(k) for k in ("fix", "event", "ack", "owntracks")}
    parts, acks, seen = pipe.decode(batch, NOW)
    after = {k: _received(k) - before[k] for k in before}
    assert after == {"fix": 4, "event": 1, "ack": 1, "owntracks": 0}
    assert [len(p.fixes) for p in parts] == [1, 0, 0, 1, 0, 0, 0]
    assert [p.dead is not None for p in parts] == [False, True, False, False, True, True, False]
    assert [len(p.events) for p in parts] == [0, 0, 1, 0, 0, 0, 0]
    assert acks == [("tag-1", b"{}")] and seen == {"tag-1": NOW, "tag-2": NOW}


def test_a_device_registered_after_its_first_message_is_accepted_from_the_next() -> None:
    """Routes of emon topics are remembered, and do not depend on the registry: registering a device (or
    an OwnTracks phone) later changes what its next message decodes to."""
    registry = DeviceRegistry([Device("tag-1", DeviceKind.ANKLE_TAG)])
    pipe = Pipeline(cast(Any, None), cast(Any, None), registry)
    batch = [
        RawMessage("emon/v1/fix/tag-late", fix(1), 0.0, 0.0),
        RawMessage("owntracks/anna/phone", b'{"_type":"lwt"}', 0.0, 0.0),
    ]
    for _ in range(2):
        parts, _, seen = pipe.decode(batch, NOW)
        assert [p.dead.reason if p.dead else None for p in parts] == ["unknown_device", "unknown_device"]
        assert seen == {}
    registry.replace_all(
        [
            Device("tag-late", DeviceKind.ANKLE_TAG),
            Device("phone-1", DeviceKind.VICTIM_DEVICE, "owntracks/anna/phone"),
        ]
    )
    parts, _, seen = pipe.decode(batch, NOW)
    assert [p.dead for p in parts] == [None, None]
    assert [len(p.fixes) for p in parts] == [1, 0] and [len(p.events) for p in parts] == [0, 1]
    assert seen == {"tag-late": NOW, "phone-1": NOW}


def test_remembered_routes_are_the_routes_and_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topics, "_EMON_ROUTES", {})
    monkeypatch.setattr(topics, "_EMON_ROUTES_MAX", 5)
    registry = DeviceRegistry([Device("tag-1", DeviceKind.ANKLE_TAG)])
    cases = [
        ("p/emon/v1/fix/tag-1", "p", TopicRoute(MessageKind.FIX, "tag-1", "emon/v1/fix/tag-1")),
        ("p/emon/v1/event/tag-2", "p", TopicRoute(MessageKind.EVENT, "tag-2", "emon/v1/event/tag-2")),
        ("emon/v1/fix/tag-1", "p", None),  # not under the prefix
        ("emon/v1/fix/tag-1", "", TopicRoute(MessageKind.FIX, "tag-1", "emon/v1/fix/tag-1")),
        ("emon/v1/ack/bad id!", "", TopicRoute(MessageKind.ACK, None, "emon/v1/ack/bad id!")),
        ("emon/v1/other/tag-1", "", None),
        ("emon/v2/fix/tag-1", "", None),
    ] + [
        (f"emon/v1/fix/tag-{i}", "", TopicRoute(MessageKind.FIX, f"tag-{i}", f"emon/v1/fix/tag-{i}"))
        for i in range(9)
    ]
    for _ in range(3):  # worked out, then remembered (and forgotten when full): the same every time
        for topic, prefix, expected in cases:
            assert route(topic, prefix, registry) == expected
    assert all(len(known) <= 5 for known in topics._EMON_ROUTES.values())
