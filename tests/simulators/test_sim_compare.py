"""Expected versus observed, on recorded observations (no emon needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emon.alerts.types import AlertType
from simulators.compare import Observed, compare, observed_from_api, observed_from_notifications
from simulators.driver import Notification
from simulators.scenario import Expectation

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def exp(t: str, who: str, within: float) -> Expectation:
    return Expectation.model_validate({"type": t, "recipient": who, "within_s": within})


def obs(t: str, who: set[str], at: float) -> Observed:
    return Observed(t, frozenset(who), at, "api", "a1")


@pytest.mark.parametrize(
    ("expected", "observed", "ok"),
    [
        (exp("proximity_breach", "police", 300), obs("proximity_breach", {"police", "victim"}, 120), True),
        (
            exp("proximity_breach", "police", 300),
            obs("proximity_breach", {"victim"}, 120),
            False,
        ),  # recipient
        (exp("proximity_breach", "police", 300), obs("proximity_pre_alert", {"police"}, 120), False),  # type
        (exp("proximity_breach", "police", 300), obs("proximity_breach", {"police"}, 301), False),  # too late
    ],
)
def test_expectation_matching(expected: Expectation, observed: Observed, ok: bool) -> None:
    result = compare("s", [expected], [], [observed])
    assert result.passed is ok
    assert ("ok" if ok else "MISSING") in result.report()


def test_slack_and_earliest_match() -> None:
    e = exp("tamper", "probation", 100)
    late, later = obs("tamper", {"probation"}, 140), obs("tamper", {"probation"}, 120)
    result = compare("s", [e], [], [late, later], slack_s=50)
    assert result.passed and result.rows[0].match is later


def test_forbidden_type_fails_and_is_reported() -> None:
    result = compare("s", [], [AlertType.EXCLUSION_BREACH], [obs("exclusion_breach", {"police"}, 33)])
    assert not result.passed
    assert "exclusion_breach (forbidden) -> police" in result.report()
    assert compare("s", [], [AlertType.EXCLUSION_BREACH], [obs("exclusion_pre_alert", set(), 1)]).passed


def test_observed_from_api_converts_times_and_recipient_shapes() -> None:
    alerts: list[Any] = [
        {"alert_id": "a", "type": "proximity_breach", "recipients": ["victim", "police"],
         "opened_at": (START + timedelta(seconds=12)).isoformat()},
        {"alert_id": "b", "type": "tamper", "recipients": [{"role": "probation", "channel": "dashboard"}],
         "opened_at": "2026-03-02T13:00:30+01:00"},
        {"alert_id": "c", "type": "tamper", "opened_at": (START - timedelta(hours=1)).isoformat()},  # earlier run
        {"alert_id": "d", "type": "tamper", "opened_at": "2026-03-02T12:00:00"},  # no offset: unreadable
        "garbage",
    ]  # fmt: skip
    seen, bad = observed_from_api(alerts, start=START, compression=10)
    assert [(o.alert_id, o.type, o.recipients, o.at_s) for o in seen] == [
        ("a", "proximity_breach", frozenset({"victim", "police"}), 120.0),
        ("b", "tamper", frozenset({"probation"}), 300.0),
    ]
    assert bad == 2
    assert not compare("s", [], [], seen, unreadable=bad).passed


def test_victim_notifications_count_for_the_victim() -> None:
    n = Notification("v", START + timedelta(seconds=3), {"alert_id": "a9", "type": "proximity_pre_alert"})
    (o,) = observed_from_notifications([n], start=START, compression=20)
    assert (o.type, o.recipients, o.at_s, o.source) == (
        "proximity_pre_alert",
        frozenset({"victim"}),
        60.0,
        "notify",
    )
    assert compare("s", [exp("proximity_pre_alert", "victim", 60)], [], [o]).passed


def test_report_is_a_readable_table() -> None:
    result = compare(
        "approach_victim",
        [exp("proximity_pre_alert", "victim", 700), exp("proximity_breach", "police", 900)],
        [],
        [obs("proximity_pre_alert", {"victim"}, 650.0)],
        notes=["published 10/10"],
    )
    lines = result.report().splitlines()
    assert lines[0] == "scenario approach_victim: FAIL"
    assert "proximity_pre_alert -> victim" in lines[2] and lines[2].endswith("ok")
    assert lines[3].endswith("MISSING")
    assert "note: published 10/10" in lines[4]
