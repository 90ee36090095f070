"""Thresholds of the enforceability check, with documented defaults (docs/enforceability.md).

Every distance is in metres. Each field ``x`` may be overridden by the environment variable
``EMON_FEAS_X`` (e.g. ``EMON_FEAS_GUIDELINE_M=1200``).
"""

from __future__ import annotations

import math

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from emon.config import EnvConfig
from emon.errors import ConfigError


class FeasibilitySettings(EnvConfig):
    """Thresholds used by :func:`emon.feasibility.check`.

    ``guideline_m``
        Minimum straight-line distance (metres) between the offender's residence and any exclusion
        zone; closer than this an ankle tag cannot tell being at home from entering the zone.
    ``edge_margin_m``
        A protected place should lie at least this far (metres) inside its exclusion zone, so the
        offender is detected before reaching it.
    ``typical_gps_accuracy_m``
        Typical horizontal GPS error of the ankle tag (metres). Only documents where the default
        of ``min_zone_width_m`` comes from.
    ``min_zone_width_m``
        Minimum zone width (metres): the diameter of the largest circle that fits in the zone.
        Default 4 x typical accuracy: a fix at the zone's centre then has an error circle of
        twice the typical accuracy that still lies entirely inside.
    ``min_contact_ban_m``
        Smallest contact-ban distance (metres) that two GPS devices can monitor reliably.
    ``expires_soon_days``
        An order ending within this many days of "now" gets an ``EXPIRES_SOON`` warning.
    """

    model_config = SettingsConfigDict(env_prefix="EMON_FEAS_")

    guideline_m: float = 1000.0
    edge_margin_m: float = 200.0
    typical_gps_accuracy_m: float = 30.0
    min_zone_width_m: float = 120.0
    min_contact_ban_m: float = 500.0
    expires_soon_days: float = 14.0

    @model_validator(mode="after")
    def _sane(self) -> FeasibilitySettings:
        """Checked at construction too: a threshold of NaN or below zero would make every check pass."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(self.variable(name), f"must be a finite number >= 0, got {value!r}")
        if self.guideline_m <= 0:
            raise ConfigError(self.variable("guideline_m"), "must be > 0")
        return self
