"""What evaluation decides: events that name the rule, the fixes, the distances and accuracies.

Every alert is built from one of these, so each must be able to explain itself on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Classification(StrEnum):
    CLEAR = "clear"
    POSSIBLE = "possible"  # the error circle(s) overlap the forbidden condition
    BREACH = "breach"  # the whole error circle(s) prove it


class EvalEventType(StrEnum):
    # Episode starts (each opens or worsens an alert episode).
    EXCLUSION_PRE_ALERT = "exclusion_pre_alert"
    EXCLUSION_BREACH = "exclusion_breach"
    INCLUSION_BREACH = "inclusion_breach"
    PROXIMITY_PRE_ALERT = "proximity_pre_alert"
    PROXIMITY_BREACH = "proximity_breach"
    PROXIMITY_UNKNOWN = "proximity_unknown"
    RETROSPECTIVE_VIOLATION = "retrospective_violation"
    CROSSING_SUSPECTED = "crossing_suspected"
    ORDER_EXPIRING = "order_expiring"
    # Undecided under uncertainty (stale counterpart, accuracy larger than the margin, evidence
    # not yet conclusive): visible to the room, never a breach by counting.
    POSSIBLE_BREACH = "possible_breach"
    # Ask devices for fresh fixes; detail {"devices", "reason", "every_s", "until"}. Never an alert.
    LOCATE_REQUEST = "locate_request"
    ORDER_EXPIRED = "order_expired"  # an order's term ended without a decision (emon/orders, not the engine)
    # Episode updates and ends.
    BREACH_UPDATE = "breach_update"  # still in breach; a new closest distance or a new position
    EXCLUSION_PRE_ALERT_ENDED = "exclusion_pre_alert_ended"
    EXCLUSION_BREACH_ENDED = "exclusion_breach_ended"
    INCLUSION_BREACH_ENDED = "inclusion_breach_ended"
    PROXIMITY_PRE_ALERT_ENDED = "proximity_pre_alert_ended"
    PROXIMITY_BREACH_ENDED = "proximity_breach_ended"
    PROXIMITY_KNOWN = "proximity_known"  # positions fresh again after proximity_unknown
    POSSIBLE_BREACH_ENDED = "possible_breach_ended"  # decided lawful, or superseded by nothing


EPISODE_STARTS = frozenset(
    {
        EvalEventType.EXCLUSION_PRE_ALERT,
        EvalEventType.EXCLUSION_BREACH,
        EvalEventType.INCLUSION_BREACH,
        EvalEventType.PROXIMITY_PRE_ALERT,
        EvalEventType.PROXIMITY_BREACH,
        EvalEventType.PROXIMITY_UNKNOWN,
        EvalEventType.RETROSPECTIVE_VIOLATION,
        EvalEventType.CROSSING_SUSPECTED,
        EvalEventType.ORDER_EXPIRING,
        EvalEventType.POSSIBLE_BREACH,
        EvalEventType.ORDER_EXPIRED,
    }
)
"""The events that open or worsen an alert episode. Each is also an alert type of the same name and value
(``emon.alerts.types.AlertType``, which adds device and silence alerts): the one shared vocabulary."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One fix used in a decision; ``age_s`` is its age (seconds) at the time of the decision."""

    device_id: str
    ts: datetime
    lat: float
    lon: float
    acc_m: float
    age_s: float


@dataclass(frozen=True, slots=True)
class EvalEvent:
    """One decision of the evaluator.

    ``rule`` is ``exclusion:<zone name>``, ``inclusion:<zone name>``, ``proximity`` or ``order``.
    ``episode`` is the fix time that started the episode: (case_id, rule, episode) identifies one
    continuous violation, so replays and updates never make a second alert. ``distance_m`` is the
    distance that mattered, in metres (to the zone edge, negative inside; or between the devices).
    ``live`` is False for decisions on fixes older than the freshness limit (late uploads): they go
    to the probation record, never as a live warning to the victim.
    """

    type: EvalEventType
    case_id: str
    rule: str
    at: datetime
    decided_at: datetime
    episode: datetime
    classification: Classification
    distance_m: float | None
    evidence: tuple[Evidence, ...]
    live: bool = True
    detail: dict[str, Any] = field(default_factory=dict)

    def explain(self) -> dict[str, Any]:
        """A JSON-ready explanation: which fixes, which rule, which distances and accuracies."""
        return {
            "type": self.type.value,
            "case_id": self.case_id,
            "rule": self.rule,
            "at": self.at.isoformat(),
            "decided_at": self.decided_at.isoformat(),
            "episode": self.episode.isoformat(),
            "classification": self.classification.value,
            "distance_m": None if self.distance_m is None else round(self.distance_m, 2),
            "live": self.live,
            "evidence": [
                {
                    "device_id": e.device_id,
                    "ts": e.ts.isoformat(),
                    "lat": e.lat,
                    "lon": e.lon,
                    "acc_m": e.acc_m,
                    "age_s": round(e.age_s, 1),
                }
                for e in self.evidence
            ],
            "detail": self.detail,
        }
