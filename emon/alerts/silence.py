"""Silent devices (pure): no message for ``factor`` × the reporting interval → no_communication;
messages but no fix for that long → no_fix. The MQTT last will is the fast path (see lifecycle)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from emon.alerts.types import AlertType


@dataclass(frozen=True, slots=True)
class Silence:
    device_id: str
    type: AlertType
    since: datetime  # last message (no_communication) or last fix (no_fix): the alert's episode


def find_silence(
    device_id: str,
    report_interval_s: float,
    factor: float,
    last_seen: Mapping[str, datetime],
    latest_fix: Mapping[str, datetime],
    now: datetime,
) -> Silence | None:
    """The silence of one device at ``now``, or None. A device never heard from is not judged here."""
    limit = factor * report_interval_s
    heard = heard_since(AlertType.NO_COMMUNICATION, device_id, last_seen, latest_fix)
    if heard is None:
        return None
    if (now - heard).total_seconds() > limit:
        return Silence(device_id, AlertType.NO_COMMUNICATION, heard)
    fix = latest_fix.get(device_id)
    if fix is not None and (now - fix).total_seconds() > limit:
        return Silence(device_id, AlertType.NO_FIX, fix)
    return None


def heard_since(
    alert_type: AlertType,
    device_id: str,
    last_seen: Mapping[str, datetime],
    latest_fix: Mapping[str, datetime],
) -> datetime | None:
    """When the device last did what the silence alert missed (a message, or a fix)."""
    if alert_type is AlertType.NO_FIX:
        return latest_fix.get(device_id)
    times = [t for t in (last_seen.get(device_id), latest_fix.get(device_id)) if t is not None]
    return max(times) if times else None
