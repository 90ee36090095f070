"""Contact ban and period findings; now is an argument."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from emon.feasibility import Code, Severity

from .helpers import CITIES, at, circle, codes, only, request, run

VICTIM = CITIES["utrecht_nl"]
FAR = at(VICTIM, 90, 5000)


@pytest.mark.parametrize(
    ("contact_m", "victim_device", "expected"),
    [
        (300, False, ["CONTACT_DISTANCE_TOO_SMALL", "CONTACT_BAN_NEEDS_VICTIM_DEVICE"]),
        (300, True, ["CONTACT_DISTANCE_TOO_SMALL"]),
        (500, False, ["CONTACT_BAN_NEEDS_VICTIM_DEVICE"]),
        (750, True, []),
    ],
)
def test_contact_ban(contact_m: float, victim_device: bool, expected: list[str]) -> None:
    report = run(request(FAR, contact_ban_m=contact_m, victim_device=victim_device))
    assert codes(report) == expected
    assert report.enforceable
    if "CONTACT_DISTANCE_TOO_SMALL" in expected:
        finding = only(report, Code.CONTACT_DISTANCE_TOO_SMALL)
        assert finding.severity is Severity.WARNING
        assert finding.figures == {"contact_ban_m": contact_m, "required_m": 500}
    if "CONTACT_BAN_NEEDS_VICTIM_DEVICE" in expected:
        assert only(report, Code.CONTACT_BAN_NEEDS_VICTIM_DEVICE).severity is Severity.INFO


NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ({"valid_from": "2026-03-01T00:00:00Z", "valid_until": "2027-03-01T00:00:00Z"}, []),
        ({"valid_from": "2026-03-01T00:00:00Z", "valid_until": None}, ["OPEN_ENDED"]),
        ({"valid_until": "2026-03-10T00:00:00+01:00"}, ["EXPIRES_SOON"]),
        ({"valid_until": "2026-03-16T09:00:00Z"}, []),  # exactly 14 days: not "soon"
        ({"valid_until": "2026-02-01T00:00:00Z"}, ["EXPIRED"]),
        ({"valid_from": "2026-06-01T00:00:00Z", "valid_until": "2026-05-01T00:00:00Z"}, ["INVALID_PERIOD"]),
    ],
)
def test_order_period(period: dict[str, Any], expected: list[str]) -> None:
    assert codes(run(request(FAR, **period), now=NOW)) == expected


def test_expires_soon_reports_days_left() -> None:
    finding = only(run(request(FAR, valid_until="2026-03-05T21:00:00Z"), now=NOW), Code.EXPIRES_SOON)
    assert finding.figures["days_left_days"] == pytest.approx(3.5)
    assert "3,5 dagen" in finding.message.nl and "3.5 days" in finding.message.en


def test_zone_with_end_before_start() -> None:
    zone = circle("z", VICTIM, 500, valid_from="2026-05-01T00:00:00Z", valid_until="2026-04-01T00:00:00Z")
    report = run(request(FAR, [zone]), now=NOW)
    finding = only(report, Code.INVALID_PERIOD)
    assert finding.zone == "z" and finding.figures["duration_days"] == pytest.approx(-30)
    assert not report.enforceable


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        run(request(FAR), now=datetime(2026, 3, 2))


def test_messages_in_both_languages() -> None:
    report = run(request(at(VICTIM, 0, 800), [circle("Woning", VICTIM, 500)], contact_ban_m=2500))
    too_close = only(report, Code.RESIDENCE_TOO_CLOSE)
    assert "hemelsbreed 300 m" in too_close.message.nl and "1.000 m nodig" in too_close.message.nl
    assert "300 m in a straight line" in too_close.message.en and "1,000 m" in too_close.message.en
    device = only(report, Code.CONTACT_BAN_NEEDS_VICTIM_DEVICE)
    assert "2.500 m" in device.message.nl and "slachtoffer" in device.message.nl
    assert "2,500 m" in device.message.en and "victim" in device.message.en


def test_findings_are_ordered_by_severity() -> None:
    report = run(request(at(VICTIM, 0, 800), [circle("W", VICTIM, 500)], contact_ban_m=100, valid_until=None))
    ranks = {"blocking": 0, "warning": 1, "info": 2}
    assert [ranks[f.severity.value] for f in report.findings] == sorted(
        ranks[f.severity.value] for f in report.findings
    )
