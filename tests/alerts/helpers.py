"""Builders shared by the alert tests: cases, evaluation events, device events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from emon.alerts.model import CaseInfo
from emon.case import Case, Risk
from emon.fix import DeviceEvent, EventType
from emon.geofence.events import Classification, EvalEvent, EvalEventType, Evidence

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
OFFENDER = "tag-1"
VICTIM = "vic-1"


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def case_info(risk: Risk = Risk.HIGH, case_id: str = "case-1") -> CaseInfo:
    return CaseInfo(case_id, risk, OFFENDER, VICTIM)


def make_case(
    risk: str = "high", case_id: str = "case-1", offender: str = OFFENDER, victim: str | None = VICTIM
) -> Case:
    doc: dict[str, Any] = {
        "case_id": case_id,
        "risk": risk,
        "offender_device": offender,
        "victim_device": victim,
        "residence": {"lat": 52.09, "lon": 5.12},
        "order": {"contact_ban_m": 500},
    }
    return Case.model_validate(doc)


def prox(
    type_: EvalEventType,
    at: datetime,
    distance_m: float | None,
    *,
    episode: datetime = T0,
    live: bool = True,
    case_id: str = "case-1",
    rule: str = "proximity",
    classification: Classification = Classification.BREACH,
) -> EvalEvent:
    evidence = (
        Evidence(OFFENDER, at, 52.0907, 5.1214, 8.0, 1.0),
        Evidence(VICTIM, at, 52.0910, 5.1230, 15.0, 2.0),
    )
    return EvalEvent(type_, case_id, rule, at, at, episode, classification, distance_m, evidence, live=live)


def dev(type_: EventType, at: datetime, device_id: str = OFFENDER) -> DeviceEvent:
    return DeviceEvent(device_id, at, type_)
