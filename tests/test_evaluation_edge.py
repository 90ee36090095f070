"""The evaluation edge keeps alerting's hand-off when PostgreSQL blips (unit level, fakes for the ports)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from emon import casebook
from emon.case import Case
from emon.casebook import CaseBook
from emon.evaluation import Evaluation
from emon.fix import DeviceEvent, EventType, Fix
from emon.geo import destination
from emon.geofence.engine import Engine
from emon.geofence.events import EvalEvent
from emon.hub import Hub
from emon.storage.cases import EvaluationWrite

HOME = (52.0907, 5.1214)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class FakeCaseRecords:
    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures = failures  # the first calls that fail: a bug or a refused write, or ``error``
        self.error = error or RuntimeError("refused")
        self.saved: list[tuple[int, datetime | None]] = []
        self.steps: list[tuple[dict[str, Any], Any]] = []  # (states, snapshot) of every call
        self.journal: list[Any] = []  # the journal step of every call
        self.groups: list[int] = []  # the steps written together, per transaction

    async def save_evaluation(
        self,
        states: dict[str, Any],
        events: Sequence[EvalEvent],
        *,
        watermark: datetime | None = None,
        **journal: Any,
    ) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.saved.append((len(events), watermark))
        self.steps.append((states, journal.get("snapshot", ())))
        self.journal.append(journal.get("step"))

    async def save_evaluations(self, writes: Sequence[EvaluationWrite]) -> None:
        self.groups.append(len(writes))
        for w in writes:
            await self.save_evaluation(
                w.states, w.events, watermark=w.watermark, step=w.step, snapshot=w.snapshot
            )

    async def states(self, case_ids: Sequence[str]) -> dict[str, Any]:
        return {}

    async def current_versions(self) -> dict[str, int]:
        return {}


class FlakyAlerts:
    """Alerting whose database connection fails the first time."""

    def __init__(self) -> None:
        self.failures = 1
        self.evaluations: list[str] = []
        self.device_events: list[str] = []

    async def on_evaluation(self, events: Sequence[EvalEvent], now: datetime, received_mono: float) -> None:
        if self.failures:
            self.failures -= 1
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        self.evaluations += [e.type.value for e in events]

    async def on_device_events(
        self, events: Sequence[DeviceEvent], now: datetime, received_mono: float
    ) -> None:
        self.device_events += [e.type.value for e in events]

    async def tick(self, now: datetime) -> None:
        pass


def _home_ban() -> Case:
    """Case ``c``: tag ``tag`` banned from 500 m around HOME, living 3 km east of it."""
    residence = destination(*HOME, 90, 3000)
    return Case.model_validate(
        {
            "case_id": "c",
            "risk": "high",
            "offender_device": "tag",
            "residence": {"lat": residence[0], "lon": residence[1]},
            "order": {
                "exclusion_zones": [
                    {"name": "z", "circle": {"lat": HOME[0], "lon": HOME[1], "radius_m": 500}}
                ]
            },
        }
    )


async def test_a_database_blip_in_alerting_does_not_lose_the_batchs_alerts() -> None:
    case = _home_ban()
    records, alerts = FakeCaseRecords(), FlakyAlerts()
    evaluation = Evaluation(Engine(), records, CaseBook([case]), Hub(), alerts)  # type: ignore[arg-type]
    evaluation.engine.add_case(case)
    fixes = [
        Fix("tag", NOW - timedelta(seconds=30 - 10 * i), *destination(*HOME, 90, d), 5.0)
        for i, d in enumerate([700, 300, 100])
    ]
    events = [DeviceEvent("tag", NOW, EventType.TAMPER)]
    await evaluation.consume(fixes, events, NOW, 0.0, stored_at=NOW)
    # One fix never proves a breach (docs/safety.md): the first fix inside opens a possible state
    # and asks for a locate-now, the second proves it.
    assert alerts.evaluations == [
        "exclusion_pre_alert",
        "locate_request",
        "possible_breach",
        "exclusion_breach",
    ]
    assert alerts.device_events == ["tamper"]
    assert records.saved == [(4, NOW)]  # decisions and the watermark, once, after alerting


async def test_changed_states_are_persisted_packed_and_as_json_only_when_snapshotted() -> None:
    case = _home_ban()
    records = FakeCaseRecords()
    evaluation = Evaluation(Engine(), records, CaseBook([case]), Hub(), snapshot_s=60)  # type: ignore[arg-type]
    evaluation.engine.add_case(case)
    for i, at in enumerate([NOW, NOW + timedelta(seconds=30), NOW + timedelta(seconds=61)]):
        fix = Fix("tag", at - timedelta(seconds=1), *destination(*HOME, 90, 2000 - 100 * i), 5.0)
        await evaluation.consume([fix], [], at, 0.0, stored_at=at)
    assert [list(states) for states, _ in records.steps] == [["c"], ["c"], ["c"]]
    for states, _ in records.steps:
        restored = Engine()
        restored.add_case(case, states["c"])
        assert isinstance(states["c"], bytes)
    assert restored.snapshot("c") == evaluation.engine.snapshot("c")
    # JSON for replay only at the first step and once snapshot_s has passed, and then the current state.
    assert [list(snapshot) for _, snapshot in records.steps] == [["c"], [], ["c"]]
    assert records.steps[2][1]["c"] == evaluation.engine.snapshot("c")


class GatedAlerts:
    """Alerting whose first batch of decisions waits until ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.calls: list[list[str]] = []

    async def on_evaluation(self, events: Sequence[EvalEvent], now: datetime, received_mono: float) -> None:
        if not self.calls:
            self.calls.append([])  # entered
            await self.gate.wait()
            self.calls[0] = [e.type.value for e in events]
            return
        self.calls.append([e.type.value for e in events])

    async def on_device_events(
        self, events: Sequence[DeviceEvent], now: datetime, received_mono: float
    ) -> None:
        pass

    async def tick(self, now: datetime) -> None:
        pass


