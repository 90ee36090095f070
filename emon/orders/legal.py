"""The kinds of order and their legal limits, read from the data table ``legal_limits.toml``.

The table is data so a lawyer can correct it; this module only reads it and applies it. Terms are
measured in days of 24 hours between ``valid_from`` and ``valid_until`` (UTC).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any


class OrderKind(StrEnum):
    GEDRAGSAANWIJZING = "gedragsaanwijzing"
    SCHORSINGSVOORWAARDE = "schorsingsvoorwaarde"
    BIJZONDERE_VOORWAARDE = "bijzondere_voorwaarde"
    VRIJHEIDSBEPERKENDE_MAATREGEL = "vrijheidsbeperkende_maatregel"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Limits:
    """One row of the table."""

    kind: OrderKind
    title_nl: str
    title_en: str
    legal_basis: str
    issued_by: str
    max_term_days: float | None
    extendable: bool
    max_extensions: int | None
    open_ended_allowed: bool


def _row(kind: OrderKind, raw: dict[str, Any]) -> Limits:
    return Limits(
        kind,
        str(raw["title_nl"]),
        str(raw["title_en"]),
        str(raw["legal_basis"]),
        str(raw["issued_by"]),
        None if raw.get("max_term_days") is None else float(raw["max_term_days"]),
        bool(raw["extendable"]),
        None if raw.get("max_extensions") is None else int(raw["max_extensions"]),
        bool(raw["open_ended_allowed"]),
    )


def parse_table(text: str) -> dict[OrderKind, Limits]:
    """The table from TOML text; every :class:`OrderKind` must have a row (KeyError/ValueError otherwise)."""
    data = tomllib.loads(text)
    unknown = set(data) - {k.value for k in OrderKind}
    if unknown:
        raise ValueError(f"legal limits: unknown kinds {sorted(unknown)}")
    return {kind: _row(kind, data[kind.value]) for kind in OrderKind}


@cache
def table() -> dict[OrderKind, Limits]:
    """The shipped table (emon/orders/legal_limits.toml)."""
    return parse_table(resources.files("emon.orders").joinpath("legal_limits.toml").read_text("utf-8"))


def check_term(
    kind: OrderKind, valid_from: datetime | None, valid_until: datetime | None, extensions: int = 0
) -> None:
    """Raise ValueError with a plain message if the term breaks the kind's legal limits.

    ``extensions``: how many times this order has been extended before (0 for a first term).
    """
    limits = table()[kind]
    if valid_until is None:
        if not limits.open_ended_allowed:
            raise ValueError(f"a {kind.value} ({limits.legal_basis}) needs an end date (valid_until)")
        return
    if limits.max_term_days is not None:
        if valid_from is None:
            raise ValueError(f"a {kind.value} needs a start date (valid_from) to check its maximum term")
        days = (valid_until - valid_from).total_seconds() / 86_400
        if days > limits.max_term_days:
            raise ValueError(
                f"a {kind.value} ({limits.legal_basis}) may run at most {limits.max_term_days:g} days per term; "
                f"this term is {days:g} days — extend it by a new decision instead"
            )
    if extensions > 0 and not limits.extendable:
        raise ValueError(f"a {kind.value} ({limits.legal_basis}) cannot be extended; impose a new one")
    if limits.max_extensions is not None and extensions > limits.max_extensions:
        raise ValueError(f"a {kind.value} may be extended at most {limits.max_extensions} times")


def flags(kind: OrderKind, valid_until: datetime | None) -> list[str]:
    """Warnings that do not refuse the order: ``open_ended`` when it has no end date."""
    return ["open_ended"] if valid_until is None else []
