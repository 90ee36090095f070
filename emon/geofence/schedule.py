"""When a zone is enforced: validity interval plus weekly wall-clock windows in an IANA zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from emon.order import Schedule, Window

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _window_intervals(window: Window, tz: ZoneInfo, when: datetime) -> list[tuple[datetime, datetime]]:
    """UTC [start, end) intervals of ``window`` that start on the local day of ``when`` or the day before."""
    local_day = when.astimezone(tz).date()
    out: list[tuple[datetime, datetime]] = []
    for back in (1, 0):
        day = local_day - timedelta(days=back)
        if _DAYS[day.weekday()] not in window.days:
            continue
        # Wall-clock times resolved in the zone: a 22:00-07:00 window is 9 h of local time,
        # which is 8 or 10 h of real time on the nights the clocks change.
        start = datetime.combine(day, window.start, tzinfo=tz)
        end_day = day + timedelta(days=1) if window.end <= window.start else day
        end = datetime.combine(end_day, window.end, tzinfo=tz)
        out.append((start.astimezone(UTC), end.astimezone(UTC)))
    return out


def active_since(
    schedule: Schedule | None, valid_from: datetime | None, valid_until: datetime | None, when: datetime
) -> datetime | None:
    """The UTC instant the current enforcement interval began, or None if not enforced at ``when``.

    Enforced means ``valid_from <= when < valid_until`` and, with a schedule, ``when`` inside one
    of its windows. Without a schedule or ``valid_from`` the start is ``datetime.min`` (UTC).
    """
    if valid_from is not None and when < valid_from:
        return None
    if valid_until is not None and when >= valid_until:
        return None
    floor = valid_from if valid_from is not None else datetime.min.replace(tzinfo=UTC)
    if schedule is None:
        return floor
    tz = ZoneInfo(schedule.timezone)
    starts = [
        start
        for window in schedule.windows
        for start, end in _window_intervals(window, tz, when)
        if start <= when < end
    ]
    if not starts:
        return None
    return max(min(starts), floor)


def is_active(
    schedule: Schedule | None, valid_from: datetime | None, valid_until: datetime | None, when: datetime
) -> bool:
    """True if a zone with this schedule and validity is enforced at UTC ``when``."""
    return active_since(schedule, valid_from, valid_until, when) is not None
