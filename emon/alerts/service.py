"""The alert service the runtime wires in: inputs (evaluation, device events, acks, ticks) → decided
changes stored with their outbox rows in one transaction → the room told. The outbox worker is woken
one way only, in this process as in any other: the ``NOTIFY`` each queued row sends at commit
(:meth:`OutboxWorker.listen`); its ``poll_s`` pass catches retries that fall due."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import msgspec

from emon.alerts import followups, metrics
from emon.alerts import lifecycle as lc
from emon.alerts.batch import Batch
from emon.alerts.channels.command import CommandChannel
from emon.alerts.channels.dispatch import DispatchChannel
from emon.alerts.channels.publisher import Publisher
from emon.alerts.channels.room import RoomChannel
from emon.alerts.channels.victim import VictimChannel
from emon.alerts.commands import LocateRequest, commands_for
from emon.alerts.config import AlertConfig
from emon.alerts.model import Alert, CaseInfo, Change, Sighting, VictimAck, alert_id_for
from emon.alerts.notifier import Notifier
from emon.alerts.outbox import OutboxWorker
from emon.alerts.routing import Routing
from emon.alerts.silence import find_silence, heard_since
from emon.alerts.types import NEVER_DEBOUNCED, AlertState, AlertType, Priority
from emon.case import Risk
from emon.casebook import CaseBook
from emon.device import DeviceRegistry
from emon.errors import InvalidInput, NotFound
from emon.fix import DeviceEvent, EventType
from emon.geofence.events import EvalEvent, EvalEventType
from emon.hub import Hub
from emon.ingest.decode import OWNTRACKS_BATTERY_CRITICAL_PCT, OWNTRACKS_BATTERY_LOW_PCT
from emon.mqtt.endpoint import Endpoint
from emon.settings import Settings
from emon.storage import alerts as st
from emon.storage.lease import Fence
from emon.storage.postgres import Database
from emon.tasks.model import Task
from emon.tasks.service import TaskService

log = logging.getLogger(__name__)
T = TypeVar("T")
_SILENCE_TYPES = (AlertType.NO_COMMUNICATION, AlertType.NO_FIX)
_ESCALATION_SLACK = timedelta(milliseconds=1)  # the query may return more; lc.escalation_due decides


@dataclass
class Unit:
    """What one batch transaction defers to its end: the reads it prefetched, the room tasks to publish
    and the change counts to record after commit (a batch that is redone item by item counts each change
    once). With ``defer`` (the batch path, in pipeline mode) its writes go through ``reads`` and are sent
    without waiting; their results (order versions, created room tasks) are read after commit. The case
    facts of a batch are looked up once per case (``cases``)."""

    reads: Batch = field(default_factory=Batch.none)
    defer: bool = False
    tasks: list[Task] = field(default_factory=list)
    counts: list[tuple[str, str, str]] = field(default_factory=list)
    cases: dict[str, CaseInfo] = field(default_factory=dict)

    @property
    def batch(self) -> Batch | None:
        """Where outbox rows wait for the batch's end; None: each row is written (and NOTIFYed) at once."""
        return self.reads if self.defer else None

    async def settle(self, decided: list[Alert]) -> list[Alert]:
        """After commit (``defer``): the decided alerts with the order version each save returned, and the
        room tasks created to publish."""
        out = []
        for alert, version in zip(decided, await self.reads.versions(), strict=True):
            out.append(alert if version == alert.order_version else replace(alert, order_version=version))
        self.tasks.extend(await self.reads.created_tasks())
        return out


class SeenSource(Protocol):
    """When devices were last heard from (``emon.storage.live.LiveState`` in production)."""

    async def last_seen(self, device_ids: Sequence[str] | None = None) -> dict[str, datetime]: ...
    async def latest_times(self, device_ids: Sequence[str] | None = None) -> dict[str, datetime]: ...
    async def latest(self, device_id: str) -> dict[str, Any] | None: ...


