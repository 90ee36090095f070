"""What the enforceability check reports: findings (problems, with numbers) and suggestions.

Every figure is a plain number: distances in metres (``*_m``), areas in square metres (``*_m2``),
durations in days (``*_days``). Messages are plain language in Dutch and English.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    BLOCKING = "blocking"  # the order cannot be enforced as written
    WARNING = "warning"  # enforceable, but weaker than intended
    INFO = "info"  # worth knowing


class Code(StrEnum):
    """Stable finding codes; see docs/enforceability.md for each criterion."""

    RESIDENCE_INSIDE_ZONE = "RESIDENCE_INSIDE_ZONE"
    RESIDENCE_TOO_CLOSE = "RESIDENCE_TOO_CLOSE"
    PROTECTED_PLACE_NOT_COVERED = "PROTECTED_PLACE_NOT_COVERED"
    PROTECTED_PLACE_NEAR_EDGE = "PROTECTED_PLACE_NEAR_EDGE"
    ZONE_TOO_SMALL = "ZONE_TOO_SMALL"
    ZONE_CONFLICT = "ZONE_CONFLICT"
    CONTACT_DISTANCE_TOO_SMALL = "CONTACT_DISTANCE_TOO_SMALL"
    CONTACT_BAN_NEEDS_VICTIM_DEVICE = "CONTACT_BAN_NEEDS_VICTIM_DEVICE"
    INVALID_PERIOD = "INVALID_PERIOD"
    OPEN_ENDED = "OPEN_ENDED"
    EXPIRES_SOON = "EXPIRES_SOON"
    EXPIRED = "EXPIRED"


SEVERITY: Mapping[Code, Severity] = {
    Code.RESIDENCE_INSIDE_ZONE: Severity.BLOCKING,
    Code.RESIDENCE_TOO_CLOSE: Severity.BLOCKING,
    Code.PROTECTED_PLACE_NOT_COVERED: Severity.WARNING,
    Code.PROTECTED_PLACE_NEAR_EDGE: Severity.WARNING,
    Code.ZONE_TOO_SMALL: Severity.WARNING,
    Code.ZONE_CONFLICT: Severity.BLOCKING,
    Code.CONTACT_DISTANCE_TOO_SMALL: Severity.WARNING,
    Code.CONTACT_BAN_NEEDS_VICTIM_DEVICE: Severity.INFO,
    Code.INVALID_PERIOD: Severity.BLOCKING,
    Code.OPEN_ENDED: Severity.INFO,
    Code.EXPIRES_SOON: Severity.WARNING,
    Code.EXPIRED: Severity.BLOCKING,
}


class SuggestionKind(StrEnum):
    SMALLER_CIRCLE = "smaller_circle"  # same centre, largest radius that keeps the guideline distance
    TRIMMED_POLYGON = "trimmed_polygon"  # the zone minus the guideline disc around the residence
    DYNAMIC_MONITORING = "dynamic_monitoring"  # no fixed zone works: contact ban with a victim device


@dataclass(frozen=True, slots=True)
class Message:
    """One sentence in both languages."""

    nl: str
    en: str

    def in_lang(self, lang: str) -> str:
        return self.nl if lang == "nl" else self.en


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with the proposed order; ``figures`` are metres unless the key says otherwise."""

    code: Code
    message: Message
    zone: str | None = None
    place: str | None = None
    figures: Mapping[str, float] = field(default_factory=dict)

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.code]

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "zone": self.zone,
            "place": self.place,
            "figures": _rounded(self.figures),
            "message": {"nl": self.message.nl, "en": self.message.en},
        }


@dataclass(frozen=True, slots=True)
class Coverage:
    """Whether a suggested zone still protects a place: ``margin_m`` is its depth inside (metres,
    negative when outside); ``protected`` means inside by at least the edge margin."""

    place: str
    margin_m: float
    protected: bool

    def to_dict(self) -> dict[str, Any]:
        return {"place": self.place, "margin_m": round(self.margin_m, 2), "protected": self.protected}


@dataclass(frozen=True, slots=True)
class Suggestion:
    """An enforceable alternative for one failing zone.

    ``zone_document`` is the replacement zone in order-document form (ready to paste into the order),
    or None for dynamic monitoring. ``workable`` is False when even the alternative falls short.
    """

    kind: SuggestionKind
    zone: str
    workable: bool
    message: Message
    figures: Mapping[str, float] = field(default_factory=dict)
    coverage: tuple[Coverage, ...] = ()
    zone_document: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "zone": self.zone,
            "workable": self.workable,
            "figures": _rounded(self.figures),
            "coverage": [c.to_dict() for c in self.coverage],
            "replacement_zone": dict(self.zone_document) if self.zone_document is not None else None,
            "message": {"nl": self.message.nl, "en": self.message.en},
        }


def _rounded(figures: Mapping[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in figures.items()}
