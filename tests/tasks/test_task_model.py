"""The room task lifecycle, pure: deadlines, repeated escalation, done with a note."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emon.alerts.types import Priority
from emon.errors import InvalidInput
from emon.tasks import model
from emon.tasks.model import TaskKind, TaskState

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_task_is_due_at_its_deadline_and_its_id_follows_from_kind_and_subject() -> None:
    task = model.new_task(TaskKind.INFORM_VICTIM, "case-1", "a-1", Priority.HIGH, T0, 300)
    assert (task.deadline, task.state, task.escalation_level) == (at(300), TaskState.OPEN, 0)
    assert (
        task.task_id
        == model.new_task(TaskKind.INFORM_VICTIM, "case-1", "a-1", Priority.LOW, at(9), 1).task_id
    )
    assert (
        task.task_id
        != model.new_task(TaskKind.CHECK_POSSIBLE, "case-1", "a-1", Priority.HIGH, T0, 300).task_id
    )


@pytest.mark.parametrize(
    ("now_s", "level", "priority", "deadline_s"),
    [
        (299, None, None, None),  # not yet due
        (300, 1, Priority.CRITICAL, 360),
    ],
)
def test_escalation_steps(
    now_s: float, level: int | None, priority: Priority | None, deadline_s: float | None
) -> None:
    task = model.new_task(TaskKind.INFORM_VICTIM, "case-1", "a-1", Priority.HIGH, T0, 300)
    new = model.escalate(task, at(now_s), 60)
    if level is None:
        assert new is None
    else:
        assert new is not None
        assert (new.escalation_level, new.priority, new.deadline, new.escalated_at) == (
            level,
            priority,
            at(deadline_s or 0),
            at(now_s),
        )


def test_an_ignored_task_keeps_escalating_and_a_done_one_never() -> None:
    task = model.new_task(TaskKind.CHECK_POSSIBLE, "case-1", "a-1", Priority.LOW, T0, 60)
    levels = []
    for second in range(0, 400, 30):
        task = model.escalate(task, at(second), 60) or task
        levels.append((task.escalation_level, task.priority.value))
    assert levels[-1] == (6, "critical") and levels[2] == (1, "normal") and levels[4] == (2, "high")
    finished = model.done(task, "room", "called: not reachable, police informed", at(401))
    assert model.escalate(finished, at(10_000), 60) is None
    assert (finished.state, finished.done_by) == (TaskState.DONE, "room")


def test_done_needs_a_note_and_happens_once() -> None:
    task = model.new_task(TaskKind.INFORM_VICTIM, "case-1", None, Priority.HIGH, T0, 300)
    with pytest.raises(InvalidInput, match="note"):
        model.done(task, "room", "  ", at(1))
    finished = model.done(task, "room", "victim informed by phone", at(1))
    with pytest.raises(InvalidInput, match="already"):
        model.done(finished, "room", "again", at(2))
    assert finished.to_json()["note"] == "victim informed by phone"
