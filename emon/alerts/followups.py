"""What follows from an alert change besides notifications (pure): room tasks and locate requests.

* A warning for the victim that cannot reach them (no device), or may not be shown (an OwnTracks phone:
  the Android app ignores the ``action`` command, no app acknowledges), becomes a room task "inform the
  victim by phone" — one per alert and type, so a worse ring (pre-alert → breach) is a new call, while a
  "closer" re-notification of the same breach is not (the room is already calling about it).
* A ``possible_breach`` that opens becomes a low-priority task "obtain a fresh fix / check".
* Uncertainty that a fresh fix resolves asks both devices of the case for one: a panic (pursuit mode for
  ``pursuit_s``), a stale counterpart (``proximity_unknown``) and a possible breach (once).
* An engine ``locate_request`` event is turned into a request, never into an alert.
"""

from __future__ import annotations

from datetime import datetime

from emon.alerts.commands import LocateRequest, pursuit_until
from emon.alerts.config import AlertConfig
from emon.alerts.model import CaseInfo, Change
from emon.alerts.types import AlertType, Recipient
from emon.geofence.events import EvalEvent
from emon.tasks.model import Task, TaskKind, new_task

LOCATE_ON_OPEN = frozenset({AlertType.PROXIMITY_UNKNOWN, AlertType.POSSIBLE_BREACH})


def tasks_for(change: Change, case: CaseInfo, config: AlertConfig, now: datetime) -> list[Task]:
    """The room tasks a change asks for (ids are deterministic: deciding twice creates one)."""
    alert, out = change.alert, []
    if (
        Recipient.VICTIM in change.notify
        and not case.closed
        and (case.victim_device is None or case.victim_owntracks_topic is not None)
    ):
        why = (
            "no victim device" if case.victim_device is None else "OwnTracks phone: warning may not be shown"
        )
        out.append(
            new_task(
                TaskKind.INFORM_VICTIM,
                alert.case_id,
                alert.alert_id,
                alert.priority,
                now,
                config.task_inform_victim_s,
                {"reason": why, "alert_type": alert.type.value, "round": alert.notify_seq},
                subject=f"{alert.alert_id}|{alert.type.value}",
            )
        )
    if change.action == "opened" and alert.type is AlertType.POSSIBLE_BREACH and not alert.suppressed:
        out.append(
            new_task(
                TaskKind.CHECK_POSSIBLE,
                alert.case_id,
                alert.alert_id,
                alert.priority,
                now,
                config.task_check_s,
                {"alert_type": alert.type.value, "rule": alert.rule},
            )
        )
    return out


def locate_for(change: Change, case: CaseInfo, config: AlertConfig, now: datetime) -> LocateRequest | None:
    """The fresh fixes a newly opened alert asks for, or None."""
    alert = change.alert
    if change.action != "opened" or case.closed:
        return None
    devices = tuple(d for d in (case.offender_device, case.victim_device) if d)
    origin = f"alert:{alert.alert_id}"
    if alert.type is AlertType.PANIC:
        return LocateRequest(
            case.case_id,
            devices,
            "panic",
            origin,
            config.locate_every_s,
            pursuit_until(now, config.pursuit_s),
            alert_id=alert.alert_id,
        )
    if alert.type in LOCATE_ON_OPEN:
        return LocateRequest(case.case_id, devices, alert.type.value, origin, alert_id=alert.alert_id)
    return None


def locate_request_of(ev: EvalEvent, case: CaseInfo) -> LocateRequest:
    """An engine ``locate_request`` event (``detail``: ``devices``, ``reason``, ``every_s``, ``until``) as a
    request to those of the listed devices that belong to the case (never another case's device); a
    malformed detail raises ValueError (the batch's savepoint records and skips it)."""
    detail = ev.detail
    listed = detail.get("devices")
    if not isinstance(listed, list) or not all(isinstance(d, str) for d in listed):
        raise ValueError(f"locate_request of {ev.case_id}: devices must be a list of device ids")
    own = {case.offender_device, case.victim_device} - {None}
    devices = [d for d in listed if d in own and not case.closed]
    every = detail.get("every_s")
    until_raw = detail.get("until")
    until = None if until_raw is None else datetime.fromisoformat(str(until_raw).replace("Z", "+00:00"))
    if until is not None and until.tzinfo is None:
        raise ValueError(f"locate_request of {ev.case_id}: until needs a UTC offset")
    return LocateRequest(
        ev.case_id,
        tuple(devices),
        str(detail.get("reason", "")),
        f"eval:{ev.case_id}|{ev.rule}|{ev.at.isoformat()}",
        None if every is None else int(every),
        until,
    )
