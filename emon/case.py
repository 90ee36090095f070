"""A monitoring case: one offender's tag, optionally one victim's device, and the order that applies."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Self

from pydantic import Field, field_validator, model_validator

from emon.access import check_units
from emon.device import DEVICE_ID_RE
from emon.errors import InvalidInput
from emon.order import Order, Position, Strict


class Risk(StrEnum):
    """SASH risk level."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Case(Strict):
    case_id: str = Field(min_length=1, max_length=64)
    risk: Risk
    offender_device: str
    victim_device: str | None = None
    residence: Position
    order: Order
    status: CaseStatus = CaseStatus.OPEN
    # Who may see the case (emon/access.py): probation region, police unit, prosecutor's office.
    units: tuple[str, ...] = Field(default=(), max_length=32)
    # The identifier prosecution and police already use for the person (e.g. a parketnummer-based or
    # police person number): opaque to emon, looked up by police. Never a citizen service number (BSN).
    person_ref: str | None = Field(default=None, min_length=3, max_length=64)
    # The responsible officers (user ids): the order's reminders and violation-report tasks are theirs.
    prosecutor: str | None = Field(default=None, min_length=1, max_length=64)
    probation_officer: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("case_id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", value):
            raise ValueError("case_id may hold letters, digits and _ . : - only")
        return value

    @field_validator("offender_device", "victim_device")
    @classmethod
    def _device_id(cls, value: str | None) -> str | None:
        if value is not None and not DEVICE_ID_RE.match(value):
            raise ValueError(f"must match {DEVICE_ID_RE.pattern}")
        return value

    @field_validator("person_ref")
    @classmethod
    def _not_a_bsn(cls, value: str | None) -> str | None:
        if value is not None and looks_like_bsn(value):
            raise ValueError("person_ref must be the police/prosecution person reference, never a BSN")
        return value

    @field_validator("units")
    @classmethod
    def _units(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return check_units(value, allow_all=False)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from exc

    @model_validator(mode="after")
    def _distinct_devices(self) -> Self:
        if self.victim_device is not None and self.victim_device == self.offender_device:
            raise ValueError("victim_device must differ from offender_device")
        return self


def looks_like_bsn(value: str) -> bool:
    """True if ``value`` (ignoring dots, dashes and spaces) is 8 or 9 digits passing the BSN eleven-test."""
    digits = re.sub(r"[\s.-]", "", value)
    if not re.fullmatch(r"\d{8,9}", digits):
        return False
    digits = digits.zfill(9)
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total % 11 == 0
