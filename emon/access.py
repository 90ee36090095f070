"""Who may see what: roles, principals, case scoping by unit, and the purposes of a consultation.

Pure rules (no I/O). The API asks them; storage builds :class:`Principal` values from its rows.

Scoping (least privilege): a case names the units that may see it (``Case.units``: a probation
region, a police unit, a prosecutor's office). A user belongs to units too. An admin sees every
case; anyone else sees a case only if they share a unit with it. The unit ``*`` stands for every
unit (a national role, and the unscoped tokens of the deprecated ``POST /tokens``). A case that names
no unit is seen by admins and ``*`` users only. An auditor sees no case at all, only the audit log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from emon.errors import InvalidInput

ALL_UNITS = "*"
UNIT_RE = re.compile(r"^(\*|[a-z0-9][a-z0-9_.:-]{0,62})$")


class Role(StrEnum):
    ADMIN = "admin"
    PROBATION = "probation"
    POLICE = "police"
    PROSECUTOR = "prosecutor"
    AUDITOR = "auditor"  # reads the audit log, nothing else


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user's name and role, the units they belong to, the token used."""

    name: str
    role: Role
    units: frozenset[str] = frozenset()
    user_id: str | None = None
    token_id: str | None = None

    @property
    def unscoped(self) -> bool:
        """True if unit scoping does not narrow what this principal sees (admin, or unit ``*``)."""
        return self.role is Role.ADMIN or ALL_UNITS in self.units


def may_see_case(who: Principal, case_units: Iterable[str]) -> bool:
    """True if ``who`` may see a case naming ``case_units`` (see the module docstring)."""
    if who.role is Role.AUDITOR:
        return False
    if who.unscoped:
        return True
    return not who.units.isdisjoint(case_units)


def check_units(units: Iterable[str], *, allow_all: bool = True) -> tuple[str, ...]:
    """Unit names, sorted and de-duplicated; :class:`InvalidInput` naming a bad one.

    ``allow_all``: whether ``*`` may be among them (a user may be national; a case names real units).
    """
    out = sorted(set(units))
    for unit in out:
        if unit == ALL_UNITS and not allow_all:
            raise InvalidInput("a case names its units; '*' is for users only")
        if not UNIT_RE.match(unit):
            raise InvalidInput(f"unit {unit!r}: lower-case letters, digits and _ . : - (or '*'), at most 63")
    return tuple(out)


class Purpose(StrEnum):
    """Why personal data is consulted; required to see a victim's position (recorded in the audit log).

    The person chooses it; it is never filled in for them.
    """

    ALERT_RESPONSE = "alert_response"  # handling an open alert in the monitoring room
    DISPATCH = "dispatch"  # sending or guiding police to the scene
    VICTIM_CONTACT = "victim_contact"  # contacting or protecting the victim
    INVESTIGATION = "investigation"  # a criminal investigation of a violation
    CASE_SUPERVISION = "case_supervision"  # supervising the order (not for a victim's position)
    AUDIT_REVIEW = "audit_review"  # reviewing the audit log (not for a victim's position)


# Purposes that justify seeing a victim's position; the others are refused for it.
VICTIM_POSITION_PURPOSES = frozenset(
    {Purpose.ALERT_RESPONSE, Purpose.DISPATCH, Purpose.VICTIM_CONTACT, Purpose.INVESTIGATION}
)


def parse_purpose(value: str | None) -> Purpose | None:
    """The purpose named by a header or query parameter; None if absent; InvalidInput if unknown."""
    if value is None or not value.strip():
        return None
    try:
        return Purpose(value.strip())
    except ValueError as exc:
        known = ", ".join(p.value for p in Purpose)
        raise InvalidInput(f"unknown purpose {value.strip()[:40]!r}; one of: {known}") from exc
