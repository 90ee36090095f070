"""The vocabulary of alerting: alert types, priorities, recipients and states."""

from __future__ import annotations

from enum import StrEnum


class AlertType(StrEnum):
    """The evaluation's episode starts (``emon.geofence.events.EPISODE_STARTS``, same names and values),
    then the device, silence and panic alerts."""

    EXCLUSION_PRE_ALERT = "exclusion_pre_alert"
    EXCLUSION_BREACH = "exclusion_breach"
    INCLUSION_BREACH = "inclusion_breach"
    PROXIMITY_PRE_ALERT = "proximity_pre_alert"
    PROXIMITY_BREACH = "proximity_breach"
    PROXIMITY_UNKNOWN = "proximity_unknown"
    RETROSPECTIVE_VIOLATION = "retrospective_violation"
    CROSSING_SUSPECTED = "crossing_suspected"
    TAMPER = "tamper"
    STRAP_OPEN = "strap_open"
    BATTERY_LOW = "battery_low"
    BATTERY_CRITICAL = "battery_critical"
    NO_FIX = "no_fix"
    NO_COMMUNICATION = "no_communication"
    PANIC = "panic"
    ORDER_EXPIRING = "order_expiring"
    ORDER_EXPIRED = "order_expired"  # "order expired unextended": the term ended without a decision
    POSSIBLE_BREACH = "possible_breach"  # undecided under uncertainty: the room looks, a fresh fix decides


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class Recipient(StrEnum):
    VICTIM = "victim"  # the victim's device, over MQTT
    PROBATION = "probation"  # the monitoring room (hub stream + REST)
    POLICE = "police"  # the dispatch webhook (CAP 1.2), and the room


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


# A higher rank is a worse situation in the same (case, rule, episode): moving up re-notifies and
# the alert takes the new type, so an alert's type is the most serious thing its episode showed.
# A crossing or retrospective violation ranks above a pre-alert: it is never folded into a
# pre-alert that the system resolves when the ring is left (docs/safety.md).
SEVERITY_RANK: dict[AlertType, int] = {
    AlertType.EXCLUSION_PRE_ALERT: 1,
    AlertType.PROXIMITY_PRE_ALERT: 1,
    AlertType.PROXIMITY_UNKNOWN: 1,
    AlertType.POSSIBLE_BREACH: 2,
    AlertType.CROSSING_SUSPECTED: 3,
    AlertType.RETROSPECTIVE_VIOLATION: 3,
    AlertType.EXCLUSION_BREACH: 4,
    AlertType.INCLUSION_BREACH: 4,
    AlertType.PROXIMITY_BREACH: 5,
}

# Never merged into an earlier alert, never delayed: every event is its own alert.
NEVER_DEBOUNCED = frozenset({AlertType.TAMPER, AlertType.STRAP_OPEN})

# Never held back by a suppression.
NEVER_SUPPRESSED = frozenset({AlertType.PANIC})
