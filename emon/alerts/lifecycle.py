"""The alert lifecycle as pure functions of (previous alert, input, now) → a :class:`Change` or None.

Nothing here touches a socket, a database or the clock. The rules, stated once:

* One alert per (case, rule, episode); later events update it (closest distance, latest positions).
* A worse ring in the same episode (pre-alert → breach) or a closest distance that shrank by more than
  ``renotify_closer_m`` since the last notification starts a new notification round.
* Late alerts (``live=False``, or decided more than ``late_after_s`` after the fix) and retrospective
  violations never warn the victim; they are recorded and routed to the others.
* A suppressed alert is recorded and shown in the room but notifies nobody — except panic.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from emon.alerts.config import AlertConfig
from emon.alerts.model import Alert, CaseInfo, Change, Sighting, alert_id_for
from emon.alerts.routing import Routing
from emon.alerts.types import (
    NEVER_SUPPRESSED,
    SEVERITY_RANK,
    AlertState,
    AlertType,
    Priority,
    Recipient,
)
from emon.errors import InvalidInput
from emon.fix import DeviceEvent, EventType
from emon.geofence.events import EPISODE_STARTS, EvalEvent, EvalEventType

_STARTS = {
    t.value for t in EPISODE_STARTS
}  # each is an AlertType of the same value (tests/alerts/test_types.py)
_ENDS: dict[EvalEventType, frozenset[AlertType]] = {
    EvalEventType.EXCLUSION_PRE_ALERT_ENDED: frozenset({AlertType.EXCLUSION_PRE_ALERT}),
    EvalEventType.EXCLUSION_BREACH_ENDED: frozenset(
        {AlertType.EXCLUSION_BREACH, AlertType.EXCLUSION_PRE_ALERT}
    ),
    EvalEventType.INCLUSION_BREACH_ENDED: frozenset({AlertType.INCLUSION_BREACH}),
    EvalEventType.PROXIMITY_PRE_ALERT_ENDED: frozenset({AlertType.PROXIMITY_PRE_ALERT}),
    EvalEventType.PROXIMITY_BREACH_ENDED: frozenset(
        {AlertType.PROXIMITY_BREACH, AlertType.PROXIMITY_PRE_ALERT}
    ),
    EvalEventType.PROXIMITY_KNOWN: frozenset({AlertType.PROXIMITY_UNKNOWN}),
    EvalEventType.POSSIBLE_BREACH_ENDED: frozenset({AlertType.POSSIBLE_BREACH}),
}
# When their episode ends, these close themselves: nothing happened that a person must judge.
_AUTO_RESOLVE = frozenset(
    {
        AlertType.EXCLUSION_PRE_ALERT,
        AlertType.PROXIMITY_PRE_ALERT,
        AlertType.PROXIMITY_UNKNOWN,
        AlertType.POSSIBLE_BREACH,  # fresh fixes decided it was lawful
    }
)
_DEVICE_TYPES: dict[EventType, AlertType] = {
    EventType.TAMPER: AlertType.TAMPER,
    EventType.STRAP_OPEN: AlertType.STRAP_OPEN,
    EventType.BATTERY_LOW: AlertType.BATTERY_LOW,
    EventType.BATTERY_CRITICAL: AlertType.BATTERY_CRITICAL,
    EventType.PANIC: AlertType.PANIC,
    EventType.CONNECTION_LOST: AlertType.NO_COMMUNICATION,  # the MQTT last will: the fast path
    EventType.POWER_OFF: AlertType.NO_COMMUNICATION,
}
_PRIORITY_ORDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.CRITICAL]
# Confirmed violations the victim is warned of, at every risk level, when the rule protects them.
_VICTIM_WARNED = frozenset({AlertType.PROXIMITY_BREACH, AlertType.EXCLUSION_BREACH})


def victim_policy(
    recipients: frozenset[Recipient], alert_type: AlertType, rule: str, case: CaseInfo
) -> frozenset[Recipient]:
    """The routing matrix's recipients with the victim's rules applied: a confirmed breach of a rule that
    protects the victim (the contact ban, a ``protects_victim`` zone) warns the victim at every risk
    level. A victim who opted out (``victim_notifications: "none"``) gets nothing on their device but the
    confirmation of their own panic alarm; a closed case warns no device at all. The matrix (and
    ``EMON_ROUTING_FILE``) still decides for every other rule."""
    if case.closed or (not case.victim_notifications and alert_type is not AlertType.PANIC):
        return recipients - {Recipient.VICTIM}
    if alert_type in _VICTIM_WARNED and rule in case.victim_rules:
        return recipients | {Recipient.VICTIM}
    return recipients


def alert_type_of(ev: EvalEvent, prev: Alert | None) -> AlertType | None:
    """The alert type an evaluation event opens or updates; None for an episode end."""
    if ev.type.value in _STARTS:
        return AlertType(ev.type.value)
    if ev.type is EvalEventType.BREACH_UPDATE:
        if prev is not None:
            return prev.type
        kind = ev.rule.split(":", 1)[0]
        return {"proximity": AlertType.PROXIMITY_BREACH, "inclusion": AlertType.INCLUSION_BREACH}.get(
            kind, AlertType.EXCLUSION_BREACH
        )
    return None


def device_alert_type(ev: DeviceEvent) -> AlertType | None:
    return _DEVICE_TYPES.get(ev.type)


def device_rule(device_id: str, alert_type: AlertType) -> str:
    return f"device:{device_id}:{alert_type.value}"


def deliverable(alert: Alert, recipients: frozenset[Recipient]) -> frozenset[Recipient]:
    """Who may actually be notified of this alert now (the victim and suppression rules)."""
    if alert.suppressed and alert.type not in NEVER_SUPPRESSED:
        return frozenset()
    if alert.late or not alert.live or alert.type is AlertType.RETROSPECTIVE_VIOLATION:
        recipients = recipients - {Recipient.VICTIM}
    return recipients


def _notified(alert: Alert, recipients: frozenset[Recipient], closest: float | None) -> Alert:
    if not recipients:
        return alert
    return replace(alert, notify_seq=alert.notify_seq + 1, notified_closest_m=closest)


def _positions(ev: EvalEvent, case: CaseInfo) -> tuple[Sighting | None, Sighting | None]:
    offender = victim = None
    for e in ev.evidence:
        pos = Sighting(e.lat, e.lon, e.acc_m, e.ts)
        if e.device_id == case.victim_device:
            victim = pos
        elif e.device_id == case.offender_device or offender is None:
            offender = pos
    return offender, victim


def _min(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return min(values) if values else None


def _new(
    case: CaseInfo,
    alert_type: AlertType,
    rule: str,
    episode: datetime,
    routing: Routing,
    *,
    now: datetime,
    late: bool,
    live: bool,
    suppressed: bool,
    device_id: str | None = None,
    device_kind: str | None = None,
    explanation: dict[str, Any] | None = None,
    distance_m: float | None = None,
    offender_position: Sighting | None = None,
    victim_position: Sighting | None = None,
) -> Alert:
    """A new open alert (its closest distance so far: ``distance_m``), built in one go: a decision's
    alert is not rebuilt field by field."""
    route = routing.route(alert_type, case.risk, device_kind)
    return Alert(
        alert_id=alert_id_for(case.case_id, rule, episode),
        case_id=case.case_id,
        type=alert_type,
        rule=rule,
        episode=episode,
        state=AlertState.OPEN,
        priority=route.priority,
        recipients=victim_policy(route.recipients, alert_type, rule, case),
        risk=case.risk,
        opened_at=now,
        updated_at=now,
        device_id=device_id,
        late=late,
        live=live,
        suppressed=suppressed and alert_type not in NEVER_SUPPRESSED,
        explanation=explanation or {},
        distance_m=distance_m,
        closest_m=distance_m,
        offender_position=offender_position,
        victim_position=victim_position,
    )


def on_evaluation(
    prev: Alert | None,
    ev: EvalEvent,
    case: CaseInfo,
    routing: Routing,
    config: AlertConfig,
    *,
    suppressed: bool,
    now: datetime,
) -> Change | None:
    """Apply one evaluation event to the alert of its (case, rule, episode)."""
    alert_type = alert_type_of(ev, prev)
    if alert_type is None:
        return None if prev is None else _end(prev, ev, now)
    offender, victim = _positions(ev, case)
    late = not ev.live or (now - ev.at).total_seconds() > config.late_after_s
    explanation = ev.explain()
    if prev is None:
        alert = _new(
            case,
            alert_type,
            ev.rule,
            ev.episode,
            routing,
            now=now,
            late=late,
            live=ev.live,
            suppressed=suppressed,
            explanation=explanation,
            distance_m=ev.distance_m,
            offender_position=offender,
            victim_position=victim,
        )
        notify = deliverable(alert, alert.recipients)
        return Change(_notified(alert, notify, alert.closest_m), "opened", detail=explanation, notify=notify)
    closest = _min(prev.closest_m, ev.distance_m)
    alert = replace(
        prev,
        updated_at=now,
        distance_m=ev.distance_m,
        closest_m=closest,
        explanation=explanation,
        offender_position=offender or prev.offender_position,
        victim_position=victim or prev.victim_position,
        events=prev.events + 1,
    )
    if SEVERITY_RANK.get(alert_type, 0) > SEVERITY_RANK.get(prev.type, 0):
        route = routing.route(alert_type, case.risk)
        alert = replace(
            alert,
            type=alert_type,
            recipients=victim_policy(prev.recipients | route.recipients, alert_type, prev.rule, case),
            priority=_max_priority(prev.priority, route.priority),
            state=AlertState.OPEN,
            resolved_at=None,
            resolved_by=None,
            ended_at=None,
            late=prev.late and late,
            live=prev.live or ev.live,
        )
        # A possible state is for the room: rising into it tells only its own route's recipients.
        told = route.recipients if alert_type is AlertType.POSSIBLE_BREACH else alert.recipients
        notify = deliverable(alert, told)
        return Change(_notified(alert, notify, closest), "worsened", detail=explanation, notify=notify)
    if not prev.is_open:
        return Change(alert, "updated_after_resolve", detail=explanation)
    reference = prev.notified_closest_m
    if (
        closest is not None
        and reference is not None
        and prev.notify_seq > 0
        and reference - closest > config.renotify_closer_m
    ):
        notify = deliverable(alert, alert.recipients & {Recipient.VICTIM, Recipient.POLICE})
        return Change(_notified(alert, notify, closest), "closer", detail=explanation, notify=notify)
    return Change(alert, "updated", detail=explanation)


def _end(prev: Alert, ev: EvalEvent, now: datetime) -> Change | None:
    if prev.type not in _ENDS.get(ev.type, frozenset()) or prev.ended_at is not None:
        return None
    alert = replace(prev, ended_at=ev.at, updated_at=now)
    if prev.type in _AUTO_RESOLVE and prev.is_open and not prev.escalated:
        alert = replace(
            alert, state=AlertState.RESOLVED, resolved_at=now, resolved_by="system", outcome="episode ended"
        )
        return Change(alert, "auto_resolved", detail=ev.explain())
    return Change(alert, "ended", detail=ev.explain())


def on_device_event(
    prev: Alert | None,
    ev: DeviceEvent,
    case: CaseInfo,
    device_kind: str | None,
    routing: Routing,
    config: AlertConfig,
    *,
    suppressed: bool,
    now: datetime,
) -> Change | None:
    """Apply one device event. ``prev`` is the alert of the same id (tamper, strap: never debounced)
    or the open alert of the same (case, rule) (battery, panic, no_communication: merged)."""
    alert_type = device_alert_type(ev)
    if alert_type is None:
        return None
    detail = {"device_id": ev.device_id, "event": ev.type.value, "ts": ev.ts.isoformat(), "data": ev.data}
    if prev is not None:
        if prev.episode == ev.ts or not prev.is_open:
            return None  # a replay of the same event, or (merged types) nothing open to merge into
        return Change(
            replace(prev, updated_at=now, events=prev.events + 1, explanation=detail),
            "updated",
            detail=detail,
        )
    late = (now - ev.ts).total_seconds() > config.late_after_s
    alert = _new(
        case,
        alert_type,
        device_rule(ev.device_id, alert_type),
        ev.ts,
        routing,
        now=now,
        late=late,
        live=not late,
        suppressed=suppressed,
        device_id=ev.device_id,
        device_kind=device_kind,
        explanation=detail,
    )
    notify = deliverable(alert, alert.recipients)
    return Change(_notified(alert, notify, None), "opened", detail=detail, notify=notify)


def with_positions(
    alert: Alert, offender: Sighting | None, victim: Sighting | None, now: datetime, fresh_s: float
) -> Alert:
    """A panic alert with both devices' latest fixes (degrees, metres, UTC) and their ages at ``now``:
    ``explanation["positions"]`` says per device how old its fix is and whether it is fresh (at most
    ``fresh_s`` seconds old), or that there is none."""

    def facts(pos: Sighting | None) -> dict[str, Any] | None:
        if pos is None:
            return None
        age = max(0.0, (now - pos.ts).total_seconds())
        return {**pos.to_json(), "age_s": round(age, 1), "fresh": age <= fresh_s}

    positions = {"victim": facts(victim), "offender": facts(offender), "fresh_limit_s": fresh_s}
    return replace(
        alert,
        offender_position=offender or alert.offender_position,
        victim_position=victim or alert.victim_position,
        explanation={**alert.explanation, "positions": positions},
    )


def on_silence(
    prev: Alert | None,
    case: CaseInfo,
    device_id: str,
    device_kind: str | None,
    alert_type: AlertType,
    since: datetime,
    routing: Routing,
    *,
    suppressed: bool,
    now: datetime,
) -> Change | None:
    """A device silent (no message, or no fix) since ``since``; ``prev`` is the open alert of that rule."""
    if prev is not None and prev.is_open:
        return None
    detail = {
        "device_id": device_id,
        "device_kind": device_kind,
        "silent_since": since.isoformat(),
        "silent_for_s": round((now - since).total_seconds(), 1),
    }
    alert = _new(
        case,
        alert_type,
        device_rule(device_id, alert_type),
        since,
        routing,
        now=now,
        late=False,
        live=True,
        suppressed=suppressed,
        device_id=device_id,
        device_kind=device_kind,
        explanation=detail,
    )
    notify = deliverable(alert, alert.recipients)
    return Change(_notified(alert, notify, None), "opened", detail=detail, notify=notify)


def on_heard_again(prev: Alert, last_seen: datetime, now: datetime) -> Change | None:
    """A silent device reports again: the silence alert ends (a person still resolves it)."""
    if prev.ended_at is not None or last_seen <= prev.episode:
        return None
    return Change(
        replace(prev, ended_at=last_seen, updated_at=now), "ended", detail={"heard_at": last_seen.isoformat()}
    )


def acknowledge(alert: Alert, who: str, note: str | None, now: datetime) -> Change:
    if alert.state is not AlertState.OPEN:
        raise InvalidInput(f"alert is {alert.state.value}, only an open alert can be acknowledged")
    new = replace(
        alert, state=AlertState.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=who, updated_at=now
    )
    return Change(new, "acknowledged", actor=who, detail={"note": note})


def resolve(alert: Alert, who: str, outcome: str, note: str | None, now: datetime) -> Change:
    """Close an alert. Tamper and strap-open need a note (what was found); police get a CAP Cancel."""
    if alert.state is AlertState.RESOLVED:
        raise InvalidInput("alert is already resolved")
    if not outcome.strip():
        raise InvalidInput("an outcome is required")
    if alert.type in (AlertType.TAMPER, AlertType.STRAP_OPEN) and not (note and note.strip()):
        raise InvalidInput(f"resolving a {alert.type.value} alert requires a note")
    new = replace(
        alert, state=AlertState.RESOLVED, resolved_at=now, resolved_by=who, outcome=outcome, updated_at=now
    )
    cancel = Recipient.POLICE in alert.recipients and alert.notify_seq > 0 and not alert.suppressed
    return Change(new, "resolved", actor=who, detail={"outcome": outcome, "note": note}, cancel_police=cancel)


def annotate(alert: Alert, who: str, note: str, now: datetime) -> Change:
    if not note.strip():
        raise InvalidInput("a note is required")
    return Change(replace(alert, updated_at=now), "annotated", actor=who, detail={"note": note})


def escalation_due(alert: Alert, config: AlertConfig, now: datetime) -> bool:
    """True when an open alert stayed unacknowledged past its priority's deadline."""
    deadline = config.ack_deadline_s(alert.priority)
    return (
        alert.state is AlertState.OPEN
        and not alert.escalated
        and not alert.suppressed
        and deadline > 0
        and (now - alert.opened_at).total_seconds() >= deadline
    )


def escalate(alert: Alert, reason: str, now: datetime) -> Change | None:
    """Add police (and probation), raise the priority one step and notify police; once per alert."""
    if alert.escalated or not alert.is_open:
        return None
    i = _PRIORITY_ORDER.index(alert.priority)
    new = replace(
        alert,
        escalated=True,
        updated_at=now,
        recipients=alert.recipients | {Recipient.POLICE, Recipient.PROBATION},
        priority=_PRIORITY_ORDER[min(i + 1, len(_PRIORITY_ORDER) - 1)],
        suppressed=False,
    )
    notify = frozenset({Recipient.POLICE})
    return Change(
        _notified(new, notify, new.closest_m), "escalated", detail={"reason": reason}, notify=notify
    )


def mark_delivery_failing(alert: Alert, detail: dict[str, Any], now: datetime) -> Change | None:
    if alert.delivery_failing:
        return None
    return Change(replace(alert, delivery_failing=True, updated_at=now), "delivery_failing", detail=detail)


def _max_priority(a: Priority, b: Priority) -> Priority:
    return max(a, b, key=_PRIORITY_ORDER.index)
