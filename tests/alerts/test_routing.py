"""Routing: the default matrix as a table, overrides from JSON, and failing fast on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emon.alerts.routing import DEFAULTS, Routing
from emon.alerts.types import AlertType, Priority, Recipient
from emon.case import Risk
from emon.errors import ConfigError

V, P, X = Recipient.VICTIM, Recipient.PROBATION, Recipient.POLICE
C, H, N, L = Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW


@pytest.mark.parametrize(
    ("alert_type", "risk", "kind", "recipients", "priority"),
    [
        (AlertType.PROXIMITY_BREACH, Risk.LOW, None, {V, P, X}, C),
        (AlertType.PROXIMITY_BREACH, Risk.HIGH, None, {V, P, X}, C),
        (AlertType.PANIC, Risk.LOW, None, {X, P, V}, C),
        (AlertType.TAMPER, Risk.LOW, None, {P}, H),
        (AlertType.TAMPER, Risk.HIGH, None, {P, X}, C),
        (AlertType.STRAP_OPEN, Risk.HIGH, None, {P, X}, C),
        (AlertType.NO_COMMUNICATION, Risk.LOW, "ankle_tag", {P}, N),
        (AlertType.NO_COMMUNICATION, Risk.LOW, "victim_device", {P}, H),
        (AlertType.RETROSPECTIVE_VIOLATION, Risk.HIGH, None, {P}, N),
        (AlertType.PROXIMITY_PRE_ALERT, Risk.LOW, None, {P}, N),
        (AlertType.PROXIMITY_PRE_ALERT, Risk.MEDIUM, None, {V, P}, H),
        (AlertType.EXCLUSION_PRE_ALERT, Risk.HIGH, None, {P}, N),
        (AlertType.BATTERY_LOW, Risk.HIGH, "victim_device", {P}, L),
    ],
)
def test_default_matrix(
    alert_type: AlertType, risk: Risk, kind: str | None, recipients: set[Recipient], priority: Priority
) -> None:
    route = Routing().route(alert_type, risk, kind)
    assert (set(route.recipients), route.priority) == (recipients, priority)


def test_every_type_and_risk_has_a_route() -> None:
    routing = Routing()
    for t in AlertType:
        for r in Risk:
            assert P in routing.route(t, r).recipients or t is AlertType.PANIC


def test_json_file_overrides_single_cells(tmp_path: Path) -> None:
    path = tmp_path / "routing.json"
    path.write_text(
        json.dumps(
            {
                "tamper": {"low": {"recipients": ["probation", "police"], "priority": "critical"}},
                "battery_low": {"*": {"recipients": ["probation"], "priority": "normal"}},
            }
        )
    )
    routing = Routing.from_file(str(path))
    assert routing.route(AlertType.TAMPER, Risk.LOW).recipients == {P, X}
    assert routing.route(AlertType.TAMPER, Risk.MEDIUM) == DEFAULTS[AlertType.TAMPER][Risk.MEDIUM]
    assert {routing.route(AlertType.BATTERY_LOW, r).priority for r in Risk} == {N}


@pytest.mark.parametrize(
    "document",
    [
        {"tamperr": {"low": {"recipients": ["probation"]}}},
        {"tamper": {"extreme": {"recipients": ["probation"]}}},
        {"tamper": {"low": {"recipients": ["mayor"]}}},
        {"tamper": {"low": {"recipients": []}}},
        {"tamper": {"low": {"recipients": ["police"], "priority": "urgent"}}},
    ],
)
def test_bad_routing_file_fails_fast_naming_the_variable(tmp_path: Path, document: object) -> None:
    path = tmp_path / "routing.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as err:
        Routing.from_file(str(path))
    assert err.value.variable == "EMON_ROUTING_FILE"
