"""The pure lifecycle as tables: events in → exact changes out. Time is always passed in."""

from __future__ import annotations

from dataclasses import replace

import pytest

from emon.alerts import lifecycle as lc
from emon.alerts.config import AlertConfig
from emon.alerts.model import Alert, alert_id_for, delivery_id_for
from emon.alerts.routing import Routing
from emon.alerts.types import AlertState, AlertType, Priority, Recipient
from emon.case import Risk
from emon.errors import InvalidInput
from emon.fix import EventType
from emon.geofence.events import EvalEvent
from emon.geofence.events import EvalEventType as E
from tests.alerts.helpers import T0, VICTIM, case_info, dev, prox, s

V, P, X = Recipient.VICTIM, Recipient.PROBATION, Recipient.POLICE
CFG = AlertConfig()
ROUTING = Routing()


def run(
    events: list[tuple[EvalEvent, float]], risk: Risk = Risk.HIGH, suppressed: bool = False
) -> list[tuple[str, str, frozenset[Recipient]]]:
    """Feed evaluation events (event, now in s) through one alert; return (action, type, notify) rows."""
    alert: Alert | None = None
    out: list[tuple[str, str, frozenset[Recipient]]] = []
    for ev, now_s in events:
        change = lc.on_evaluation(
            alert, ev, case_info(risk), ROUTING, CFG, suppressed=suppressed, now=s(now_s)
        )
        if change is None:
            out.append(("none", "", frozenset()))
            continue
        alert = change.alert
        out.append((change.action, alert.type.value, change.notify))
    return out


def test_ids_are_deterministic_and_distinct() -> None:
    a = alert_id_for("case-1", "proximity", T0)
    assert a == alert_id_for("case-1", "proximity", T0)
    assert a != alert_id_for("case-1", "proximity", s(1))
    assert a != alert_id_for("case-2", "proximity", T0)
    assert (
        delivery_id_for(a, "victim", 1) == delivery_id_for(a, "victim", 1) != delivery_id_for(a, "victim", 2)
    )


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # a breach opens once and notifies everyone; updates further away stay quiet
        (
            [(prox(E.PROXIMITY_BREACH, s(0), 300), 1), (prox(E.BREACH_UPDATE, s(5), 320), 6)],
            [
                ("opened", "proximity_breach", frozenset({V, P, X})),
                ("updated", "proximity_breach", frozenset()),
            ],
        ),
        # a closer ring in the same episode re-notifies; a small approach does not; a big one does
        (
            [
                (prox(E.PROXIMITY_PRE_ALERT, s(0), 900), 1),
                (prox(E.PROXIMITY_BREACH, s(10), 400), 11),
                (prox(E.BREACH_UPDATE, s(15), 380), 16),
                (prox(E.BREACH_UPDATE, s(20), 200), 21),
            ],
            [
                ("opened", "proximity_pre_alert", frozenset({V, P})),
                ("worsened", "proximity_breach", frozenset({V, P, X})),
                ("updated", "proximity_breach", frozenset()),
                ("closer", "proximity_breach", frozenset({V, X})),
            ],
        ),
        # late (live=False) and retrospective: recorded and routed, never a victim warning
        (
            [(prox(E.PROXIMITY_BREACH, s(0), 300, live=False), 1)],
            [("opened", "proximity_breach", frozenset({P, X}))],
        ),
        ([(prox(E.PROXIMITY_BREACH, s(0), 300), 600)], [("opened", "proximity_breach", frozenset({P, X}))]),
        (
            [(prox(E.RETROSPECTIVE_VIOLATION, s(0), 300, live=False), 1)],
            [("opened", "retrospective_violation", frozenset({P}))],
        ),
        # a pre-alert that ends closes itself; a breach that ends waits for a person
        (
            [
                (prox(E.PROXIMITY_PRE_ALERT, s(0), 900), 1),
                (prox(E.PROXIMITY_PRE_ALERT_ENDED, s(30), 1400), 31),
            ],
            [
                ("opened", "proximity_pre_alert", frozenset({V, P})),
                ("auto_resolved", "proximity_pre_alert", frozenset()),
            ],
        ),
        (
            [(prox(E.PROXIMITY_BREACH, s(0), 300), 1), (prox(E.PROXIMITY_BREACH_ENDED, s(30), 900), 31)],
            [
                ("opened", "proximity_breach", frozenset({V, P, X})),
                ("ended", "proximity_breach", frozenset()),
            ],
        ),
        # an end with nothing open is nothing
        ([(prox(E.PROXIMITY_BREACH_ENDED, s(30), 900), 31)], [("none", "", frozenset())]),
    ],
)
def test_evaluation_table(
    rows: list[tuple[EvalEvent, float]], expected: list[tuple[str, str, frozenset[Recipient]]]
) -> None:
    assert run(rows) == expected


