"""An alert and what one change to it means: frozen values, JSON-ready, with deterministic ids."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from emon.alerts.types import AlertState, AlertType, Priority, Recipient
from emon.case import Risk

_NAMESPACE = uuid.UUID("6f0b5c8e-2a51-4d1c-9a57-656d6f6e616c")  # fixed forever: ids must not change


def uuid5_text(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))``, exactly (RFC 4122 §4.3: SHA-1 of the namespace and the UTF-8
    name, version 5, RFC variant), at a quarter of its CPU: a decision derives several ids."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    x = digest.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def alert_id_for(case_id: str, rule: str, episode: datetime) -> str:
    """The one id of the alert for (case, rule, episode): replays cannot make a second alert."""
    return uuid5_text(_NAMESPACE, f"{case_id}|{rule}|{episode.isoformat()}")


def delivery_id_for(alert_id: str, recipient: str, seq: int) -> str:
    """The id of notification round ``seq`` of an alert to one recipient (the webhook-id / notification_id)."""
    return uuid5_text(_NAMESPACE, f"{alert_id}|{recipient}|{seq}")


@dataclass(frozen=True, slots=True)
class CaseInfo:
    """What alerting needs to know of a case.

    ``victim_rules`` are the rules that protect the victim (``proximity`` under a contact ban,
    ``exclusion:<zone>`` for zones marked ``protects_victim``); ``victim_notifications`` is False when
    the victim opted out of warnings; ``victim_owntracks_topic`` is set when the victim's device is
    an OwnTracks phone; ``closed`` when the case is closed (or unknown): nobody is warned any more.
    """

    case_id: str
    risk: Risk
    offender_device: str | None = None
    victim_device: str | None = None
    victim_rules: frozenset[str] = frozenset()
    victim_notifications: bool = True
    victim_owntracks_topic: str | None = None
    offender_owntracks_topic: str | None = None
    closed: bool = False


@dataclass(frozen=True, slots=True)
class Sighting:
    """Where a device was seen, as shown to the monitoring room and police: degrees, accuracy in metres,
    UTC time. (A place in an order is an :class:`emon.order.Position`.)"""

    lat: float
    lon: float
    acc_m: float
    ts: datetime

    def to_json(self) -> dict[str, Any]:
        return {"lat": self.lat, "lon": self.lon, "acc_m": self.acc_m, "ts": self.ts.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Sighting | None:
        if not data:
            return None
        return cls(
            float(data["lat"]), float(data["lon"]), float(data["acc_m"]), datetime.fromisoformat(data["ts"])
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: one continuous violation or one device situation of one case.

    ``notify_seq`` counts notification rounds (0: nobody notified yet); ``notified_closest_m`` is the
    closest distance (metres) the recipients were last told about, for re-notification. ``order_version``
    is the order version in force when the alert opened (set by the database when it is first stored).
    """

    alert_id: str
    case_id: str
    type: AlertType
    rule: str
    episode: datetime
    state: AlertState
    priority: Priority
    recipients: frozenset[Recipient]
    risk: Risk
    opened_at: datetime
    updated_at: datetime
    device_id: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    outcome: str | None = None
    late: bool = False
    live: bool = True
    escalated: bool = False
    suppressed: bool = False
    distance_m: float | None = None
    closest_m: float | None = None
    offender_position: Sighting | None = None
    victim_position: Sighting | None = None
    explanation: dict[str, Any] = field(default_factory=dict)
    ended_at: datetime | None = None
    notify_seq: int = 0
    notified_closest_m: float | None = None
    delivery_failing: bool = False
    events: int = 1
    victim_acked_at: datetime | None = None
    order_version: int | None = None

    @property
    def is_open(self) -> bool:
        return self.state is not AlertState.RESOLVED

    def to_json(self) -> dict[str, Any]:
        """The alert JSON of the API, the hub and the docs."""

        def t(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "alert_id": self.alert_id,
            "case_id": self.case_id,
            "type": self.type.value,
            "rule": self.rule,
            "episode": self.episode.isoformat(),
            "state": self.state.value,
            "priority": self.priority.value,
            "recipients": sorted(r.value for r in self.recipients),
            "risk": self.risk.value,
            "opened_at": self.opened_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "acknowledged_at": t(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "resolved_at": t(self.resolved_at),
            "resolved_by": self.resolved_by,
            "outcome": self.outcome,
            "late": self.late,
            "live": self.live,
            "escalated": self.escalated,
            "suppressed": self.suppressed,
            "distance_m": self.distance_m,
            "closest_m": self.closest_m,
            "offender_position": None if self.offender_position is None else self.offender_position.to_json(),
            "victim_position": None if self.victim_position is None else self.victim_position.to_json(),
            "explanation": self.explanation,
            "device_id": self.device_id,
            "ended_at": t(self.ended_at),
            "delivery_failing": self.delivery_failing,
            "events": self.events,
            "victim_acked_at": t(self.victim_acked_at),
            "order_version": self.order_version,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One decided change to an alert: the new alert, what happened, and who must be told now.

    ``notify`` holds the recipients of a new notification round (already filtered for late, live,
    suppression and the victim rules); ``cancel_police`` asks for a CAP Cancel to dispatch.
    """

    alert: Alert
    action: str
    actor: str = "system"
    detail: dict[str, Any] = field(default_factory=dict)
    notify: frozenset[Recipient] = frozenset()
    cancel_police: bool = False


class VictimAck(msgspec.Struct, frozen=True):
    """A victim device's ``emon/v1/ack/{device}`` message: which warning it saw (by notification or
    alert id; at least one) and its own time, kept as sent. Unknown fields are ignored."""

    notification_id: str | None = None
    alert_id: str | None = None
    ts: Any = None

    def __post_init__(self) -> None:
        if not (self.notification_id or self.alert_id):
            raise ValueError("needs notification_id or alert_id")
