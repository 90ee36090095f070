"""The orders lifecycle at the edges: the periodic pass over open cases (reminders, expiry, victim notices),
decisions on an order's end, and "report to the prosecutor" tasks for confirmed violations.

Each case's pass is one transaction: the term's watch, the tasks it asks for and (after commit) the
expiry alert, so a crash repeats a pass but never doubles a task (task ids follow from their subject)
nor an alert (its id follows from case, rule "order" and the term's end).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from emon.alerts.service import AlertService
from emon.alerts.types import Priority
from emon.backoff import Backoff
from emon.case import Case
from emon.casebook import DOCUMENTS_PER_TURN, CaseBook
from emon.errors import InvalidInput, NotFound
from emon.geofence.events import Classification, EvalEvent, EvalEventType
from emon.hub import Hub
from emon.orders import lifecycle as lc
from emon.orders.cap import OrderEvent, build_order_cap, message_id, police_event
from emon.orders.lifecycle import Action, DecisionKind, Expired, Remind, TellVictim, Term
from emon.orders.reports import overview, report_term
from emon.storage import alerts as alert_store
from emon.storage import orders as store
from emon.storage import tasks as task_store
from emon.storage.cases import CaseRecords
from emon.storage.lease import Fence
from emon.storage.postgres import DRIVER_ERRORS, Database
from emon.tasks import model as tasks
from emon.tasks.model import Task, TaskKind

log = logging.getLogger(__name__)
ORDER_RULE = "order"
NOTICE_TEXT = {
    lc.Notice.IMPOSED: (
        "Er is een maatregel opgelegd die u beschermt, geldig tot {until}.",
        "An order protecting you has been imposed, valid until {until}.",
    ),
    lc.Notice.EXTENDED: (
        "De maatregel die u beschermt is verlengd tot {until}.",
        "The order protecting you has been extended until {until}.",
    ),
    lc.Notice.ENDED: (
        "De maatregel die u beschermde is op {until} afgelopen; er geldt geen verbod meer.",
        "The order protecting you ended on {until}; no ban is in force any more.",
    ),
}


class OrderDesk:
    def __init__(
        self,
        db: Database,
        hub: Hub,
        casebook: CaseBook,
        cases: CaseRecords,
        alerts: AlertService,
        *,
        offsets_days: Sequence[int],
        leads: dict[str, tuple[str, ...]],
        lookback: timedelta,
        key_file: str | None = None,
        evidence_s: tuple[float, float] = (600.0, 600.0),
        police_url: str | None = None,
        prosecutor_url: str | None = None,
        sender: str = "emon",
    ) -> None:
        self.db = db
        self.hub = hub
        self.casebook = casebook
        self.cases = cases
        self.alerts = alerts
        self.offsets_days = tuple(offsets_days)
        self.leads = leads
        self.lookback = lookback
        self.key_file = key_file
        self.evidence_s = evidence_s
        self.police_url = police_url
        self.prosecutor_url = prosecutor_url
        self.sender = sender
        # Set when several instances run: the lifecycle pass's writes check the coordinator lease, so
        # one instance runs it at a time (emon.cluster.coordinator); human decisions are not fenced.
        self.fence: Fence | None = None

    async def _fence(self, conn: alert_store.Conn) -> None:
        if self.fence is not None:
            await self.fence.check(conn)  # several instances: the coordinator lease's holder only

    def term(self, case: Case, version: int) -> Term:
        leads = tuple(dict.fromkeys(u for unit in case.units for u in self.leads.get(unit, ())))
        o = case.order
        return Term(
            case.case_id,
            version,
            o.valid_until,
            o.extensions,
            case.prosecutor,
            case.probation_officer,
            leads,
            o.victim_notifications,
        )

    async def tick(self, now: datetime) -> list[Action]:
        """One pass at UTC ``now``: every open case's term, then new confirmed violations. Returns the actions."""
        versions = await self.cases.current_versions()
        # Two reads for the whole pass; a case gets a transaction of its own only when something is due.
        async with self.db.pool.connection() as conn:
            watches = await store.all_watches(conn)
            told = await store.all_police_notices(conn) if self.police_url is not None else {}
        done: list[Action] = []
        for n, case in enumerate(self.casebook.documents(), 1):
            if n % DOCUMENTS_PER_TURN == 0:
                # Each document is built as it is read (≈ 0.05 ms): 10,000 cases must not hold the event
                # loop, and the fixes and alerts waiting on it, for half a second.
                await asyncio.sleep(0)
            version = versions.get(case.case_id, 1)
            term = self.term(case, version)
            if term.valid_until is not None:
                before = watches.get((case.case_id, term.valid_until))
                if lc.step(term, before, now, self.offsets_days)[0] != before:
                    done += await self._case(case, version, now)
            if (
                self.police_url is not None
                and police_event(told.get(case.case_id), version, case.order.extensions, ended=False)
                is not None
            ):
                await self._tell_police(case, version, now, ended=False)
        await self.violations(now)
        return done

    async def _case(self, case: Case, version: int, now: datetime) -> list[Action]:
        term = self.term(case, version)
        if term.valid_until is None:
            return []
        created: list[Task] = []
        async with self.db.pool.connection() as conn, conn.transaction():
            await self._fence(conn)
            before = await store.watch(conn, case.case_id, term.valid_until, lock=True)
            after, actions = lc.step(term, before, now, self.offsets_days)
            if after is None or after == before:
                return []
            await store.save_watch(conn, after)
            for action in actions:
                task = self._task(case, action, now)
                if task is not None and await task_store.insert(conn, task, now):
                    created.append(task)
        self.alerts.tasks.published(created)
        expired = [a for a in actions if isinstance(a, Expired)]
        if expired:
            await self._tell_police(case, version, now, ended=True)
            self.hub.publish(
                "order",
                {
                    "case_id": case.case_id,
                    "status": "expired",
                    "in_force": False,
                    "valid_until": term.valid_until.isoformat(),
                    "decision": None if expired[0].decision is None else expired[0].decision.value,
                },
            )
        unextended = [a for a in expired if a.decision is None]
        if unextended:
            await self.alerts.on_evaluation(
                [self._expiry_event(case, unextended[0], now)], now, time.monotonic()
            )
        return actions

    async def case_closed(self, case: Case, version: int, now: datetime) -> None:
        """A case closed before its term ended: police systems that were told of the order are told it
        ended (CAP Cancel), so nobody acts on an order no longer monitored; none that were never told."""
        if self.police_url is None:
            return
        async with self.db.pool.connection() as conn:
            told = await store.police_notice(conn, case.case_id)
        if told is not None:
            # A person's act on whichever instance served it, not the lifecycle pass: not fenced by the
            # coordinator lease (the notice row's lock and the message id keep it to one message).
            await self._tell_police(case, version, now, ended=True, fenced=False)

    async def _tell_police(
        self, case: Case, version: int, now: datetime, *, ended: bool, fenced: bool = True
    ) -> None:
        """Queue a CAP message to police systems when the order was imposed, extended, changed or ended
        since they were last told (one message per (case, version, event); none without an endpoint)."""
        if self.police_url is None:
            return
        async with self.db.pool.connection() as conn, conn.transaction():
            if fenced:
                await self._fence(conn)
            last = await store.police_notice(conn, case.case_id, lock=True)
            event = police_event(last, version, case.order.extensions, ended=ended)
            if event is None:
                return
            body = build_order_cap(case, version, event, sender=self.sender, sent=now)
            await alert_store.add_delivery(
                conn,
                alert_store.Delivery(
                    message_id(case.case_id, version, event),
                    None,
                    "police_orders",
                    self.police_url,
                    f"order_{event.value}",
                    body,
                    case_id=case.case_id,
                ),
                now,
                self.alerts.notifier.notify_channel,
            )
            await store.save_police_notice(
                conn, case.case_id, version, case.order.extensions, event is OrderEvent.ENDED, now
            )
        self.alerts.worker.wake.set()

    def _task(self, case: Case, action: Action, now: datetime) -> Task | None:
        if isinstance(action, Remind):
            subject = f"{case.case_id}|{action.valid_until.isoformat()}|{action.offset_days}"
            detail = {
                "valid_until": action.valid_until.isoformat(),
                "days_before": action.offset_days,
                "assignees": list(action.to),
                "escalate_to": list(action.escalate_to),
                "kind": case.order.kind.value,
            }
            return tasks.new_task(
                TaskKind.ORDER_REMINDER,
                case.case_id,
                None,
                Priority.NORMAL,
                now,
                max(0.0, (action.deadline - now).total_seconds()),
                detail,
                subject=subject,
            )
        if isinstance(action, TellVictim):
            until = "" if action.valid_until is None else action.valid_until.isoformat()
            nl, en = NOTICE_TEXT[action.notice]
            detail = {
                "notice": action.notice.value,
                "valid_until": until or None,
                "message_nl": nl.format(until=until),
                "message_en": en.format(until=until),
            }
            return tasks.new_task(
                TaskKind.INFORM_VICTIM,
                case.case_id,
                None,
                Priority.NORMAL,
                now,
                3600,
                detail,
                subject=f"order-notice|{case.case_id}|{action.notice.value}|{until}",
            )
        return None

    @staticmethod
    def _expiry_event(case: Case, action: Expired, now: datetime) -> EvalEvent:
        return EvalEvent(
            EvalEventType.ORDER_EXPIRED,
            case.case_id,
            ORDER_RULE,
            now,
            now,
            action.valid_until,
            Classification.CLEAR,
            None,
            (),
            True,
            {
                "valid_until": action.valid_until.isoformat(),
                "responsible": list(action.to),
                "message": "order expired unextended: no order in force",
                "kind": case.order.kind.value,
            },
        )

    # -- decisions ------------------------------------------------------------------------------

    async def decide(
        self,
        case: Case,
        version: int,
        decision: DecisionKind,
        reason: str,
        who: str,
        now: datetime,
        new_version: int | None = None,
        new_until: datetime | None = None,
    ) -> dict[str, Any]:
        """Record a decision about the end of ``case``'s current term (the case as it was *before* an
        extension or replacement, whose new version is ``new_version``). Closes the term's open reminders;
        an extension entered after the end records the gap without an order in force."""
        if not reason.strip():
            raise InvalidInput("a decision needs a reason")
        old_until = case.order.valid_until
        async with self.db.pool.connection() as conn, conn.transaction():
            watch = None if old_until is None else await store.watch(conn, case.case_id, old_until, lock=True)
            gap = lc.gap(watch, now) if decision is not DecisionKind.LET_EXPIRE else None
            if old_until is not None:
                base = watch or lc.Watch(case.case_id, old_until)
                await store.save_watch(
                    conn, lc.Watch(base.case_id, base.valid_until, base.reminded, decision, base.expired_at)
                )
            row = await store.add_decision(
                conn,
                case.case_id,
                now,
                who,
                decision,
                reason,
                old_until=old_until,
                new_until=new_until,
                from_version=version,
                to_version=new_version,
                gap=gap,
            )
            closed: list[Task] = []
            for t in await task_store.search(
                conn, state="open", case_id=case.case_id, kind=TaskKind.ORDER_REMINDER.value
            ):
                new = tasks.done(t, who, f"decision: {decision.value} — {reason}", now)
                await task_store.update(conn, new, who, "done", {"decision": decision.value}, now)
                closed.append(new)
        self.alerts.tasks.published(closed)
        if gap is not None:
            self.hub.publish(
                "order", {"case_id": case.case_id, "status": "restored", "in_force": True, "gap": row["gap"]}
            )
        return row

    async def decisions(self, case_id: str) -> list[dict[str, Any]]:
        async with self.db.pool.connection() as conn:
            return await store.decisions(conn, case_id)

    async def watch(self, case_id: str) -> lc.Watch | None:
        async with self.db.pool.connection() as conn:
            return await store.latest_watch(conn, case_id)

    # -- violation reports ----------------------------------------------------------------------

    async def violations(self, now: datetime) -> list[Task]:
        """Open a "report to the prosecutor" task for each new confirmed violation (idempotent)."""
        created: list[Task] = []
        async with self.db.pool.connection() as conn, conn.transaction():
            await self._fence(conn)
            for v in await store.unreported_violations(conn, now - self.lookback):
                case = self.casebook.document(v["case_id"]) or await self.cases.get(v["case_id"])
                if case is None:
                    continue
                alert_id, opened = str(v["alert_id"]), v["opened_at"]
                due = opened + report_term(case.order.kind.value, str(v["risk"]))
                detail = {
                    "alert_type": v["type"],
                    "rule": v["rule"],
                    "due_at": due.isoformat(),
                    "assignees": [x for x in (case.probation_officer,) if x],
                    "kind": case.order.kind.value,
                    "prosecutor": case.prosecutor,
                }
                task = tasks.new_task(
                    TaskKind.REPORT_PROSECUTOR,
                    case.case_id,
                    alert_id,
                    Priority.NORMAL,
                    opened,
                    (due - opened).total_seconds(),
                    detail,
                )
                await store.open_report(
                    conn,
                    alert_id,
                    task.task_id,
                    case.case_id,
                    case.units,
                    case.order.kind.value,
                    str(v["risk"]),
                    opened,
                    due,
                )
                if await task_store.insert(conn, task, now):
                    created.append(task)
        self.alerts.tasks.published(created)
        return created

    async def report(self, task_id: str, who: str, assessment: str, now: datetime) -> dict[str, Any]:
        """Send the violation report of a "report to the prosecutor" task (the alert's signed evidence pack
        and the officer's assessment) and close the task."""
        from emon.storage.evidence import evidence_pack

        if not assessment.strip():
            raise InvalidInput("the report needs the officer's assessment")
        async with self.db.pool.connection() as conn:
            row = await store.report_by_task(conn, task_id)
        if row is None:
            raise NotFound(f"report task {task_id}")
        if row["reported_at"] is not None:
            raise InvalidInput("this violation has already been reported")
        alert_id = str(row["alert_id"])
        pack = await evidence_pack(
            self.db,
            alert_id,
            now,
            key_file=self.key_file,
            before_s=self.evidence_s[0],
            after_s=self.evidence_s[1],
        )
        report = {
            "alert_id": alert_id,
            "case_id": row["case_id"],
            "kind": row["kind"],
            "assessment": assessment,
            "reported_by": who,
            "reported_at": now.isoformat(),
            "due_at": row["due_at"].isoformat(),
            "evidence_pack": {
                "sha256": hashlib.sha256(pack).hexdigest(),
                "size": len(pack),
                "zip_base64": base64.b64encode(pack).decode(),
            },
        }
        async with self.db.pool.connection() as conn, conn.transaction():
            locked = await store.report_by_task(conn, task_id, lock=True)
            if locked is None or locked["reported_at"] is not None:
                raise InvalidInput("this violation has already been reported")
            await store.mark_reported(conn, alert_id, now, who, assessment, report)
            if self.prosecutor_url is not None:
                await alert_store.add_delivery(
                    conn,
                    alert_store.Delivery(
                        task_id,
                        alert_id,
                        "prosecutor",
                        self.prosecutor_url,
                        "violation_report",
                        json.dumps(report, separators=(",", ":")).encode(),
                        case_id=str(row["case_id"]),
                    ),
                    now,
                    self.alerts.notifier.notify_channel,
                )
            task = await task_store.get(conn, task_id, lock=True)
            closed = None
            if task is not None and task.state is tasks.TaskState.OPEN:
                closed = tasks.done(task, who, "reported to the prosecutor", now)
                await task_store.update(conn, closed, who, "done", {"reported": True}, now)
        if closed is not None:
            self.alerts.tasks.published([closed])
        self.alerts.worker.wake.set()
        on_time = now <= row["due_at"]
        return {k: v for k, v in report.items() if k != "evidence_pack"} | {
            "on_time": on_time,
            "evidence_pack": {k: v for k, v in report["evidence_pack"].items() if k != "zip_base64"},
        }

    async def overview(
        self, since: datetime, until: datetime, units: Sequence[str] | None, now: datetime
    ) -> dict[str, Any]:
        async with self.db.pool.connection() as conn:
            rows = await store.report_rows(conn, since, until, units)
        return {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "units": None if units is None else sorted(units),
            **overview(rows, now),
        }

    async def run(self, interval_s: float) -> None:
        """Forever: a pass every ``interval_s``. A failing pass is logged and retried, never fatal."""
        backoff = Backoff(1.0, 60.0)
        while True:
            try:
                await self.tick(datetime.now(UTC))
                backoff.reset()
                await asyncio.sleep(interval_s)
            except DRIVER_ERRORS as exc:
                log.warning("orders pass failed (%s); retrying", exc)
                await asyncio.sleep(backoff.next_wait())
