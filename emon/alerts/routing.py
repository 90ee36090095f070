"""Who is told about an alert, and how urgently: a matrix alert type × case risk → recipients, priority.

Pure. The defaults are below and documented in docs/alerts.md; a JSON file (``EMON_ROUTING_FILE``)
overrides single cells. A key may be narrowed to the kind of device the alert is about
(``"no_communication@victim_device"``); a risk of ``"*"`` sets all three risks at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emon.alerts.types import AlertType, Priority, Recipient
from emon.case import Risk
from emon.errors import ConfigError

V, P, X = Recipient.VICTIM, Recipient.PROBATION, Recipient.POLICE


@dataclass(frozen=True, slots=True)
class Route:
    recipients: frozenset[Recipient]
    priority: Priority


def _r(priority: Priority, *recipients: Recipient) -> Route:
    return Route(frozenset(recipients), priority)


def _all(route: Route) -> dict[Risk, Route]:
    return {risk: route for risk in Risk}


C, H, N, L = Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW

DEFAULTS: dict[str, dict[Risk, Route]] = {
    AlertType.PROXIMITY_BREACH: _all(_r(C, V, P, X)),
    # A heads-up for the victim only where the risk makes an early warning worth a possible false alarm.
    AlertType.PROXIMITY_PRE_ALERT: {Risk.LOW: _r(N, P), Risk.MEDIUM: _r(H, V, P), Risk.HIGH: _r(H, V, P)},
    AlertType.PROXIMITY_UNKNOWN: {Risk.LOW: _r(N, P), Risk.MEDIUM: _r(H, P), Risk.HIGH: _r(H, P)},
    AlertType.EXCLUSION_BREACH: {Risk.LOW: _r(H, P), Risk.MEDIUM: _r(H, P, X), Risk.HIGH: _r(C, V, P, X)},
    AlertType.EXCLUSION_PRE_ALERT: _all(_r(N, P)),
    AlertType.INCLUSION_BREACH: {Risk.LOW: _r(H, P), Risk.MEDIUM: _r(H, P), Risk.HIGH: _r(H, P, X)},
    AlertType.RETROSPECTIVE_VIOLATION: _all(_r(N, P)),
    AlertType.CROSSING_SUSPECTED: {Risk.LOW: _r(N, P), Risk.MEDIUM: _r(H, P), Risk.HIGH: _r(H, P)},
    AlertType.TAMPER: {Risk.LOW: _r(H, P), Risk.MEDIUM: _r(H, P), Risk.HIGH: _r(C, P, X)},
    AlertType.STRAP_OPEN: {Risk.LOW: _r(H, P), Risk.MEDIUM: _r(H, P), Risk.HIGH: _r(C, P, X)},
    AlertType.BATTERY_LOW: _all(_r(L, P)),
    AlertType.BATTERY_CRITICAL: _all(_r(N, P)),
    AlertType.NO_FIX: {Risk.LOW: _r(N, P), Risk.MEDIUM: _r(N, P), Risk.HIGH: _r(H, P)},
    AlertType.NO_COMMUNICATION: {Risk.LOW: _r(N, P), Risk.MEDIUM: _r(H, P), Risk.HIGH: _r(H, P)},
    # The victim can no longer be warned: probation must act at once, whatever the risk.
    "no_communication@victim_device": _all(_r(H, P)),
    "no_fix@victim_device": _all(_r(H, P)),
    # The victim device gets a confirmation that help is on its way.
    AlertType.PANIC: _all(_r(C, X, P, V)),
    AlertType.ORDER_EXPIRING: _all(_r(L, P)),
    # The protection has lapsed without anyone deciding: the room and the responsible officers act now.
    AlertType.ORDER_EXPIRED: _all(_r(H, P)),
    # Undecided under GPS uncertainty: the room sees it (with why); a fresh fix decides. Never the
    # victim or police: only a provable breach reaches them.
    AlertType.POSSIBLE_BREACH: {Risk.LOW: _r(L, P), Risk.MEDIUM: _r(N, P), Risk.HIGH: _r(N, P)},
}


class Routing:
    """The routing matrix; :meth:`route` is total (every type × risk has a cell)."""

    def __init__(self, table: Mapping[str, Mapping[Risk, Route]] | None = None) -> None:
        self.table: dict[str, dict[Risk, Route]] = {k: dict(v) for k, v in (table or DEFAULTS).items()}
        for t in AlertType:
            missing = [r for r in Risk if r not in self.table.get(t, {})]
            if missing:
                raise ConfigError("EMON_ROUTING_FILE", f"no route for {t} at risk {missing[0]}")

    def route(self, alert_type: AlertType, risk: Risk, device_kind: str | None = None) -> Route:
        if device_kind is not None:
            narrowed = self.table.get(f"{alert_type}@{device_kind}")
            if narrowed is not None and risk in narrowed:
                return narrowed[risk]
        return self.table[alert_type][risk]

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Any]) -> Routing:
        """Defaults with the cells named in ``overrides`` replaced (the JSON file's structure)."""
        table = {k: dict(v) for k, v in DEFAULTS.items()}
        for key, cells in overrides.items():
            base = key.split("@", 1)[0]
            if base not in {t.value for t in AlertType}:
                raise ConfigError("EMON_ROUTING_FILE", f"unknown alert type {key!r}")
            if not isinstance(cells, Mapping):
                raise ConfigError("EMON_ROUTING_FILE", f"{key}: expected an object of risk → route")
            for risk_name, cell in cells.items():
                risks = list(Risk) if risk_name == "*" else [_risk(key, risk_name)]
                route = _parse_route(key, cell)
                for risk in risks:
                    table.setdefault(key, {})[risk] = route
        return cls(table)

    @classmethod
    def from_file(cls, path: str | None) -> Routing:
        if path is None:
            return cls()
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError("EMON_ROUTING_FILE", f"cannot read {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError("EMON_ROUTING_FILE", "expected a JSON object")
        return cls.with_overrides(data)

    def as_json(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {
            key: {
                risk.value: {
                    "recipients": sorted(r.value for r in route.recipients),
                    "priority": route.priority.value,
                }
                for risk, route in cells.items()
            }
            for key, cells in self.table.items()
        }


def _risk(key: str, name: object) -> Risk:
    try:
        return Risk(str(name))
    except ValueError as exc:
        raise ConfigError("EMON_ROUTING_FILE", f"{key}: unknown risk {name!r}") from exc


def _parse_route(key: str, cell: object) -> Route:
    if not isinstance(cell, Mapping):
        raise ConfigError("EMON_ROUTING_FILE", f"{key}: a route is {{'recipients': [...], 'priority': ...}}")
    try:
        recipients = frozenset(Recipient(str(r)) for r in cell.get("recipients", []))
        priority = Priority(str(cell.get("priority", "normal")))
    except ValueError as exc:
        raise ConfigError("EMON_ROUTING_FILE", f"{key}: {exc}") from exc
    if not recipients:
        raise ConfigError("EMON_ROUTING_FILE", f"{key}: at least one recipient (probation keeps the record)")
    return Route(recipients, priority)