def _crossing() -> tuple[list[Fix], list[Fix]]:
    """Two batches of tag ``tag``: one fix in the pre-alert ring, then two inside the zone."""
    at = [NOW - timedelta(seconds=30 - 10 * i) for i in range(3)]
    first = [Fix("tag", at[0], *destination(*HOME, 90, 700), 5.0)]
    second = [Fix("tag", t, *destination(*HOME, 90, d), 5.0) for t, d in zip(at[1:], [300, 100], strict=True)]
    return first, second


async def _spin() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


START = NOW - timedelta(seconds=1)  # where the behind tests' evaluation resumes


def _behind(records: FakeCaseRecords, alerts: object = None, behind: int = 1) -> Evaluation:
    """An evaluation up to ``behind`` batches ahead of the home-ban case's alerting and persisting,
    resumed from ``START``."""
    case = _home_ban()
    evaluation = Evaluation(Engine(), records, CaseBook([case]), Hub(), alerts, behind=behind)  # type: ignore[arg-type]
    evaluation.engine.add_case(case)
    evaluation.resume_from(START)
    return evaluation


async def test_behind_the_next_batch_is_evaluated_while_the_one_before_is_alerted() -> None:
    records, alerts = FakeCaseRecords(), GatedAlerts()
    evaluation = _behind(records, alerts)
    first, second = _crossing()
    t1, t2 = NOW, NOW + timedelta(seconds=1)
    await evaluation.consume(first, [], t1, 0.0, stored_at=t1)  # returns while its alerting waits
    await _spin()
    assert alerts.calls == [[]] and records.saved == []
    assert evaluation.evaluated_through == START  # not on record yet
    before = evaluation.engine.snapshot("c")
    consuming = asyncio.create_task(evaluation.consume(second, [], t2, 0.0, stored_at=t2))
    await _spin()
    # The second batch is evaluated (its state changed) but neither alerted nor persisted before the
    # first; and it is not handed back until the first is done (at most one batch behind).
    assert evaluation.engine.snapshot("c") != before
    assert alerts.calls == [[]] and records.saved == [] and not consuming.done()
    alerts.gate.set()
    await consuming
    await evaluation.settle()
    assert alerts.calls == [
        ["exclusion_pre_alert", "locate_request"],
        ["possible_breach", "exclusion_breach"],
    ]
    assert records.saved == [(2, t1), (2, t2)]  # in batch order, each after its alerting
    assert evaluation.evaluated_through == t2
    # What the first step persisted is the state after the first batch, not the state it had when written.
    restored = Engine()
    restored.add_case(_home_ban(), records.steps[0][0]["c"])
    assert restored.snapshot("c") == before


class GatedRecords(FakeCaseRecords):
    """Case records whose first evaluation step waits until ``gate`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.entered = 0

    async def save_evaluation(self, states: dict[str, Any], events: Sequence[EvalEvent], **kw: Any) -> None:
        self.entered += 1
        if self.entered == 1:
            await self.gate.wait()
        await super().save_evaluation(states, events, **kw)


class RecordingAlerts(GatedAlerts):
    """Alerting that never waits, recording what it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.gate.set()


