"""The victim-privacy rule: when a victim's position may leave the server. Pure (no I/O).

A victim's position is shown (to probation and police of the case's units, with a purpose) only while
an alert **concerning the victim's safety** is unresolved (open or acknowledged) in one of the victim's
cases, and never their history. The alerts that concern the victim's safety — the documented list:

* ``proximity_breach``, ``proximity_pre_alert``, ``proximity_unknown`` (the offender near the victim,
  or unknown how near), and ``retrospective_violation`` / ``crossing_suspected`` of the proximity rule;
* ``panic`` (pressed on the victim's device);
* ``exclusion_breach``, ``retrospective_violation`` and ``crossing_suspected`` of an exclusion zone
  whose order marks it ``"protects_victim": true`` (e.g. the victim's home or work).

Nothing else opens it: not an offender's battery, strap, tamper or silence, not an inclusion breach
(curfew), not a pre-alert or breach of a zone that does not protect the victim.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from emon.alerts.types import AlertState, AlertType
from emon.case import Case

UNRESOLVED = frozenset({AlertState.OPEN, AlertState.ACKNOWLEDGED})  # str enums: match the JSON "state"
PROXIMITY_RULE = "proximity"
EXCLUSION_PREFIX = "exclusion:"

ALWAYS_OPENS = frozenset(
    {AlertType.PROXIMITY_BREACH, AlertType.PROXIMITY_PRE_ALERT, AlertType.PROXIMITY_UNKNOWN, AlertType.PANIC}
)
# These open it when their rule protects the victim: proximity, or an exclusion zone marked protects_victim.
OPENS_IF_PROTECTING = frozenset(
    {AlertType.EXCLUSION_BREACH, AlertType.RETROSPECTIVE_VIOLATION, AlertType.CROSSING_SUSPECTED}
)
LiveMessage = tuple[str, dict[str, Any]]
"""(kind, JSON-ready body) as the hub fans it out to monitoring-room streams; kinds: "alert", "position",
"gap", "task"."""

FORWARDED_KINDS = frozenset({"alert", "position", "gap", "task"})


def concerns_victim_safety(alert: Mapping[str, Any], case: Case | None) -> bool:
    """True if ``alert`` (alert JSON: ``type``, ``rule``) concerns the safety of ``case``'s victim."""
    alert_type = alert.get("type")
    if alert_type in ALWAYS_OPENS:
        return True
    if alert_type not in OPENS_IF_PROTECTING:
        return False
    rule = alert.get("rule")
    if rule == PROXIMITY_RULE:
        return True
    if case is None or not isinstance(rule, str) or not rule.startswith(EXCLUSION_PREFIX):
        return False
    name = rule[len(EXCLUSION_PREFIX) :]
    return any(z.name == name and z.protects_victim for z in case.order.exclusion_zones)


def opens_victim_position(alert: Mapping[str, Any], case: Case | None) -> bool:
    """True if ``alert`` is unresolved and concerns the victim's safety (see the module docstring)."""
    return alert.get("state") in UNRESOLVED and concerns_victim_safety(alert, case)


def victim_visible(case: Case, alerts: Iterable[Mapping[str, Any]]) -> bool:
    """True if any of ``case``'s ``alerts`` opens the victim's position now."""
    return case.victim_device is not None and any(
        opens_victim_position(a, case) for a in alerts if a.get("case_id", case.case_id) == case.case_id
    )


class VictimVisibleCases:
    """Which cases have an unresolved alert concerning the victim's safety, from alert JSON objects.

    ``case_of`` finds a case by id (to tell which zones protect the victim). Idempotent per message;
    a newer message for the same ``alert_id`` replaces the older one.
    """

    def __init__(
        self, case_of: Callable[[str], Case | None], alerts: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        self._case_of = case_of
        self._open: dict[str, set[str]] = {}  # case_id -> alert_ids that open the victim's position
        for alert in alerts:
            self.update(alert)

    def update(self, alert: Mapping[str, Any]) -> None:
        case_id, alert_id = alert.get("case_id"), alert.get("alert_id")
        if not isinstance(case_id, str) or not isinstance(alert_id, str):
            return
        if opens_victim_position(alert, self._case_of(case_id)):
            self._open.setdefault(case_id, set()).add(alert_id)
            return
        ids = self._open.get(case_id)
        if ids is not None:
            ids.discard(alert_id)
            if not ids:
                del self._open[case_id]

    @property
    def cases(self) -> frozenset[str]:
        return frozenset(self._open)


def privacy_filter(kind: str, body: Mapping[str, Any], open_cases: frozenset[str]) -> LiveMessage | None:
    """What may be forwarded of one live message, or None to withhold it.

    Alerts and gaps pass. An offender position passes. A victim position passes only for the cases
    in ``open_cases`` (``case_ids`` is narrowed to those), so a victim in two cases is not shown on
    the map of the case without such an alert. Anything else — an unknown kind or role — is withheld.
    """
    if kind not in FORWARDED_KINDS:
        return None
    if kind != "position":
        return kind, dict(body)
    role = body.get("role")
    if role == "offender":
        return kind, dict(body)
    if role != "victim":
        return None
    case_ids = body.get("case_ids")
    if not isinstance(case_ids, list):
        return None
    visible = [c for c in case_ids if c in open_cases]
    if not visible:
        return None
    return kind, {**body, "case_ids": visible}


def redact_victim(explanation: Mapping[str, Any], victim_device: str | None) -> dict[str, Any]:
    """An explanation without the victim's coordinates (evidence rows keep time, accuracy and age).
    ``victim_device`` None: the victim is not known, so no evidence row keeps its coordinates."""
    out = dict(explanation)
    evidence = out.get("evidence")
    if isinstance(evidence, list):
        out["evidence"] = [
            {k: v for k, v in e.items() if k not in ("lat", "lon")}
            if isinstance(e, Mapping) and (victim_device is None or e.get("device_id") == victim_device)
            else e
            for e in evidence
        ]
    return out


def alert_for_viewer(alert: Mapping[str, Any], case: Case | None, show_victim: bool) -> dict[str, Any]:
    """Alert JSON as a viewer may see it: the victim's position (``victim_position`` and the victim's
    evidence in ``explanation``) stays only if ``show_victim`` (the viewer gave a purpose that allows
    it) and the alert opens the victim's position; otherwise it is removed."""
    out = dict(alert)
    if show_victim and opens_victim_position(alert, case):
        return out
    if out.get("victim_position") is not None:
        out["victim_position"] = None
    explanation = out.get("explanation")
    if isinstance(explanation, Mapping) and (case is None or case.victim_device is not None):
        out["explanation"] = redact_victim(explanation, None if case is None else case.victim_device)
    return out
