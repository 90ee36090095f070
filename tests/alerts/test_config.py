"""Alerting settings are refused at start, naming the variable, when they would break the tick later."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emon.alerts.config import AlertConfig
from emon.alerts.service import AlertService
from emon.alerts.types import Priority
from emon.errors import ConfigError


@pytest.mark.parametrize("value", ["inf", "nan", "1e11", "1e300", "-1"])
def test_a_deadline_that_date_arithmetic_cannot_take_is_refused(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        AlertConfig.from_env({"EMON_ALERT_ACK_DEADLINE_LOW_S": value})
    assert "EMON_ALERT_ACK_DEADLINE_LOW_S" in str(err.value)


def test_a_sender_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        AlertConfig.from_env({"EMON_ALERT_SENDER": "emon@politie\udce9.nl"})
    assert "EMON_ALERT_SENDER" in str(err.value)


def test_escalation_cutoffs_skip_a_deadline_beyond_the_calendar() -> None:
    """Even a config built without the checks cannot make every tick fail on date overflow."""
    config = AlertConfig.model_construct(**{**AlertConfig().model_dump(), "ack_deadline_low_s": float("inf")})
    service = AlertService.__new__(AlertService)
    service.config = config
    cutoffs = service._escalation_cutoffs(datetime(2026, 12, 1, tzinfo=UTC))
    assert Priority.LOW not in cutoffs and Priority.CRITICAL in cutoffs