class AlertService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        hub: Hub,
        casebook: CaseBook,
        registry: DeviceRegistry,
        live: SeenSource,
        *,
        config: AlertConfig | None = None,
        routing: Routing | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.casebook = casebook
        self.registry = registry
        self.live = live
        self.config = config or settings.alerts
        self.routing = routing or Routing.from_file(self.config.routing_file)
        channel = f"{db.schema}_alert_outbox"
        host, port = settings.mqtt_host_port
        self.room = RoomChannel(hub)
        # One MQTT session (emon's client, TLS, credentials) for everything published to devices.
        self.publisher = Publisher(
            Endpoint.from_settings(settings),
            f"{settings.mqtt_client_id}-notify",
            protocol=settings.mqtt_protocol,
        )
        self.victim = VictimChannel(
            host, port, settings.mqtt_topic_prefix, registry, publisher=self.publisher
        )
        secret = None if settings.webhook_secret is None else str(settings.webhook_secret)
        self.dispatch = DispatchChannel(secret, timeout_s=self.config.dispatch_timeout_s)
        self.commands = CommandChannel(settings.mqtt_topic_prefix, self.publisher)
        self.notifier = Notifier(self.config, settings.webhook_url, channel, fresh_s=settings.freshness_s)
        self.tasks = TaskService(db, hub, escalate_s=self.config.task_escalate_s)
        senders = {
            "victim": lambda d, now: self.victim.send(d.target, d.body),
            "dispatch": lambda d, now: self.dispatch.send(d.target, d.delivery_id, d.body, now),
            "command": lambda d, now: self.commands.send(d.target, d.body),
        }
        # Set when several instances run: fenced writes check this lease (emon.storage.lease) — the
        # coordinator's for the tick; evaluation decisions pass their partition's lease instead.
        self.fence: Fence | None = None
        self.worker = OutboxWorker(db, self.config, senders, self._delivery_failing, channel)

    async def open(self) -> None:
        """Nothing to pre-connect: channels connect on first use and after every failure."""

    async def close(self) -> None:
        await self.victim.close()
        await self.commands.close()
        await self.dispatch.close()

    async def run_delivery(self) -> None:
        """Forever: the outbox worker and its LISTEN wake-up source."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.worker.run(), name="alert-outbox")
            tg.create_task(self.worker.listen(), name="alert-outbox-listen")

    # -- inputs -------------------------------------------------------------------------------

    def _case_of(self, case_id: str, unit: Unit | None) -> CaseInfo:
        """:meth:`_case`, looked up once per case in a batch."""
        if unit is None:
            return self._case(case_id)
        info = unit.cases.get(case_id)
        if info is None:
            info = unit.cases[case_id] = self._case(case_id)
        return info

    def _case(self, case_id: str) -> CaseInfo:
        case = self.casebook.get(case_id)
        if (
            case is None
        ):  # a closed or unknown case still gets its alert, at the cautious risk; nobody's device
            return CaseInfo(case_id, Risk.HIGH, closed=True)

        def topic(device_id: str | None) -> str | None:
            device = self.registry.by_id.get(device_id) if device_id else None
            return None if device is None else device.owntracks_topic

        return CaseInfo(
            case.case_id,
            case.risk,
            case.offender_device,
            case.victim_device,
            victim_rules=case.victim_rules,
            victim_notifications=case.victim_notifications,
            victim_owntracks_topic=topic(case.victim_device),
            offender_owntracks_topic=topic(case.offender_device),
        )

    async def on_evaluation(
        self,
        events: Sequence[EvalEvent],
        now: datetime,
        received_mono: float,
        fence: Fence | None = None,
    ) -> None:
        """Decide and store the alerts of a batch of evaluation events (one transaction, one savepoint each).
        A ``locate_request`` becomes device commands, never an alert. ``fence``: the lease these decisions
        are made under (several instances: the cases' partition's; default :attr:`fence`)."""

        # Each event with the id of the alert it may change (None: a locate request), computed once.
        items = [
            (
                ev,
                None
                if ev.type is EvalEventType.LOCATE_REQUEST
                else alert_id_for(ev.case_id, ev.rule, ev.episode),
            )
            for ev in events
        ]

        async def one(conn: st.Conn, unit: Unit, item: tuple[EvalEvent, str | None]) -> list[Change]:
            ev, alert_id = item
            case = self._case_of(ev.case_id, unit)
            if alert_id is None:
                request = followups.locate_request_of(ev, case)
                await self._locate(conn, request, now, unit.batch)
                return []
            prev = await unit.reads.alert(conn, alert_id)
            suppressed = await unit.reads.suppressed(conn, ev.case_id, lc.alert_type_of(ev, prev), now)
            change = lc.on_evaluation(
                prev, ev, case, self.routing, self.config, suppressed=suppressed, now=now
            )
            return [change] if change else []

        async def prefetch(conn: st.Conn) -> Batch:
            alert_ids = [i for _, i in items if i is not None]
            return await Batch.load(conn, alert_ids, [ev.case_id for ev in events], now)

        await self._batch(items, one, now, received_mono, "evaluation", fence, prefetch)

    async def on_device_events(
        self,
        events: Sequence[DeviceEvent],
        now: datetime,
        received_mono: float,
        fence: Fence | None = None,
        only: Callable[[str], bool] | None = None,
    ) -> None:
        """Tamper, strap, battery, panic and connection-lost events → alerts for every case of the device
        (with ``only``: every such case it accepts by id — a partition's cases, under that partition's
        ``fence``)."""

        async def one(conn: st.Conn, unit: Unit, ev: DeviceEvent) -> list[Change]:
            alert_type = lc.device_alert_type(ev)
            if alert_type is None:
                return []
            device = self.registry.by_id.get(ev.device_id)
            kind = None if device is None else device.kind.value
            out = []
            for c in self.casebook.cases_for_device(ev.device_id):
                if only is not None and not only(c.case_id):
                    continue
                case = self._case(c.case_id)
                rule = lc.device_rule(ev.device_id, alert_type)
                prev = await st.get(conn, alert_id_for(case.case_id, rule, ev.ts), lock=True)
                if prev is None and alert_type not in NEVER_DEBOUNCED:
                    prev = await st.open_for_rule(conn, case.case_id, rule, lock=True)
                if prev is None and await self._battery_reported_before(conn, case.case_id, rule, ev):
                    continue
                suppressed = await self._suppressed(conn, case.case_id, alert_type, now)
                change = lc.on_device_event(
                    prev, ev, case, kind, self.routing, self.config, suppressed=suppressed, now=now
                )
                if change and alert_type is AlertType.PANIC:
                    offender, victim = (
                        await self._latest(case.offender_device),
                        await self._latest(case.victim_device),
                    )
                    change = replace(
                        change,
                        alert=lc.with_positions(
                            change.alert, offender, victim, now, self.settings.freshness_s
                        ),
                    )
                if change:
                    out.append(change)
            return out

        await self._batch(events, one, now, received_mono, "device_event", fence)

    async def _latest(self, device_id: str | None) -> Sighting | None:
        """The latest fix of a device (Redis), as a position; None when none is known."""
        raw = await self.live.latest(device_id) if device_id else None
        if raw is None:
            return None
        return Sighting(
            float(raw["lat"]), float(raw["lon"]), float(raw["acc_m"]), datetime.fromisoformat(raw["ts"])
        )

    async def _battery_reported_before(self, conn: st.Conn, case_id: str, rule: str, ev: DeviceEvent) -> bool:
        """An OwnTracks phone reports its low battery with every fix, not once: after its alert was resolved
        a new one opens only once the phone was seen recharged above the threshold in between."""
        if ev.data.get("source") != "owntracks" or ev.type not in (
            EventType.BATTERY_LOW,
            EventType.BATTERY_CRITICAL,
        ):
            return False
        last = await st.last_for_rule(conn, case_id, rule)
        if last is None:
            return False
        threshold = (
            OWNTRACKS_BATTERY_LOW_PCT if ev.type is EventType.BATTERY_LOW else OWNTRACKS_BATTERY_CRITICAL_PCT
        )
        return not await st.battery_above_since(conn, ev.device_id, last.episode, threshold, ev.ts)

    async def _batch(
        self,
        items: Sequence[T],
        one: Callable[[st.Conn, Unit, T], Awaitable[list[Change]]],
        now: datetime,
        received_mono: float,
        stage: str,
        fence: Fence | None = None,
        prefetch: Callable[[st.Conn], Awaitable[Batch]] | None = None,
    ) -> None:
        """Decide a batch in one transaction: first all at once, in pipeline mode (reads prefetched in one
        round trip, no savepoints, the writes sent with the COMMIT, their results read after it); if
        anything in it fails, the transaction is rolled back and the batch decided again item by item,
        a savepoint each, so one bad input cannot sink the others."""
        decided: list[Alert] = []
        fence = fence or self.fence
        async with self.db.pool.connection() as conn:
            checked = False
            unit = Unit(defer=True)
            try:
                # Pipeline mode: the reads wait for their results (one round trip for the prefetch), the
                # writes do not; they go out with the COMMIT and their results are read after it.
                async with conn.pipeline(), conn.transaction():
                    if fence is not None:
                        await fence.check(conn)  # decisions come from the holder of the cases' lease only
                    checked = True
                    if prefetch is not None:
                        unit.reads = await prefetch(conn)
                    unit.reads.notify_on(self.notifier.notify_channel)
                    for item in items:
                        for change in await one(conn, unit, item):
                            decided.append(await self._store(conn, change, now, unit=unit))
                    await unit.reads.finish(conn, now)
            except Exception:
                if not checked:
                    raise
                log.warning("a %s batch failed as a whole; deciding it again item by item", stage)
                await st.end_failed(conn)
                decided.clear()
                unit = await self._batch_each(conn, items, one, now, stage, fence, decided)
            else:
                decided = await unit.settle(decided)
        # One sample per decided change, not per batch: the latency target is a quantile over decisions.
        elapsed = max(0.0, time.monotonic() - received_mono)
        for _ in decided:
            metrics.FIX_TO_ALERT.observe(elapsed)
        for labels, n in Counter(unit.counts).items():  # one label lookup per kind of change, not per change
            metrics.ALERT_CHANGES.labels(*labels).inc(n)
        self._after_commit(decided)
        self.tasks.published(unit.tasks)

    async def _batch_each(
        self,
        conn: st.Conn,
        items: Sequence[T],
        one: Callable[[st.Conn, Unit, T], Awaitable[list[Change]]],
        now: datetime,
        stage: str,
        fence: Fence | None,
        decided: list[Alert],
    ) -> Unit:
        """The isolating path: every read its own query, a savepoint and NOTIFYs per item."""
        unit = Unit()
        async with conn.transaction():
            if fence is not None:
                await fence.check(conn)
            for item in items:
                mark = (len(decided), len(unit.tasks), len(unit.counts))
                try:
                    async with conn.transaction():  # a savepoint: one bad input cannot sink the batch
                        for change in await one(conn, unit, item):
                            decided.append(await self._store(conn, change, now, unit=unit))
                except Exception:
                    del decided[mark[0] :], unit.tasks[mark[1] :], unit.counts[mark[2] :]
                    metrics.HANDLER_ERRORS.labels(stage).inc()
                    log.exception("alerting failed for one %s input; the rest of the batch goes on", stage)
        return unit

    async def _suppressed(
        self, conn: st.Conn, case_id: str, alert_type: AlertType | None, now: datetime
    ) -> bool:
        return alert_type is not None and await st.is_suppressed(conn, case_id, alert_type, now)

    async def _store(
        self,
        conn: st.Conn,
        change: Change,
        now: datetime,
        *,
        unit: Unit | None = None,
    ) -> Alert:
        """Save a change with its outbox rows, and what follows from it in the same transaction: locate
        requests, room tasks (published after commit when ``unit`` is given, else at once),
        and the end of victim re-sends once the alert is resolved. With ``unit`` (a batch), reads come
        from its prefetch, and the change count (and, if it defers them, the outbox rows) are left to it."""
        alert = change.alert
        case = self._case_of(alert.case_id, unit)
        notes = self.notifier.notes(change, case)
        batch = None if unit is None else unit.batch
        if batch is not None:
            await batch.save(conn, change, now, notes)  # its order version: after commit
        else:
            version = await st.save(conn, change, now, notes)
            if version != alert.order_version:  # the room and the API show the version the database stamped
                alert = replace(alert, order_version=version)
                change = replace(change, alert=alert)
        await self.notifier.enqueue(conn, change, case, now, batch=batch)
        labels = (alert.type.value, alert.state.value, change.action)
        if unit is None:
            metrics.ALERT_CHANGES.labels(*labels).inc()
        else:
            unit.counts.append(labels)
        if alert.state is AlertState.RESOLVED:
            if batch is not None:
                await batch.flush(conn)  # the rows this cancels may be queued
            await st.send_cancel_victim_deliveries(conn, now, alert_id=alert.alert_id)
        planned = followups.tasks_for(change, case, self.config, now)
        if batch is not None:
            batch.tasks.extend(planned)  # created (and published) with the batch
        elif planned:
            created = [t for t in [await self.tasks.create(conn, t, now) for t in planned] if t]
            if unit is not None:
                unit.tasks.extend(created)
            else:
                self.tasks.published(created)
        request = followups.locate_for(change, case, self.config, now)
        if request is not None:
            await self._locate(conn, request, now, batch)
        return alert

    async def _locate(
        self, conn: st.Conn, request: LocateRequest, now: datetime, batch: Batch | None = None
    ) -> int:
        """Queue the commands of a locate request (idempotent per origin). A later pursuit drops the
        earlier one's pending end, so a phone is not put back into its usual mode too early. With
        ``batch`` the rows wait for its flush (0 is returned; the batch counts them)."""
        added = 0
        for cmd in commands_for(request, self.registry.by_id, now):
            if cmd.kind == "owntracks_restore":
                if batch is not None:
                    await batch.flush(conn)  # the end this drops may be queued
                await st.cancel_commands(conn, cmd.topic, cmd.kind, cmd.not_before, now)
            delivery = st.Delivery(
                cmd.command_id,
                request.alert_id,
                "command",
                cmd.topic,
                cmd.kind,
                cmd.body,
                next_attempt_at=cmd.not_before,
                case_id=cmd.case_id,
                reason=request.reason,
            )
            if batch is not None:
                batch.queue(delivery, now)
            else:
                added += await st.add_delivery(conn, delivery, now, self.notifier.notify_channel)
        return added

    async def case_closed(self, case_id: str, now: datetime) -> int:
        """A case was closed: stop re-sending its victim warnings; returns how many were cancelled."""
        async with self.db.pool.connection() as conn, conn.transaction():
            return await st.cancel_victim_deliveries(conn, now, case_id=case_id)

    def _after_commit(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            self.room.publish(alert)

    async def on_ack(self, device_id: str, payload: bytes, now: datetime) -> None:
        """A victim device acknowledges ``{"notification_id"|"alert_id", "ts"}``: stop re-sending."""
        try:
            ack = msgspec.json.decode(payload, type=VictimAck)
        except msgspec.DecodeError as exc:  # a ValueError in __post_init__ arrives as a ValidationError
            metrics.VICTIM_ACKS.labels("invalid").inc()
            log.warning("bad ack from %s: %s", device_id, exc)
            return
        nid, aid = ack.notification_id, ack.alert_id
        changed: list[Alert] = []
        async with self.db.pool.connection() as conn, conn.transaction():
            for alert_id in await st.mark_acked(conn, device_id, nid, aid, now):
                alert = await st.get(conn, alert_id, lock=True)
                if alert is None:
                    continue
                change = Change(
                    replace(alert, victim_acked_at=alert.victim_acked_at or now, updated_at=now),
                    "victim_acked",
                    actor=device_id,
                    detail={"notification_id": nid, "ts": ack.ts},
                )
                changed.append(await self._store(conn, change, now))
        metrics.VICTIM_ACKS.labels("matched" if changed else "unmatched").inc()
        self._after_commit(changed)

    # -- time ---------------------------------------------------------------------------------

    async def tick(self, now: datetime) -> None:
        """Escalations (ack deadlines, unacknowledged victim warnings), silence detection, gauges."""

        def escalate(alert: Alert) -> Change | None:
            due = lc.escalation_due(alert, self.config, now)
            return lc.escalate(alert, "not acknowledged within deadline", now) if due else None

        changed: list[Alert] = []
        async with self.db.pool.connection() as conn, conn.transaction():
            if self.fence is not None:
                await self.fence.check(conn)  # escalation and silence: one instance (the lease's holder) only
            for alert in await st.escalation_candidates(conn, self._escalation_cutoffs(now)):
                changed += await self._decide_locked(conn, alert, escalate, now)
            before = now - timedelta(seconds=self.config.victim_ack_deadline_s)
            for d in await st.overdue_victim_deliveries(conn, before):
                await st.mark_delivery_escalated(conn, d.delivery_id)
                target = None if d.alert_id is None else await st.get(conn, d.alert_id, lock=True)
                if target is None:
                    continue
                change = lc.escalate(target, "victim device did not acknowledge the warning", now) or Change(
                    target, "victim_not_acknowledged", detail={"delivery_id": d.delivery_id}
                )
                changed.append(await self._store(conn, change, now))
            changed += await self._silence(conn, now)
        self._after_commit(changed)
        await self.tasks.tick(now, self.fence)
        await self._gauges()

    def _escalation_cutoffs(self, now: datetime) -> dict[Priority, datetime]:
        """For each priority that escalates, the latest opening time whose acknowledgement deadline may
        have passed at ``now`` (a little later: :func:`lc.escalation_due` decides on each row read)."""
        cutoffs: dict[Priority, datetime] = {}
        for p in Priority:
            deadline = self.config.ack_deadline_s(p)
            if deadline > 0:
                try:
                    cutoffs[p] = now - timedelta(seconds=deadline) + _ESCALATION_SLACK
                except (OverflowError, ValueError):  # a deadline beyond the calendar never falls due
                    continue
        return cutoffs

    async def _decide_locked(
        self, conn: st.Conn, snapshot: Alert, decide: Callable[[Alert], Change | None], now: datetime
    ) -> list[Alert]:
        """Decide on an unlocked snapshot; if that changes anything, decide again on the row locked — a
        person may have acknowledged or resolved it meanwhile — and store that."""
        if decide(snapshot) is None:
            return []
        locked = await st.get(conn, snapshot.alert_id, lock=True)
        change = locked and decide(locked)
        return [await self._store(conn, change, now)] if change else []

    async def _silence(self, conn: st.Conn, now: datetime) -> list[Alert]:
        # Only the devices of open cases can fall silent for anyone: their times alone are read (a
        # fleet's spare and unassigned devices would cost a parse each, every tick, on the event loop).
        cases = self.casebook.all()
        devices = sorted({d for c in cases for d in (c.offender_device, c.victim_device) if d is not None})
        last_seen, latest = await self.live.last_seen(devices), await self.live.latest_times(devices)
        open_silent = await st.open_by_rule(conn, _SILENCE_TYPES)  # one query, not several per device
        changed: list[Alert] = []
        for case_obj in cases:
            case = self._case(case_obj.case_id)
            for device_id in (case.offender_device, case.victim_device):
                device = self.registry.by_id.get(device_id) if device_id else None
                if device is None:
                    continue
                for alert_type in _SILENCE_TYPES:
                    prev = open_silent.get((case.case_id, lc.device_rule(device.device_id, alert_type)))
                    heard = heard_since(alert_type, device.device_id, last_seen, latest)
                    if prev is not None and heard is not None:
                        changed += await self._decide_locked(
                            conn, prev, functools.partial(lc.on_heard_again, last_seen=heard, now=now), now
                        )
                silence = find_silence(
                    device.device_id,
                    device.report_interval_s,
                    self.config.silence_factor,
                    last_seen,
                    latest,
                    now,
                )
                if silence is None:
                    continue
                prev = open_silent.get((case.case_id, lc.device_rule(device.device_id, silence.type)))
                suppressed = await self._suppressed(conn, case.case_id, silence.type, now)
                change = lc.on_silence(
                    prev,
                    case,
                    device.device_id,
                    device.kind.value,
                    silence.type,
                    silence.since,
                    self.routing,
                    suppressed=suppressed,
                    now=now,
                )
                if change:
                    changed.append(await self._store(conn, change, now))
        return changed

    async def _gauges(self) -> None:
        async with self.db.pool.connection() as conn:
            depth, counts = await st.outbox_depth(conn), await st.open_counts(conn)
        for channel in ("victim", "dispatch", "command"):
            metrics.OUTBOX_DEPTH.labels(channel).set(depth.get(channel, 0))
        for t in AlertType:
            for s in (AlertState.OPEN, AlertState.ACKNOWLEDGED):
                metrics.ALERTS_OPEN.labels(t.value, s.value).set(counts.get((t.value, s.value), 0))

    async def _delivery_failing(self, conn: st.Conn, d: st.Delivery, error: str, now: datetime) -> None:
        alert = None if d.alert_id is None else await st.get(conn, d.alert_id, lock=True)
        detail = {
            "delivery_id": d.delivery_id,
            "channel": d.channel,
            "attempts": d.attempts + 1,
            "error": error,
        }
        change = alert and lc.mark_delivery_failing(alert, detail, now)
        if change:
            self.room.publish(await self._store(conn, change, now))
        self.room.hub.publish("delivery_failing", {"alert_id": d.alert_id, **detail})

    # -- people (the REST API) ---------------------------------------------------------------

    async def open_alerts(self, case_id: str) -> list[dict[str, Any]]:
        async with self.db.pool.connection() as conn:
            return [a.to_json() for a in await st.open_alerts(conn, case_id)]

    async def open_alerts_of(self, case_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The unresolved alerts of all these cases (one query: a room stream connects with many cases)."""
        async with self.db.pool.connection() as conn:
            return [a.to_json() for a in await st.open_alerts_of(conn, case_ids)]

    async def list_alerts(
        self, *, case_id: str | None = None, state: str | None = None, type_: str | None = None
    ) -> list[dict[str, Any]]:
        async with self.db.pool.connection() as conn:
            return [a.to_json() for a in await st.search(conn, case_id=case_id, state=state, type_=type_)]

    async def get_alert(self, alert_id: str) -> dict[str, Any]:
        """The alert with its history and every delivery (with attempts)."""
        async with self.db.pool.connection() as conn:
            alert = await st.get(conn, _uuid(alert_id))
            if alert is None:
                raise NotFound(f"alert {alert_id}")
            return {
                **alert.to_json(),
                "history": await st.history(conn, alert.alert_id),
                "deliveries": await st.deliveries(conn, alert.alert_id),
            }

    async def act(
        self,
        alert_id: str,
        action: str,
        who: str,
        now: datetime,
        *,
        note: str | None = None,
        outcome: str | None = None,
    ) -> dict[str, Any]:
        """acknowledge / resolve / annotate, by a person; raises InvalidInput or NotFound."""
        async with self.db.pool.connection() as conn, conn.transaction():
            alert = await st.get(conn, _uuid(alert_id), lock=True)
            if alert is None:
                raise NotFound(f"alert {alert_id}")
            if action == "acknowledge":
                change = lc.acknowledge(alert, who, note, now)
            elif action == "resolve":
                change = lc.resolve(alert, who, outcome or "", note, now)
            else:
                change = lc.annotate(alert, who, note or "", now)
            stored = await self._store(conn, change, now)
        self._after_commit([stored])
        return stored.to_json()

    async def suppress(
        self, case_id: str, reason: str, until: datetime, types: list[str] | None, who: str, now: datetime
    ) -> dict[str, Any]:
        """Hold back deliveries of a case's alerts until ``until`` (panic is never held back)."""
        if not reason.strip():
            raise InvalidInput("a reason is required")
        if until <= now or until - now > timedelta(days=7):
            raise InvalidInput("until must be in the future and at most 7 days ahead")
        for t in types or []:
            if t not in {a.value for a in AlertType}:
                raise InvalidInput(f"unknown alert type {t!r}")
        async with self.db.pool.connection() as conn, conn.transaction():
            sid = await st.add_suppression(conn, case_id, types, reason, until, who, now)
        return {
            "id": sid,
            "case_id": case_id,
            "reason": reason,
            "until": until.isoformat(),
            "types": types,
            "created_by": who,
            "created_at": now.isoformat(),
            "never_suppressed": [AlertType.PANIC.value],
        }


def _uuid(alert_id: str) -> str:
    try:
        return str(uuid.UUID(alert_id))
    except ValueError as exc:
        raise NotFound(f"alert {alert_id}") from exc
