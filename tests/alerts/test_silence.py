"""Silence detection (pure) as a table: last message and last fix in → the silence (or none) out."""

from __future__ import annotations

from datetime import datetime

import pytest

from emon.alerts import lifecycle as lc
from emon.alerts.routing import Routing
from emon.alerts.silence import Silence, find_silence, heard_since
from emon.alerts.types import AlertType
from tests.alerts.helpers import OFFENDER, case_info, s

NO_COMM, NO_FIX = AlertType.NO_COMMUNICATION, AlertType.NO_FIX
ROUTING = Routing()


@pytest.mark.parametrize(
    ("seen_s", "fix_s", "now_s", "expected"),
    [
        (None, None, 10_000, None),  # never heard from: not judged here
        (0, 0, 180, None),  # 3 × 60 s is the limit: not past it yet
        (0, 0, 181, Silence(OFFENDER, NO_COMM, s(0))),
        (100, 0, 181, Silence(OFFENDER, NO_FIX, s(0))),  # messages, but no fix for too long
        (None, 100, 281, Silence(OFFENDER, NO_COMM, s(100))),  # a fix counts as being heard from
        (50, None, 200, None),  # messages and never a fix: no no_fix alert
    ],
)
def test_find_silence(
    seen_s: float | None, fix_s: float | None, now_s: float, expected: Silence | None
) -> None:
    seen = {} if seen_s is None else {OFFENDER: s(seen_s)}
    fixes = {} if fix_s is None else {OFFENDER: s(fix_s)}
    assert find_silence(OFFENDER, 60, 3.0, seen, fixes, s(now_s)) == expected


@pytest.mark.parametrize(
    ("alert_type", "expected"),
    [(NO_COMM, s(100)), (NO_FIX, s(20))],
)
def test_heard_since_is_what_the_alert_missed(alert_type: AlertType, expected: datetime) -> None:
    assert heard_since(alert_type, OFFENDER, {OFFENDER: s(100)}, {OFFENDER: s(20)}) == expected


def test_silence_alert_ends_once_when_the_device_is_heard_again() -> None:
    opened = lc.on_silence(
        None, case_info(), OFFENDER, "ankle_tag", NO_COMM, s(0), ROUTING, suppressed=False, now=s(200)
    )
    assert opened is not None and opened.action == "opened" and opened.alert.episode == s(0)
    assert (
        lc.on_silence(
            opened.alert,
            case_info(),
            OFFENDER,
            "ankle_tag",
            NO_COMM,
            s(0),
            ROUTING,
            suppressed=False,
            now=s(205),
        )
        is None
    )  # still silent: no second alert
    assert lc.on_heard_again(opened.alert, s(0), s(210)) is None  # nothing newer than the silence
    ended = lc.on_heard_again(opened.alert, s(220), s(221))
    assert ended is not None and (ended.action, ended.alert.ended_at, ended.alert.is_open) == (
        "ended",
        s(220),
        True,
    )
    assert lc.on_heard_again(ended.alert, s(230), s(231)) is None