def test_suppressed_alert_is_recorded_but_notifies_nobody() -> None:
    assert run([(prox(E.PROXIMITY_BREACH, s(0), 300), 1)], suppressed=True) == [
        ("opened", "proximity_breach", frozenset())
    ]


def test_update_keeps_closest_distance_and_latest_positions() -> None:
    first = lc.on_evaluation(
        None, prox(E.PROXIMITY_BREACH, s(0), 300), case_info(), ROUTING, CFG, suppressed=False, now=s(1)
    )
    assert first is not None
    second = lc.on_evaluation(
        first.alert, prox(E.BREACH_UPDATE, s(5), 350), case_info(), ROUTING, CFG, suppressed=False, now=s(6)
    )
    assert second is not None
    a = second.alert
    assert (a.distance_m, a.closest_m, a.events, a.alert_id) == (350, 300, 2, first.alert.alert_id)
    assert a.offender_position is not None and a.offender_position.ts == s(5)
    assert a.victim_position is not None and a.victim_position.ts == s(5)


@pytest.mark.parametrize(
    ("event", "risk", "kind", "alert_type", "notify", "priority"),
    [
        (EventType.TAMPER, Risk.LOW, "ankle_tag", AlertType.TAMPER, {P}, Priority.HIGH),
        (EventType.TAMPER, Risk.HIGH, "ankle_tag", AlertType.TAMPER, {P, X}, Priority.CRITICAL),
        (EventType.STRAP_OPEN, Risk.MEDIUM, "ankle_tag", AlertType.STRAP_OPEN, {P}, Priority.HIGH),
        (EventType.PANIC, Risk.LOW, "victim_device", AlertType.PANIC, {P, X, V}, Priority.CRITICAL),
        (
            EventType.CONNECTION_LOST,
            Risk.LOW,
            "victim_device",
            AlertType.NO_COMMUNICATION,
            {P},
            Priority.HIGH,
        ),
        (EventType.BATTERY_CRITICAL, Risk.LOW, "ankle_tag", AlertType.BATTERY_CRITICAL, {P}, Priority.NORMAL),
    ],
)
def test_device_events(
    event: EventType, risk: Risk, kind: str, alert_type: AlertType, notify: set[Recipient], priority: Priority
) -> None:
    change = lc.on_device_event(
        None, dev(event, s(0)), case_info(risk), kind, ROUTING, CFG, suppressed=False, now=s(1)
    )
    assert change is not None
    assert (change.alert.type, set(change.notify), change.alert.priority) == (alert_type, notify, priority)
    assert change.alert.episode == s(0)


def test_panic_is_never_suppressed_tamper_is() -> None:
    panic = lc.on_device_event(
        None,
        dev(EventType.PANIC, s(0), VICTIM),
        case_info(),
        "victim_device",
        ROUTING,
        CFG,
        suppressed=True,
        now=s(1),
    )
    tamper = lc.on_device_event(
        None, dev(EventType.TAMPER, s(0)), case_info(), "ankle_tag", ROUTING, CFG, suppressed=True, now=s(1)
    )
    assert panic is not None and tamper is not None
    assert (panic.alert.suppressed, bool(panic.notify)) == (False, True)
    assert (tamper.alert.suppressed, tamper.notify) == (True, frozenset())