async def test_two_behind_the_next_batch_is_alerted_while_the_one_before_is_persisted() -> None:
    records, alerts = GatedRecords(), RecordingAlerts()
    evaluation = _behind(records, alerts, behind=2)
    first, second = _crossing()
    t1, t2 = NOW, NOW + timedelta(seconds=1)
    await evaluation.consume(first, [], t1, 0.0, stored_at=t1)
    await _spin()
    assert records.entered == 1 and records.saved == []  # the first step waits on PostgreSQL
    # Handed back at once: two batches may be behind.
    await asyncio.wait_for(evaluation.consume(second, [], t2, 0.0, stored_at=t2), 1.0)
    await _spin()
    # The second batch's alerting did not wait for the first's step; its own step does.
    assert alerts.calls == [
        ["exclusion_pre_alert", "locate_request"],
        ["possible_breach", "exclusion_breach"],
    ]
    assert records.entered == 1 and evaluation.evaluated_through == START
    records.gate.set()
    await evaluation.settle()
    assert records.saved == [(2, t1), (2, t2)]  # persisted in batch order
    ranges = [(s.detail["stored_after"], s.detail["stored_through"]) for s in records.journal]
    assert ranges == [(START.isoformat(), t1.isoformat()), (t1.isoformat(), t2.isoformat())]
    assert evaluation.evaluated_through == t2


async def test_two_behind_a_third_batch_waits_until_the_first_is_done() -> None:
    records, alerts = GatedRecords(), RecordingAlerts()
    evaluation = _behind(records, alerts, behind=2)
    first, second = _crossing()
    await evaluation.consume(first[:1], [], NOW, 0.0, stored_at=NOW)
    await evaluation.consume(
        second[:1], [], NOW + timedelta(seconds=1), 0.0, stored_at=NOW + timedelta(seconds=1)
    )
    third = asyncio.create_task(
        evaluation.consume(
            second[1:], [], NOW + timedelta(seconds=2), 0.0, stored_at=NOW + timedelta(seconds=2)
        )
    )
    await _spin()
    assert not third.done()  # three would be behind
    records.gate.set()
    await asyncio.wait_for(third, 1.0)
    await evaluation.settle()
    assert [w for _, w in records.saved] == [NOW + timedelta(seconds=s) for s in range(3)]


async def test_closing_cancels_every_batch_behind() -> None:
    records = GatedRecords()
    evaluation = _behind(records, RecordingAlerts(), behind=3)
    first, second = _crossing()
    await evaluation.consume(first, [], NOW, 0.0, stored_at=NOW)
    await evaluation.consume(
        second, [], NOW + timedelta(seconds=1), 0.0, stored_at=NOW + timedelta(seconds=1)
    )
    await evaluation.close(within_s=0.05)
    # Nothing persisted and the watermark not moved: a restart evaluates both batches again.
    assert records.saved == [] and evaluation.evaluated_through == START
    assert evaluation._lanes is not None and evaluation._lanes.unfinished == 0


async def test_batches_that_waited_for_alerting_are_alerted_together_and_persisted_in_one_transaction() -> (
    None
):
    records, alerts = FakeCaseRecords(), GatedAlerts()
    evaluation = _behind(records, alerts, behind=4)
    first, second = _crossing()
    t = [NOW + timedelta(seconds=i) for i in range(3)]
    await evaluation.consume(first, [], t[0], 0.0, stored_at=t[0])  # its alerting waits at the gate
    await _spin()
    await evaluation.consume(second[:1], [], t[1], 0.0, stored_at=t[1])
    await evaluation.consume(second[1:], [], t[2], 0.0, stored_at=t[2])
    alerts.gate.set()
    await evaluation.settle()
    # The two batches that waited went to alerting as one call, in order ...
    assert alerts.calls == [
        ["exclusion_pre_alert", "locate_request"],
        ["possible_breach", "exclusion_breach"],
    ]
    # ... and the three steps (the first's lane woke after the others were alerted) into one
    # transaction, each its own step with its own range, in order.
    assert records.groups == [3]
    ranges = [(s.detail["stored_after"], s.detail["stored_through"]) for s in records.journal]
    assert ranges == [
        (START.isoformat(), t[0].isoformat()),
        (t[0].isoformat(), t[1].isoformat()),
        (t[1].isoformat(), t[2].isoformat()),
    ]
    assert [w for _, w in records.saved] == t and evaluation.evaluated_through == t[2]


