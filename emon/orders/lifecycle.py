"""An order's term as a sequence of duties, as pure functions of (term, watch, now): no I/O, no clock.

Before the end of a term the responsible officers get reminders at fixed offsets (default 21, 14, 7, 3
and 1 days); each reminder is a task due at the next offset (or the end) and escalates to the unit's
lead and the room when nobody records a decision by then. At the end of a term without a decision the
order expires: the officers and the room are alerted ("order expired unextended") and the victim is
told that the protection has ended. The watch of a term is keyed by (case, valid_until): an extension
is a new term, so its reminders start over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

DEFAULT_OFFSETS_DAYS: tuple[int, ...] = (21, 14, 7, 3, 1)
ROOM = "room"  # the monitoring room, as an escalation target next to user ids


class DecisionKind(StrEnum):
    EXTENDED = "extended"  # a new order version with its own term
    LET_EXPIRE = "let_expire"  # the order ends at its term, deliberately
    REPLACED = "replaced"  # a new order document replaces this one


class Notice(StrEnum):
    """What the victim is told about their protection."""

    IMPOSED = "imposed"
    EXTENDED = "extended"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Term:
    """What the lifecycle needs of a case's order in force; times UTC."""

    case_id: str
    version: int
    valid_until: datetime | None
    extensions: int = 0
    prosecutor: str | None = None
    probation_officer: str | None = None
    leads: tuple[str, ...] = ()  # the configured leads of the case's units
    victim_notifications: str = "all"

    @property
    def officers(self) -> tuple[str, ...]:
        return tuple(x for x in (self.prosecutor, self.probation_officer) if x is not None)


@dataclass(frozen=True, slots=True)
class Watch:
    """What has been done about one term (case, valid_until)."""

    case_id: str
    valid_until: datetime
    reminded: frozenset[int] = frozenset()
    decision: DecisionKind | None = None
    expired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Remind:
    """Open a reminder task for ``to``, due at ``deadline``; unanswered, it escalates to ``escalate_to``."""

    case_id: str
    valid_until: datetime
    offset_days: int
    deadline: datetime
    to: tuple[str, ...]
    escalate_to: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Expired:
    """The term has ended; ``decision`` None means nobody decided: raise "order expired unextended"."""

    case_id: str
    valid_until: datetime
    decision: DecisionKind | None
    to: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class TellVictim:
    case_id: str
    notice: Notice
    valid_until: datetime | None


Action = Remind | Expired | TellVictim


def step(
    term: Term, watch: Watch | None, now: datetime, offsets_days: Sequence[int] = DEFAULT_OFFSETS_DAYS
) -> tuple[Watch | None, list[Action]]:
    """The term's watch after ``now`` and what to do. A term without an end has no watch (it is listed as
    open-ended instead). A tick that comes late (several offsets passed) sends only the most urgent one."""
    if term.valid_until is None:
        return watch, []
    until = term.valid_until
    actions: list[Action] = []
    if watch is None or watch.valid_until != until:
        watch = Watch(term.case_id, until)
        if term.victim_notifications != "none" and now < until:
            actions.append(
                TellVictim(term.case_id, Notice.EXTENDED if term.extensions else Notice.IMPOSED, until)
            )
    if now >= until:
        if watch.expired_at is None:
            watch = replace(watch, expired_at=now)
            actions.append(Expired(term.case_id, until, watch.decision, term.officers))
            if term.victim_notifications != "none":
                actions.append(TellVictim(term.case_id, Notice.ENDED, until))
        return watch, actions
    if watch.decision is not None:
        return watch, actions
    ordered = sorted(set(offsets_days), reverse=True)
    due = [o for o in ordered if o not in watch.reminded and now >= until - timedelta(days=o)]
    if due:
        offset = due[-1]
        later = [o for o in ordered if o < offset]
        deadline = until - timedelta(days=later[0]) if later else until
        actions.append(Remind(term.case_id, until, offset, deadline, term.officers, (*term.leads, ROOM)))
        watch = replace(watch, reminded=watch.reminded | frozenset(due))
    return watch, actions


def gap(watch: Watch | None, now: datetime) -> tuple[datetime, datetime] | None:
    """The period without an order in force when an extension is entered after its term ended."""
    if watch is None or watch.expired_at is None or watch.decision is not None:
        return None
    return watch.valid_until, now


def responsible(to: Sequence[str], escalate_to: Sequence[str], escalation_level: int) -> tuple[str, ...]:
    """Who must act on a reminder now: its officers, plus the leads and the room once it escalated."""
    return tuple(to) if escalation_level == 0 else (*to, *escalate_to)


def in_force(valid_from: datetime | None, valid_until: datetime | None, now: datetime) -> bool:
    """True if an order with this term is enforced at ``now`` (the engine's rule: from <= now < until)."""
    return (valid_from is None or valid_from <= now) and (valid_until is None or now < valid_until)
