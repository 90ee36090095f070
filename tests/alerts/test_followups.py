"""What follows from an alert change (pure): room tasks and locate requests, as a table."""

from __future__ import annotations

from dataclasses import replace

import pytest

from emon.alerts import followups
from emon.alerts.config import AlertConfig
from emon.alerts.model import Alert, CaseInfo, Change
from emon.alerts.types import AlertState, AlertType, Priority, Recipient
from emon.case import Risk
from tests.alerts.helpers import OFFENDER, VICTIM, s

CONFIG = AlertConfig(locate_every_s=30, pursuit_s=600)
CASE = CaseInfo("case-1", Risk.HIGH, OFFENDER, VICTIM)
NO_DEVICE = replace(CASE, victim_device=None)
PHONE = replace(CASE, victim_owntracks_topic="owntracks/anna/phone")
CLOSED = replace(CASE, closed=True)
V, P = Recipient.VICTIM, Recipient.PROBATION


def change(
    alert_type: AlertType, action: str = "opened", notify: frozenset[Recipient] = frozenset({P})
) -> Change:
    alert = Alert(
        "a-1",
        "case-1",
        alert_type,
        "proximity",
        s(0),
        AlertState.OPEN,
        Priority.CRITICAL,
        frozenset({V, P}),
        Risk.HIGH,
        s(0),
        s(0),
        notify_seq=1,
    )
    return Change(alert, action, notify=notify)


@pytest.mark.parametrize(
    ("c", "case", "kinds"),
    [
        (change(AlertType.PROXIMITY_BREACH, notify=frozenset({V, P})), CASE, []),  # the device is warned
        (change(AlertType.PROXIMITY_BREACH, notify=frozenset({V, P})), NO_DEVICE, ["inform_victim"]),
        (change(AlertType.PROXIMITY_BREACH, notify=frozenset({V, P})), PHONE, ["inform_victim"]),
        (change(AlertType.PROXIMITY_BREACH, notify=frozenset({V, P})), CLOSED, []),
        (change(AlertType.PROXIMITY_BREACH, notify=frozenset({P})), NO_DEVICE, []),  # victim not to be told
        (change(AlertType.POSSIBLE_BREACH), CASE, ["check_possible"]),
        (change(AlertType.POSSIBLE_BREACH, action="updated"), CASE, []),
    ],
)
def test_tasks(c: Change, case: CaseInfo, kinds: list[str]) -> None:
    assert [t.kind.value for t in followups.tasks_for(c, case, CONFIG, s(1))] == kinds


@pytest.mark.parametrize(
    ("c", "case", "expected"),
    [
        (change(AlertType.PANIC), CASE, ("panic", (OFFENDER, VICTIM), 30, s(601))),
        (change(AlertType.PANIC), NO_DEVICE, ("panic", (OFFENDER,), 30, s(601))),
        (change(AlertType.PROXIMITY_UNKNOWN), CASE, ("proximity_unknown", (OFFENDER, VICTIM), None, None)),
        (change(AlertType.POSSIBLE_BREACH), CASE, ("possible_breach", (OFFENDER, VICTIM), None, None)),
        (change(AlertType.PANIC, action="updated"), CASE, None),  # a second press: already pursuing
        (change(AlertType.PROXIMITY_BREACH), CASE, None),
        (change(AlertType.PANIC), CLOSED, None),
    ],
)
def test_locate(c: Change, case: CaseInfo, expected: tuple[object, ...] | None) -> None:
    request = followups.locate_for(c, case, CONFIG, s(1))
    got = None if request is None else (request.reason, request.devices, request.every_s, request.until)
    assert got == expected
    if request is not None:
        assert (request.alert_id, request.origin) == ("a-1", "alert:a-1")
