"""Parsing the orders settings (``EMON_ORDER_*``); each error names its variable."""

from __future__ import annotations

from emon.access import UNIT_RE
from emon.errors import ConfigError


def reminder_days(raw: str) -> tuple[int, ...]:
    """``"21,14,7,3,1"`` as (21, 14, 7, 3, 1): whole days before the end, each 1..366, at least one."""
    try:
        days = tuple(sorted({int(x) for x in raw.split(",") if x.strip()}, reverse=True))
    except ValueError as exc:
        raise ConfigError("EMON_ORDER_REMINDER_DAYS", "comma-separated whole days, e.g. 21,14,7,3,1") from exc
    if not days or not all(1 <= d <= 366 for d in days):
        raise ConfigError("EMON_ORDER_REMINDER_DAYS", "at least one offset, each 1..366 days")
    return days


def leads(raw: str) -> dict[str, tuple[str, ...]]:
    """``"probation:utrecht=lea,om:utrecht=otto"`` as {unit: (user ids…)}: whom a reminder escalates to."""
    out: dict[str, tuple[str, ...]] = {}
    for item in (x.strip() for x in raw.split(",") if x.strip()):
        unit, sep, user = item.partition("=")
        if not sep or not UNIT_RE.match(unit.strip()) or not user.strip():
            raise ConfigError("EMON_ORDER_UNIT_LEADS", f"{item!r}: write unit=user_id, comma-separated")
        out[unit.strip()] = (*out.get(unit.strip(), ()), user.strip())
    return out
