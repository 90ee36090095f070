"""AlertType and EvalEventType share one vocabulary: the episode starts."""

from __future__ import annotations

from emon.alerts.types import AlertType
from emon.geofence.events import EPISODE_STARTS, EvalEventType


def test_every_episode_start_is_an_alert_type_of_the_same_name_and_value() -> None:
    for start in EPISODE_STARTS:
        assert AlertType[start.name].value == start.value


def test_no_other_evaluation_event_is_an_alert_type() -> None:
    others = set(EvalEventType) - EPISODE_STARTS
    assert not {e.value for e in others} & {a.value for a in AlertType}