class RefusingAlerts(GatedAlerts):
    """Alerting whose first call waits at the gate and which refuses every call holding a proven breach."""

    async def on_evaluation(self, events: Sequence[EvalEvent], now: datetime, received_mono: float) -> None:
        if self.calls and any(e.type.value == "exclusion_breach" for e in events):
            raise RuntimeError("refused")
        await super().on_evaluation(events, now, received_mono)


async def test_batches_alerted_together_that_fail_are_alerted_one_by_one_and_only_the_failed_one_is_lost() -> (
    None
):
    records, alerts = FakeCaseRecords(), RefusingAlerts()
    evaluation = _behind(records, alerts, behind=4)
    first, second = _crossing()
    t = [NOW + timedelta(seconds=i) for i in range(3)]
    await evaluation.consume(first, [], t[0], 0.0, stored_at=t[0])
    await _spin()
    await evaluation.consume(second[:1], [], t[1], 0.0, stored_at=t[1])  # a possible breach
    await evaluation.consume(second[1:], [], t[2], 0.0, stored_at=t[2])  # the proof: refused
    alerts.gate.set()
    await evaluation.settle()
    # The two that waited failed together; alone, the second batch went through and the third did not.
    assert alerts.calls == [["exclusion_pre_alert", "locate_request"], ["possible_breach"]]
    assert [w for _, w in records.saved] == t[:2]  # the refused batch is not persisted
    assert evaluation.evaluated_through == t[1]


def test_behind_is_not_negative() -> None:
    with pytest.raises(ValueError, match="behind"):
        _behind(FakeCaseRecords(), behind=-1)


async def test_behind_a_batch_that_fails_to_persist_leaves_its_range_to_the_next() -> None:
    records = FakeCaseRecords(failures=1)
    evaluation, start = _behind(records), START
    first, second = _crossing()
    t1, t2 = NOW, NOW + timedelta(seconds=1)
    await evaluation.consume(first, [], t1, 0.0, stored_at=t1)
    await evaluation.settle()  # failed: logged, not raised into the next batch
    assert records.saved == [] and evaluation.evaluated_through == start
    await evaluation.consume(second, [], t2, 0.0, stored_at=t2)
    await evaluation.settle()
    assert records.saved == [(2, t2)]
    step = records.journal[0]
    assert (step.detail["stored_after"], step.detail["stored_through"]) == (start.isoformat(), t2.isoformat())
    assert evaluation.evaluated_through == t2


async def test_closing_cancels_a_batch_behind_that_does_not_finish_in_time() -> None:
    records = FakeCaseRecords()
    evaluation, start = _behind(records, GatedAlerts()), START
    await evaluation.consume(_crossing()[0], [], NOW, 0.0, stored_at=NOW)
    await evaluation.close(within_s=0.05)
    # Nothing persisted and the watermark not moved: a restart evaluates the batch again.
    assert records.saved == [] and evaluation.evaluated_through == start
    await evaluation.close()  # idempotent


async def test_behind_a_step_persisted_while_postgresql_blips_is_retried_not_skipped() -> None:
    records = FakeCaseRecords(failures=2, error=psycopg.OperationalError("server closed the connection"))
    evaluation, start = _behind(records), START
    first, second = _crossing()
    t1, t2 = NOW, NOW + timedelta(seconds=1)
    await evaluation.consume(first, [], t1, 0.0, stored_at=t1)
    await evaluation.consume(second, [], t2, 0.0, stored_at=t2)
    await evaluation.settle()
    # Each batch its own step, in order: the first was retried until stored, not given up.
    assert records.saved == [(2, t1), (2, t2)]
    ranges = [(s.detail["stored_after"], s.detail["stored_through"]) for s in records.journal]
    assert ranges == [(start.isoformat(), t1.isoformat()), (t1.isoformat(), t2.isoformat())]
    assert evaluation.evaluated_through == t2


async def test_loading_builds_each_case_document_once(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        _home_ban().model_copy(update={"case_id": f"c{i}", "offender_device": f"tag{i}"}) for i in range(3)
    ]
    book = CaseBook(cases)
    builds: list[str] = []
    real = casebook.built

    def counted(record: casebook.CaseRecord) -> Case:
        builds.append(record.case_id)
        return real(record)

    monkeypatch.setattr(casebook, "built", counted)
    records = FakeCaseRecords()
    evaluation = Evaluation(Engine(), records, book, Hub())  # type: ignore[arg-type]
    await evaluation.load(book.documents(), NOW)
    assert sorted(builds) == ["c0", "c1", "c2"]  # a document costs ≈ 0.05 ms: not three passes
    assert evaluation.engine.case_ids() == ["c0", "c1", "c2"]
