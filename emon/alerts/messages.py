"""What the victim's device shows: what happened and what to do, in Dutch and English.

Deliberately free of the offender's coordinates, distance or direction: a victim message tells the
victim what to do, never where the offender is (that could lead a victim towards them, and the
message may be read by someone else holding the device).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from emon.alerts.model import Alert
from emon.alerts.types import AlertType

Text = dict[str, str]

_MESSAGES: dict[AlertType, tuple[Text, Text, str]] = {
    AlertType.PROXIMITY_BREACH: (
        {
            "nl": "De persoon met het contactverbod is bij u in de buurt.",
            "en": "The person under the restraining order is near you.",
        },
        {
            "nl": "Ga naar een veilige plek en bel 112. De politie is gewaarschuwd.",
            "en": "Go to a safe place and call 112. The police have been alerted.",
        },
        "critical",
    ),
    AlertType.PROXIMITY_PRE_ALERT: (
        {
            "nl": "Let op: de persoon met het contactverbod is mogelijk in de omgeving.",
            "en": "Caution: the person under the restraining order may be in your area.",
        },
        {
            "nl": "Blijf alert en blijf op een drukke, veilige plek. De reclassering volgt het.",
            "en": "Stay alert and stay in a busy, safe place. Probation is monitoring.",
        },
        "warning",
    ),
    AlertType.EXCLUSION_BREACH: (
        {
            "nl": "De persoon met het contactverbod is in een verboden gebied bij u.",
            "en": "The person under the restraining order has entered a forbidden area near you.",
        },
        {
            "nl": "Blijf binnen of ga naar een veilige plek en bel 112 bij gevaar. De politie is gewaarschuwd.",
            "en": "Stay inside or go to a safe place and call 112 if in danger. The police have been alerted.",
        },
        "critical",
    ),
    AlertType.PANIC: (
        {"nl": "Uw noodmelding is ontvangen.", "en": "Your emergency alarm has been received."},
        {
            "nl": "De politie is gewaarschuwd. Blijf op een veilige plek; bel 112 als dat kan.",
            "en": "The police have been alerted. Stay somewhere safe; call 112 if you can.",
        },
        "critical",
    ),
}
_GENERIC: tuple[Text, Text, str] = (
    {"nl": "Er is een melding over uw veiligheid.", "en": "There is an alert concerning your safety."},
    {
        "nl": "Blijf alert. Bel 112 bij direct gevaar.",
        "en": "Stay alert. Call 112 if you are in immediate danger.",
    },
    "warning",
)


def victim_notification(alert: Alert, notification_id: str, ts: datetime) -> dict[str, Any]:
    """The JSON sent to the victim's device. It carries ids, the type and instructions — no positions."""
    message, action, severity = _MESSAGES.get(alert.type, _GENERIC)
    return {
        "notification_id": notification_id,
        "alert_id": alert.alert_id,
        "type": alert.type.value,
        "ts": ts.isoformat(),
        "severity": severity,
        "message": dict(message),
        "action": dict(action),
    }


def owntracks_warning(alert: Alert, notification_id: str) -> dict[str, Any]:
    """The same warning as an OwnTracks remote command the app can show: ``action: "action"`` with a
    ``notification`` (shown as a notification by the iOS app) and ``content`` (the iOS app's Featured
    Content tab). The Android app does not act on ``action``; the room's inform-the-victim task is the
    fallback (docs/device-contract.md). No positions, no distances, like every victim message."""
    message, action, _ = _MESSAGES.get(alert.type, _GENERIC)
    text = f"{message['nl']} {action['nl']}"
    return {
        "_type": "cmd",
        "action": "action",
        "notification": text,
        "content": f"{text}\n\n{message['en']} {action['en']}\n\n(emon {notification_id})",
    }
