"""The evaluation edge: stored fixes → the pure geofence engine → durable decisions → alerting.

The engine does no I/O; this adapter persists what it decided (the events with their explanation
and the changed case states, in one transaction) and hands the events to alerting. A tick loop
advances time without fixes, so silence (a stale victim fix, a curfew that starts) is noticed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from emon import metrics
from emon.backoff import Backoff
from emon.case import Case
from emon.casebook import CaseBook, Documents
from emon.fix import DeviceEvent, Fix
from emon.geofence.engine import Engine
from emon.geofence.events import EvalEvent
from emon.hub import Hub
from emon.lanes import Lanes
from emon.storage.cases import CaseRecords, CaseStateData, EvaluationWrite, JournalStep
from emon.storage.live import fix_to_json
from emon.storage.postgres import CONNECTION_ERRORS
from emon.storage.records import Records

log = logging.getLogger(__name__)


class Captured(NamedTuple):
    """What a step changed, taken when it was decided: packed states, and the snapshots due."""

    states: Mapping[str, CaseStateData]
    snapshot: Mapping[str, dict[str, Any]]


class _Batch(NamedTuple):
    """An evaluated batch on its way to alerting and persisting. ``times``: receipt of its first
    message, evaluation start, evaluation end (monotonic)."""

    decided: list[EvalEvent]
    events: Sequence[DeviceEvent]
    now: datetime
    times: tuple[float, float, float]
    fixes: Sequence[Fix]
    stored_at: datetime | None
    captured: Captured


class AlertSink(Protocol):
    async def on_evaluation(
        self, events: Sequence[EvalEvent], now: datetime, received_mono: float
    ) -> None: ...
    async def on_device_events(
        self, events: Sequence[DeviceEvent], now: datetime, received_mono: float
    ) -> None: ...
    async def tick(self, now: datetime) -> None: ...


class Evaluation:
    """A pipeline consumer: evaluates every newly stored fix of every open case.

    Every decision is stamped with the order version in force (``detail.order_version``), and every
    step that changes a case is journaled with its decision time and fixes; the state of a case is
    snapshotted at most every ``snapshot_s`` seconds (decision time) and at every case change and
    start. Snapshot + journal = the decisions, replayable (see ``emon.evidence``).
    """

    def __init__(
        self,
        engine: Engine,
        cases: CaseRecords,
        casebook: CaseBook,
        hub: Hub,
        alerts: AlertSink | None = None,
        snapshot_s: float = 300.0,
        behind: int = 0,
    ) -> None:
        self.engine = engine
        self.casebook = casebook
        self.cases = cases
        self.hub = hub
        self.alerts = alerts
        self.snapshot_s = snapshot_s
        self._lock = asyncio.Lock()  # batches and ticks take turns: one writer of the engine state
        self._versions: dict[str, int] = {}
        self._snapshot_at: dict[str, datetime] = {}
        # PostgreSQL's clock after the previous batch was stored: a batch's fixes are exactly those
        # received after it up to the batch's own ``stored_at`` (the watermark's guarantee), so the
        # journal names that range instead of every fix. None until recovery has read the watermark.
        self._stored_after: datetime | None = None
        # Added to every journal step: several instances mark their steps with the partition evaluated
        # ({"partition": p, "partitions": n}), so a replay takes only its own case's partition's steps.
        self.journal_detail: dict[str, object] = {}
        # ``behind``: up to this many batches' alerting and persisting (waits on PostgreSQL) run while the
        # next batches are evaluated, in batch order (see :meth:`consume`). One instance only: a partition
        # owner reads ``evaluated_through`` right after each batch to know where its next read starts.
        if behind < 0:
            raise ValueError(f"behind must be 0 or more, not {behind}")
        self.behind = behind
        self._lanes: Lanes[_Batch] | None = (
            Lanes(self._alert_each, self._persist_batches, limit=behind, name="evaluation")
            if behind
            else None
        )

    async def load(self, open_cases: Sequence[Case], now: datetime | None = None) -> None:
        """Restore every open case with the state persisted before a restart (journaled as a start,
        with the engine settings, and snapshotted)."""
        # Documents are built as they are read (≈ 0.05 ms a case): one pass over them, the ids from records.
        ids = open_cases.ids() if isinstance(open_cases, Documents) else [c.case_id for c in open_cases]
        states = await self.cases.states(ids)
        self._versions = await self.cases.current_versions()
        for case in open_cases:
            self.engine.add_case(case, states.get(case.case_id))
        config = {"config": asdict(self.engine.config)}
        await self._persist([], now or datetime.now(UTC), kind="start", extra=ids, detail=config, force=ids)

    @property
    def evaluated_through(self) -> datetime | None:
        """Storing time (PostgreSQL's clock) up to which fixes and events have been evaluated."""
        return self._stored_after

    def resume_from(self, watermark: datetime) -> None:
        """Continue after ``watermark`` (a new owner of the evaluation: everything after the persisted
        watermark is evaluated again, which is idempotent)."""
        self._stored_after = watermark

    def version_of(self, case_id: str) -> int | None:
        """The order version the engine evaluates ``case_id`` with."""
        return self._versions.get(case_id)

    async def recover(self, records: Records, now: datetime) -> int:
        """Evaluate what was stored after the last persisted evaluation (a crash between storing a
        batch — whose MQTT messages were then acknowledged — and evaluating it). Decisions are
        idempotent (deterministic episodes and alert ids), so a batch seen twice does no harm.
        Returns the number of fixes and events evaluated again (a batch or two: the watermark moves
        with every batch)."""
        since = await self.cases.watermark()
        if since is None:
            return 0
        self._stored_after = since
        fixes, events, through = await records.received_after(since)
        if fixes or events:
            log.warning(
                "evaluating %d fixes and %d events stored but not evaluated before a restart",
                len(fixes),
                len(events),
            )
            await self.consume(fixes, events, now, time.monotonic(), through)
        return len(fixes) + len(events)

    async def case_changed(self, case: Case, version: int | None = None, now: datetime | None = None) -> None:
        """``case`` was created, replaced or closed; ``version`` is its new order version (read from
        PostgreSQL when not given)."""
        async with self._lock:
            await self.settle()
            if version is None:
                version = await self.cases.current_version(case.case_id)
            if version is not None:
                self._versions[case.case_id] = version
            self.engine.add_case(case)
            ids = [case.case_id]
            detail = {"version": version, "status": case.status.value}
            await self._persist(
                [], now or datetime.now(UTC), kind="case", extra=ids, detail=detail, force=ids
            )

    async def consume(
        self,
        fixes: Sequence[Fix],
        events: Sequence[DeviceEvent],
        now: datetime,
        received_mono: float,
        stored_at: datetime | None = None,
    ) -> None:
        """Evaluate a stored batch, hand the decisions and device events to alerting, then persist the
        decisions, the changed states and the watermark (``stored_at``: PostgreSQL's clock just after
        the batch was stored) in one transaction.

        Alerting comes before persisting on purpose: a crash in between leaves the watermark where it
        was, so the batch is evaluated again at start and alerting (idempotent: deterministic alert
        ids) sees it again. The other order could lose the alert for a decision already on record.

        With ``behind`` (N), a batch's alerting and persisting (mostly waits on PostgreSQL) run in two
        ordered lanes (:class:`~emon.lanes.Lanes`) while the caller hands over the next batches: batch
        N+1 is alerted while batch N is persisted, and the batches that waited for a lane meanwhile go
        through it together (one alerting call, one transaction of their steps). This returns once the
        batch is evaluated and at most N batches are not yet persisted. The changed states are captured
        when decided, so a later evaluation cannot change what a step persists; alerting → persisting →
        watermark keeps its order per batch and across batches, and each batch keeps its own journal
        step (replay evaluates each as it was). A crash with batches behind leaves the watermark before
        every batch not both alerted and persisted: they are evaluated again at start, and alerting
        (idempotent) sees them again.
        """
        async with self._lock:
            started = time.monotonic()
            decided = self._stamp(self.engine.evaluate_batch(fixes, now)) if fixes else []
            evaluated = time.monotonic()
            metrics.EVALUATION_SECONDS.observe(evaluated - started)
            captured = self._capture(decided, now)
            batch = _Batch(
                decided, events, now, (received_mono, started, evaluated), fixes, stored_at, captured
            )
            if self._lanes is None:
                await self._alert([batch])
                await self._persist_batches([batch])
                return
            self._lanes.put(batch)
        await self._lanes.room()

    async def _alert(self, group: list[_Batch]) -> None:
        """Hand the decisions and device events of consecutive batches to alerting, in one call each
        (retried while PostgreSQL is away). Timed from the first batch's receipt: conservative."""
        if self.alerts is None:
            return
        alerts, now, received_mono = self.alerts, group[-1].now, group[0].times[0]
        decided = [e for b in group for e in b.decided]
        events = [e for b in group for e in b.events]
        if decided:
            ready = time.monotonic()
            await _until_stored(lambda: alerts.on_evaluation(decided, now, received_mono))
            done = time.monotonic()
            for b in group:
                _observe_stages(len(b.decided), (*b.times, ready, done))
        if events:
            await _until_stored(lambda: alerts.on_device_events(events, now, received_mono))

    async def _alert_each(self, group: list[_Batch]) -> list[_Batch]:
        """:meth:`_alert` for the group; should that fail as a whole (not a connection: those are retried),
        batch by batch, so that one batch's failure costs no other batch its alerting. Returns the batches
        alerted (only they are persisted)."""
        try:
            await self._alert(group)
            return group
        except Exception:
            if len(group) == 1:
                raise
            log.exception(
                "alerting %d evaluated batches together failed; alerting them one by one", len(group)
            )
        alerted = []
        for batch in group:
            try:
                await self._alert([batch])
            except Exception:
                metrics.STORAGE_ERRORS.labels("evaluation").inc()
                log.exception("alerting an evaluated batch failed; it is not persisted")
                continue
            alerted.append(batch)
        return alerted

    async def _persist_batches(self, group: list[_Batch]) -> None:
        """Write consecutive batches' steps (decisions, changed states, journal step with its range of
        storing times, watermark) in one transaction."""
        # Batches are consumed in the order they were stored, and each is stamped with the database
        # clock between its rows and the next batch's: everything stored after the watermark is
        # exactly what has not been evaluated yet.
        after, writes = self._stored_after, []
        for b in group:
            stored = None if after is None or b.stored_at is None else (after, b.stored_at)
            writes.append(
                self._step(
                    b.captured,
                    b.decided,
                    b.now,
                    kind="batch",
                    fixes=b.fixes,
                    watermark=b.stored_at,
                    stored=stored,
                )
            )
            after = b.stored_at
        if self._lanes is not None:
            # Retried while PostgreSQL is unreachable, as alerting is: nobody else would see the failure,
            # and the next batch's step would move the watermark past this one's decisions and states.
            # Without ``behind`` the caller sees it and reads the range again (a partition owner).
            await _until_stored(lambda: self.cases.save_evaluations(writes), "persisting")
        else:
            await self.cases.save_evaluations(writes)
        # Moved on only once the steps are on record: a failed write leaves the next range starting here,
        # so its fixes are not lost from the journal (they are in the next batch's range).
        self._stored_after = after
        for b in group:
            self._publish_positions(b.fixes)

    async def settle(self) -> None:
        """Return once every batch handed to :meth:`consume` is alerted and persisted (or has failed)."""
        if self._lanes is not None:
            await self._lanes.settle()

    async def close(self, within_s: float = 5.0) -> None:
        """Let the batches behind finish (at most ``within_s``), then stop: what they did not persist is
        evaluated again after a restart (the watermark did not move past them)."""
        if self._lanes is not None:
            await self._lanes.close(within_s)

    async def tick(self, now: datetime) -> None:
        try:
            async with self._lock:
                await self.settle()
                decided = self._stamp(self.engine.tick(now))
                if self.alerts is not None and decided:
                    await self.alerts.on_evaluation(decided, now, time.monotonic())
                await self._persist(decided, now, kind="tick")
        finally:
            # Every tick is journaled, even an empty one: a failed journal write must not hold alerting's
            # own tick (silence, escalation).
            if self.alerts is not None:
                await self.alerts.tick(now)

    async def run_ticks(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.tick(datetime.now(UTC))
            except Exception:
                log.exception("evaluation tick failed")

    def _stamp(self, events: list[EvalEvent]) -> list[EvalEvent]:
        """The decisions with the order version each was made under (``detail.order_version``)."""
        return [
            replace(e, detail={**e.detail, "order_version": self._versions.get(e.case_id)}) for e in events
        ]

    async def _persist(
        self,
        decided: Sequence[EvalEvent],
        now: datetime,
        *,
        kind: str,
        extra: Collection[str] = (),
        detail: Mapping[str, object] | None = None,
        force: Collection[str] = (),
    ) -> None:
        """Persist changed states and ``decided`` with the journal step that made them (``kind`` at
        decision time ``now``; ``extra`` cases are journaled even when unchanged, ``force`` cases are
        snapshotted whatever the snapshot interval)."""
        await self._write(
            self._capture(decided, now, force), decided, now, kind=kind, extra=extra, detail=detail
        )

    def _capture(self, decided: Sequence[EvalEvent], now: datetime, force: Collection[str] = ()) -> Captured:
        """The changed cases' states as they are now (packed), and the JSON documents of those due a
        snapshot (every ``snapshot_s`` per case, and the ``force`` cases)."""
        changed_ids = self.engine.changed()
        # Packed (msgpack) every step; a JSON document only for the few cases snapshotted for replay.
        changed = {case_id: self.engine.packed(case_id) for case_id in changed_ids}
        snapshot = {
            c: self.engine.snapshot(c)
            for c in changed_ids
            if c in force
            or c not in self._snapshot_at
            or (now - self._snapshot_at[c]).total_seconds() >= self.snapshot_s
        }
        for c in snapshot:  # set now, not once written: the next step may be captured before that
            self._snapshot_at[c] = now
        return Captured(changed, snapshot)

    async def _write(
        self, captured: Captured, decided: Sequence[EvalEvent], now: datetime, **step: Any
    ) -> None:
        """Write ``captured`` and ``decided`` with the journal step that made them (see :meth:`_step`)."""
        await self.cases.save_evaluations([self._step(captured, decided, now, **step)])

    def _step(
        self,
        captured: Captured,
        decided: Sequence[EvalEvent],
        now: datetime,
        *,
        kind: str,
        fixes: Sequence[Fix] = (),
        watermark: datetime | None = None,
        extra: Collection[str] = (),
        detail: Mapping[str, object] | None = None,
        stored: tuple[datetime, datetime] | None = None,
    ) -> EvaluationWrite:
        """What to write for ``captured`` and ``decided`` with the journal step that made them. A batch's
        fixes are journaled as the ``stored`` range of receiving times when known, else one key per fix."""
        touched = sorted(set(captured.states) | {e.case_id for e in decided} | set(extra))
        step = None
        # Every tick is journaled (even when it changed nothing): replay then ticks at the same times.
        if touched or kind == "tick":
            info = {**self.journal_detail, **(detail or {})}
            keys: tuple[tuple[str, datetime, int], ...] = ()
            cases = tuple(touched)
            if stored is not None:
                # A batch named by its range applies to every case (the pack picks its case's fixes), as a
                # tick does: no list of thousands of case ids per row, no index entries on the hot path.
                info["stored_after"], info["stored_through"] = stored[0].isoformat(), stored[1].isoformat()
                cases = ()
            elif kind == "tick":
                cases = ()
            else:
                devices = {d for c in touched for d in self._devices(c)}
                keys = tuple(f.key for f in fixes if f.device_id in devices)
            step = JournalStep(kind, now, cases, keys, info)
        return EvaluationWrite(
            captured.states,
            decided,
            watermark=watermark,
            step=step,
            snapshot=captured.snapshot,
            versions=self._versions,
            config=asdict(self.engine.config),
        )

    def _devices(self, case_id: str) -> tuple[str, ...]:
        case = self.casebook.get(case_id)
        if case is None:
            return ()
        return tuple(d for d in (case.offender_device, case.victim_device) if d is not None)

    def _publish_positions(self, fixes: Sequence[Fix]) -> None:
        if self.hub.subscriber_count == 0:
            return
        for fix in fixes:
            cases = self.casebook.cases_for_device(fix.device_id)
            if not cases:
                continue
            role = "offender" if any(c.offender_device == fix.device_id for c in cases) else "victim"
            body = {**fix_to_json(fix), "case_ids": [c.case_id for c in cases], "role": role}
            self.hub.publish("position", body)


_STAGES = ("to_evaluation", "evaluation", "behind", "alerting")


def _observe_stages(n: int, marks: tuple[float, ...]) -> None:
    """One sample per decision for each stage between consecutive ``marks`` (monotonic times)."""
    for stage, (a, b) in zip(_STAGES, itertools.pairwise(marks), strict=True):
        histogram = metrics.DECISION_STAGES.labels(stage)
        for _ in range(n):
            histogram.observe(max(0.0, b - a))


async def _until_stored(step: Callable[[], Awaitable[None]], what: str = "alerting") -> None:
    """Run an alerting (or persisting) step; while PostgreSQL is unreachable, wait and try again (capped
    backoff) rather than let the decisions of this batch go unalerted or unrecorded. Other errors are
    bugs: they propagate."""
    backoff = Backoff(0.1, 10.0)
    while True:
        try:
            await step()
            return
        except CONNECTION_ERRORS as exc:
            metrics.STORAGE_ERRORS.labels(what).inc()
            log.error("%s could not reach PostgreSQL, retrying: %s", what, exc)
        await asyncio.sleep(backoff.next_wait())
