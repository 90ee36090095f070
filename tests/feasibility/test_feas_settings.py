"""FeasibilitySettings: documented defaults, EMON_FEAS_* overrides, errors naming the variable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from emon.errors import ConfigError
from emon.feasibility import FeasibilitySettings


def test_defaults() -> None:
    s = FeasibilitySettings()
    assert (s.guideline_m, s.edge_margin_m, s.typical_gps_accuracy_m) == (1000, 200, 30)
    assert (s.min_zone_width_m, s.min_contact_ban_m, s.expires_soon_days) == (120, 500, 14)
    assert FeasibilitySettings.from_env({}) == s


def test_from_env() -> None:
    s = FeasibilitySettings.from_env({"EMON_FEAS_GUIDELINE_M": "1200", "EMON_FEAS_EXPIRES_SOON_DAYS": " 7 "})
    assert s.guideline_m == 1200 and s.expires_soon_days == 7


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"EMON_FEAS_EDGE_MARGIN_M": "wide"}, "EMON_FEAS_EDGE_MARGIN_M"),
        ({"EMON_FEAS_MIN_CONTACT_BAN_M": "-5"}, "EMON_FEAS_MIN_CONTACT_BAN_M"),
        ({"EMON_FEAS_GUIDELINE_M": "0"}, "EMON_FEAS_GUIDELINE_M"),
        ({"EMON_FEAS_TYPICAL_GPS_ACCURACY_M": "nan"}, "EMON_FEAS_TYPICAL_GPS_ACCURACY_M"),
    ],
)
def test_bad_variable_is_named(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        FeasibilitySettings.from_env(env)
    assert info.value.variable == variable


def test_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        FeasibilitySettings().guideline_m = 5  # type: ignore[misc]
