"""Judging decisions where people meet them: evaluation events through the real alert lifecycle."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from emon.alerts.config import AlertConfig
from emon.alerts.lifecycle import on_evaluation
from emon.alerts.model import Alert, CaseInfo, alert_id_for
from emon.alerts.routing import Routing
from emon.case import Case
from emon.geofence.events import EvalEvent


class Received:
    """The alerts people get from a stream of evaluation events, as the alert service keeps them
    (one alert per case, rule and episode), with who was notified."""

    def __init__(self, case: Case) -> None:
        self.info = CaseInfo(case.case_id, case.risk, case.offender_device, case.victim_device)
        self.alerts: dict[str, Alert] = {}
        self.notified: dict[str, set[str]] = {}
        self.changes: list[tuple[str, str, set[str]]] = []  # (what happened, alert type, who was told)

    def feed(self, events: Iterable[EvalEvent], now: datetime | None = None) -> Received:
        for ev in events:
            aid = alert_id_for(ev.case_id, ev.rule, ev.episode)
            change = on_evaluation(
                self.alerts.get(aid),
                ev,
                self.info,
                Routing(),
                AlertConfig(),
                suppressed=False,
                now=now or ev.decided_at,
            )
            if change is not None:
                self.alerts[aid] = change.alert
                self.notified.setdefault(aid, set()).update(r.value for r in change.notify)
                told = {r.value for r in change.notify}
                self.changes.append((change.action, change.alert.type.value, told))
        return self

    def final(self) -> list[tuple[str, str]]:
        """(type, state) of every alert, in the order they were opened."""
        return [
            (a.type.value, a.state.value) for a in sorted(self.alerts.values(), key=lambda a: a.opened_at)
        ]