def test_tamper_replay_is_a_no_op_but_a_new_tamper_is_a_new_alert() -> None:
    first = lc.on_device_event(
        None, dev(EventType.TAMPER, s(0)), case_info(), "ankle_tag", ROUTING, CFG, suppressed=False, now=s(1)
    )
    assert first is not None
    assert (
        lc.on_device_event(
            first.alert,
            dev(EventType.TAMPER, s(0)),
            case_info(),
            "ankle_tag",
            ROUTING,
            CFG,
            suppressed=False,
            now=s(2),
        )
        is None
    )
    again = lc.on_device_event(
        None, dev(EventType.TAMPER, s(3)), case_info(), "ankle_tag", ROUTING, CFG, suppressed=False, now=s(4)
    )
    assert again is not None and again.alert.alert_id != first.alert.alert_id


def _open(
    alert_type: AlertType = AlertType.PROXIMITY_BREACH, priority: Priority = Priority.CRITICAL
) -> Alert:
    return Alert(
        alert_id_for("case-1", "proximity", T0),
        "case-1",
        alert_type,
        "proximity",
        T0,
        AlertState.OPEN,
        priority,
        frozenset({P}),
        Risk.MEDIUM,
        T0,
        T0,
        notify_seq=1,
    )


@pytest.mark.parametrize(
    ("priority", "after_s", "due"),
    [
        (Priority.CRITICAL, 59, False),
        (Priority.CRITICAL, 60, True),
        (Priority.HIGH, 299, False),
        (Priority.HIGH, 300, True),
        (Priority.LOW, 10**6, False),
    ],
)
def test_escalation_deadline_per_priority(priority: Priority, after_s: float, due: bool) -> None:
    assert lc.escalation_due(_open(priority=priority), CFG, s(after_s)) is due


def test_escalation_adds_police_once_and_raises_priority() -> None:
    change = lc.escalate(_open(priority=Priority.HIGH), "late", s(400))
    assert change is not None
    assert (change.alert.escalated, X in change.alert.recipients, change.alert.priority) == (
        True,
        True,
        Priority.CRITICAL,
    )
    assert change.notify == {X}
    assert lc.escalate(change.alert, "again", s(500)) is None
    acked = lc.acknowledge(_open(), "anna", None, s(10)).alert
    assert not lc.escalation_due(acked, CFG, s(10_000))


def test_state_machine_and_tamper_needs_a_note() -> None:
    alert = _open(AlertType.TAMPER)
    acked = lc.acknowledge(alert, "anna", "looking", s(5)).alert
    assert (acked.state, acked.acknowledged_by, acked.acknowledged_at) == (
        AlertState.ACKNOWLEDGED,
        "anna",
        s(5),
    )
    with pytest.raises(InvalidInput):
        lc.acknowledge(acked, "bob", None, s(6))
    with pytest.raises(InvalidInput, match="note"):
        lc.resolve(acked, "anna", "checked", None, s(7))
    done = lc.resolve(acked, "anna", "strap replaced", "visited at home", s(8))
    assert (done.alert.state, done.alert.outcome, done.alert.resolved_by) == (
        AlertState.RESOLVED,
        "strap replaced",
        "anna",
    )
    with pytest.raises(InvalidInput):
        lc.resolve(done.alert, "anna", "again", "x", s(9))


def test_resolving_a_police_alert_cancels_it_at_dispatch() -> None:
    alert = replace(_open(), recipients=frozenset({P, X}))
    assert lc.resolve(alert, "anna", "false alarm", None, s(1)).cancel_police
    assert not lc.resolve(_open(), "anna", "false alarm", None, s(1)).cancel_police
