"""An order in plain language (Dutch or English) for an officer on the street. Pure: time passed in.

What is forbidden or required, where (GeoJSON and a map link per zone), since and until when, under
which decision, whether it is in force now and whether it was recently violated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from emon.case import Case
from emon.order import Schedule, Zone
from emon.orders.legal import table
from emon.orders.lifecycle import in_force

Lang = Literal["nl", "en"]
_DAYS = {
    "nl": {"mon": "ma", "tue": "di", "wed": "wo", "thu": "do", "fri": "vr", "sat": "za", "sun": "zo"},
    "en": {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"},
}
_LOCAL = ZoneInfo("Europe/Amsterdam")


def _t(value: datetime | None, lang: Lang) -> str:
    if value is None:
        return "onbepaalde tijd" if lang == "nl" else "no end date"
    return (
        value.astimezone(_LOCAL).strftime("%d-%m-%Y %H:%M")
        if lang == "nl"
        else value.astimezone(_LOCAL).strftime("%Y-%m-%d %H:%M") + " (Amsterdam)"
    )


def _when(schedule: Schedule | None, lang: Lang) -> str:
    if schedule is None:
        return "altijd" if lang == "nl" else "at all times"
    parts = []
    for w in schedule.windows:
        days = (
            "dagelijks"
            if lang == "nl" and len(w.days) == 7
            else "daily"
            if len(w.days) == 7
            else ", ".join(_DAYS[lang][d.value] for d in w.days)
        )
        span = f"{w.start:%H:%M}-{w.end:%H:%M}"
        parts.append(f"{days} {span}")
    return "; ".join(parts)


def map_link(zone: Zone) -> str:
    """An OpenStreetMap link centred on the zone (its circle centre, or its first polygon corner)."""
    if zone.circle is not None:
        lat, lon = zone.circle.lat, zone.circle.lon
    else:
        assert zone.geometry is not None
        coords: Any = zone.geometry["coordinates"]
        while isinstance(coords[0], list):
            coords = coords[0]
        lon, lat = float(coords[0]), float(coords[1])
    return f"https://www.openstreetmap.org/?mlat={lat:.5f}&mlon={lon:.5f}#map=16/{lat:.5f}/{lon:.5f}"


def _zone_text(zone: Zone, kind: str, lang: Lang) -> str:
    size = f" ({zone.circle.radius_m:g} m)" if zone.circle is not None else ""
    when = _when(zone.schedule, lang)
    if kind == "exclusion":
        return (
            f"Locatieverbod: mag niet in het gebied '{zone.name}'{size} komen ({when})."
            if lang == "nl"
            else f"Exclusion zone: must not enter the area '{zone.name}'{size} ({when})."
        )
    return (
        f"Locatiegebod: moet in het gebied '{zone.name}'{size} zijn ({when})."
        if lang == "nl"
        else f"Inclusion zone: must be inside the area '{zone.name}'{size} ({when})."
    )


def describe(
    case: Case,
    now: datetime,
    lang: Lang,
    violations: tuple[int, datetime | None] = (0, None),
    geojson: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The case's order as an officer reads it; ``violations`` = (count in the recent period, latest)."""
    o = case.order
    limits = table()[o.kind]
    active = in_force(o.valid_from, o.valid_until, now) and case.status.value == "open"
    rules: list[dict[str, Any]] = []
    if o.contact_ban_m is not None:
        rules.append(
            {
                "rule": "contact_ban",
                "text": f"Contactverbod: mag niet binnen {o.contact_ban_m:g} meter van het slachtoffer komen."
                if lang == "nl"
                else f"Contact ban: must not come within {o.contact_ban_m:g} metres of the victim.",
            }
        )
    for kind, zones in (("exclusion", o.exclusion_zones), ("inclusion", o.inclusion_zones)):
        for z in zones:
            rules.append(
                {
                    "rule": f"{kind}:{z.name}",
                    "text": _zone_text(z, kind, lang),
                    "map": map_link(z),
                    "valid_from": None if z.valid_from is None else z.valid_from.isoformat(),
                    "valid_until": None if z.valid_until is None else z.valid_until.isoformat(),
                }
            )
    title = limits.title_nl if lang == "nl" else limits.title_en
    d = o.decision
    if d is None:
        decision = "geen besluit vastgelegd" if lang == "nl" else "no decision recorded"
    else:
        decision = (
            f"besluit {d.reference} van {d.authority}, {d.date.astimezone(_LOCAL):%d-%m-%Y}"
            if lang == "nl"
            else f"decision {d.reference} by {d.authority}, {d.date.astimezone(_LOCAL):%Y-%m-%d}"
        )
    if active:
        status = "van kracht" if lang == "nl" else "in force"
    elif o.valid_from is not None and now < o.valid_from:
        status = "nog niet van kracht" if lang == "nl" else "not yet in force"
    else:
        status = "geen maatregel van kracht" if lang == "nl" else "no order in force"
    count, last = violations
    if count:
        recent = (
            f"Ja: {count} overtreding(en) in de afgelopen 30 dagen, laatste {_t(last, lang)}."
            if lang == "nl"
            else f"Yes: {count} violation(s) in the last 30 days, latest {_t(last, lang)}."
        )
    else:
        recent = "Nee, niet in de afgelopen 30 dagen." if lang == "nl" else "No, not in the last 30 days."
    basis = f" ({limits.legal_basis})" if limits.legal_basis else ""
    summary = (
        f"{title}{basis}: {status}, van {_t(o.valid_from, lang)} tot {_t(o.valid_until, lang)}; {decision}."
        if lang == "nl"
        else f"{title}{basis}: {status}, from {_t(o.valid_from, lang)} until {_t(o.valid_until, lang)}; {decision}."
    )
    return {
        "case_id": case.case_id,
        "person_ref": case.person_ref,
        "offender_device": case.offender_device,
        "kind": o.kind.value,
        "legal_basis": limits.legal_basis,
        "in_force": active,
        "status": status,
        "valid_from": None if o.valid_from is None else o.valid_from.isoformat(),
        "valid_until": None if o.valid_until is None else o.valid_until.isoformat(),
        "decision": None if d is None else d.model_dump(mode="json"),
        "decision_text": decision,
        "summary": summary,
        "rules": rules,
        "recently_violated": count > 0,
        "recent_violations": {
            "count": count,
            "latest": None if last is None else last.isoformat(),
            "text": recent,
        },
        "geojson": geojson,
    }
