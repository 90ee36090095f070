"""A room task and its lifecycle as pure functions of (task, now): no I/O, no clock.

One model serves every work item a person in the monitoring room must do by a deadline: "inform the
victim by phone" (a warning that could not reach the victim's device), "obtain a fresh fix / check"
(a possible breach), and the reminders of other features (add a :class:`TaskKind` line). A task that
is still open at its deadline escalates: its priority goes up one step, the escalation level counts
up and a new deadline is set ``escalate_s`` later — again and again until someone marks it done.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from emon.alerts.types import Priority
from emon.errors import InvalidInput

_NAMESPACE = uuid.UUID("3d0f6a55-1c2b-4f7e-a3c9-7461736b7321")  # fixed forever: ids must not change
_PRIORITY_ORDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.CRITICAL]


class TaskKind(StrEnum):
    INFORM_VICTIM = "inform_victim"  # a warning did not (or may not) reach the victim's device: call them
    CHECK_POSSIBLE = "check_possible"  # a possible breach: obtain a fresh fix / check
    ORDER_REMINDER = "order_reminder"  # an order's term ends soon: record a decision (emon/orders)
    REPORT_PROSECUTOR = "report_prosecutor"  # a confirmed violation: report it to the prosecutor in term


class TaskState(StrEnum):
    OPEN = "open"
    DONE = "done"


TITLES: dict[TaskKind, str] = {
    TaskKind.INFORM_VICTIM: "Slachtoffer telefonisch informeren (inform the victim by phone)",
    TaskKind.CHECK_POSSIBLE: "Verse positie verkrijgen / controleren (obtain a fresh fix / check)",
    TaskKind.ORDER_REMINDER: "Besluit over afloop maatregel vastleggen (decide on the order's end: extend or not)",
    TaskKind.REPORT_PROSECUTOR: "Overtreding melden aan het OM (report the violation to the prosecutor)",
}


def task_id_for(kind: TaskKind, subject: str) -> str:
    """The one id of the task of ``kind`` about ``subject`` (an alert id, a case id…): replays make no second."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind.value}|{subject}"))


@dataclass(frozen=True, slots=True)
class Task:
    """One room task: about a case and, usually, one alert; times UTC."""

    task_id: str
    kind: TaskKind
    case_id: str
    alert_id: str | None
    title: str
    priority: Priority
    state: TaskState
    created_at: datetime
    deadline: datetime
    escalation_level: int = 0
    escalated_at: datetime | None = None
    done_at: datetime | None = None
    done_by: str | None = None
    note: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def t(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "task_id": self.task_id,
            "kind": self.kind.value,
            "case_id": self.case_id,
            "alert_id": self.alert_id,
            "title": self.title,
            "priority": self.priority.value,
            "state": self.state.value,
            "created_at": self.created_at.isoformat(),
            "deadline": self.deadline.isoformat(),
            "escalation_level": self.escalation_level,
            "escalated_at": t(self.escalated_at),
            "done_at": t(self.done_at),
            "done_by": self.done_by,
            "note": self.note,
            "detail": self.detail,
        }


def new_task(
    kind: TaskKind,
    case_id: str,
    alert_id: str | None,
    priority: Priority,
    now: datetime,
    deadline_s: float,
    detail: dict[str, Any] | None = None,
    *,
    subject: str | None = None,
) -> Task:
    """An open task due ``deadline_s`` seconds from ``now``; its id follows from (kind, ``subject``), by
    default the alert (or the case): one task per subject, however often it is decided."""
    return Task(
        task_id_for(kind, subject or alert_id or case_id),
        kind,
        case_id,
        alert_id,
        TITLES[kind],
        priority,
        TaskState.OPEN,
        now,
        now + timedelta(seconds=deadline_s),
        detail=detail or {},
    )


def escalation_due(task: Task, now: datetime) -> bool:
    return task.state is TaskState.OPEN and now >= task.deadline


def escalate(task: Task, now: datetime, escalate_s: float) -> Task | None:
    """The task one escalation step further (priority up, level + 1, next deadline), or None if not due."""
    if not escalation_due(task, now):
        return None
    i = _PRIORITY_ORDER.index(task.priority)
    return replace(
        task,
        priority=_PRIORITY_ORDER[min(i + 1, len(_PRIORITY_ORDER) - 1)],
        escalation_level=task.escalation_level + 1,
        escalated_at=now,
        deadline=now + timedelta(seconds=escalate_s),
    )


def done(task: Task, who: str, note: str, now: datetime) -> Task:
    """Mark a task done by a person, with a note saying what was done."""
    if task.state is TaskState.DONE:
        raise InvalidInput("task is already done")
    if not note.strip():
        raise InvalidInput("a note is required (what was done)")
    return replace(task, state=TaskState.DONE, done_at=now, done_by=who, note=note)
