"""The order lifecycle with a controlled clock: reminders at the offsets, escalation, expiry, extension."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from emon.case import Case, looks_like_bsn
from emon.errors import InvalidOrder
from emon.order import parse_model, parse_order
from emon.orders.lifecycle import (
    ROOM,
    DecisionKind,
    Expired,
    Notice,
    Remind,
    TellVictim,
    Term,
    Watch,
    gap,
    in_force,
    responsible,
    step,
)

START = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def gedragsaanwijzing(days: int, extensions: int = 0) -> dict[str, object]:
    return {
        "kind": "gedragsaanwijzing",
        "contact_ban_m": 300,
        "extensions": extensions,
        "decision": {
            "authority": "OM Amsterdam",
            "reference": "13/123456-26",
            "date": "2026-11-30T12:00:00Z",
        },
        "valid_from": START.isoformat(),
        "valid_until": (START + days * DAY).isoformat(),
    }


def term_of(days: int, version: int = 1, extensions: int = 0, start: datetime = START) -> Term:
    return Term(
        "case-a",
        version,
        start + days * DAY,
        extensions,
        prosecutor="olga",
        probation_officer="paula",
        leads=("lea",),
    )


def run(term: Term, watch: Watch | None, days: range) -> tuple[Watch | None, list[tuple[int, object]]]:
    """Tick once an hour over ``days`` (relative to START); return the final watch and (day, action) pairs."""
    out: list[tuple[int, object]] = []
    for hour in range(days.start * 24, days.stop * 24):
        now = START + timedelta(hours=hour)
        watch, actions = step(term, watch, now)
        out += [(hour // 24, a) for a in actions]
    return watch, out


def test_a_60_day_gedragsaanwijzing_is_valid_and_a_120_day_one_is_refused() -> None:
    order = parse_order(gedragsaanwijzing(60))
    assert order.kind == "gedragsaanwijzing" and order.decision is not None
    with pytest.raises(InvalidOrder) as refused:
        parse_order(gedragsaanwijzing(120))
    assert "at most 90 days per term" in refused.value.problem and "art. 509hh Sv" in refused.value.problem
    with pytest.raises(InvalidOrder, match="needs an end date"):
        parse_order({"kind": "gedragsaanwijzing", "valid_from": START.isoformat()})
    parse_order({"contact_ban_m": 100})  # kind "other": open-ended allowed (and flagged in the lists)


def test_reminders_at_the_offsets_to_the_named_officers_then_expiry_without_decision() -> None:
    watch, actions = run(term_of(60), None, range(0, 61))
    reminders = [(d, a) for d, a in actions if isinstance(a, Remind)]
    assert [(d, a.offset_days) for d, a in reminders] == [(39, 21), (46, 14), (53, 7), (57, 3), (59, 1)]
    first = reminders[0][1]
    assert first.to == ("olga", "paula") and first.escalate_to == ("lea", ROOM)
    assert first.deadline == START + 46 * DAY  # due at the next offset: unanswered by then, it escalates
    assert reminders[-1][1].deadline == START + 60 * DAY
    assert responsible(first.to, first.escalate_to, 0) == ("olga", "paula")
    assert responsible(first.to, first.escalate_to, 1) == ("olga", "paula", "lea", ROOM)
    assert actions[0] == (0, TellVictim("case-a", Notice.IMPOSED, START + 60 * DAY))
    expired = [(d, a) for d, a in actions if isinstance(a, Expired)]
    assert expired == [(60, Expired("case-a", START + 60 * DAY, None, ("olga", "paula")))]
    assert actions[-1] == (60, TellVictim("case-a", Notice.ENDED, START + 60 * DAY))
    assert watch is not None and watch.expired_at == START + 60 * DAY
    assert in_force(START, START + 60 * DAY, START + 60 * DAY - timedelta(seconds=1))
    assert not in_force(START, START + 60 * DAY, START + 60 * DAY)  # enforcement stops at the end


def test_an_extension_is_a_new_term_and_its_reminders_start_over() -> None:
    watch, _ = run(term_of(60), None, range(0, 50))
    assert watch is not None and watch.reminded == {21, 14}
    watch = Watch(watch.case_id, watch.valid_until, watch.reminded, DecisionKind.EXTENDED)
    # The extension: a new version whose term runs 90 days from the old end.
    new = term_of(90, version=2, extensions=1, start=START + 60 * DAY)
    watch2, actions = run(new, watch, range(50, 151))
    assert actions[0] == (50, TellVictim("case-a", Notice.EXTENDED, START + 150 * DAY))
    assert [(d, a.offset_days) for d, a in actions if isinstance(a, Remind)] == [
        (129, 21),
        (136, 14),
        (143, 7),
        (147, 3),
        (149, 1),
    ]
    assert watch2 is not None and watch2.valid_until == START + 150 * DAY


def test_a_decision_stops_reminders_and_let_expire_raises_no_unextended_alert() -> None:
    watch = Watch("case-a", START + 60 * DAY, frozenset({21}), DecisionKind.LET_EXPIRE)
    _, actions = run(term_of(60), watch, range(40, 61))
    assert [a for _, a in actions if isinstance(a, Remind)] == []
    assert [a.decision for _, a in actions if isinstance(a, Expired)] == [DecisionKind.LET_EXPIRE]


def test_a_late_tick_sends_only_the_most_urgent_reminder() -> None:
    _, actions = step(term_of(60), Watch("case-a", START + 60 * DAY), START + 58 * DAY)
    assert [a.offset_days for a in actions if isinstance(a, Remind)] == [3]


def test_victim_who_chose_no_notifications_is_not_told() -> None:
    term = Term("case-a", 1, START + 10 * DAY, victim_notifications="none")
    _, actions = run(term, None, range(0, 11))
    assert not [a for _, a in actions if isinstance(a, TellVictim)]


def test_a_late_extension_has_a_gap() -> None:
    watch = Watch("case-a", START + 60 * DAY, expired_at=START + 60 * DAY)
    assert gap(watch, START + 62 * DAY) == (START + 60 * DAY, START + 62 * DAY)
    assert gap(Watch("case-a", START + 60 * DAY), START + 59 * DAY) is None


@pytest.mark.parametrize(
    ("value", "bsn"),
    [
        ("111222333", True),
        ("123456782", True),
        ("1234.56.782", True),
        ("123456789", False),
        ("PV-2026-0042", False),
        ("1234567", False),
    ],
)
def test_a_person_reference_that_looks_like_a_bsn_is_refused(value: str, bsn: bool) -> None:
    assert looks_like_bsn(value) is bsn
    doc = {
        "case_id": "c",
        "risk": "high",
        "offender_device": "tag-1",
        "residence": {"lat": 52, "lon": 5},
        "order": {},
        "person_ref": value,
    }
    if bsn:
        with pytest.raises(InvalidOrder, match="never a BSN"):
            parse_model(Case, doc, where="case")
    else:
        assert parse_model(Case, doc, where="case").person_ref == value


@pytest.mark.parametrize(("case_id", "forwarded"), [("mine", True), ("theirs", False), (None, False)])
def test_order_status_on_the_stream_is_scoped_by_unit(case_id: str | None, forwarded: bool) -> None:
    from emon.api.stream import StreamFilter

    filt = StreamFilter(lambda c: c == "mine", lambda c: None, show_victim=False)
    body = {"case_id": case_id, "status": "expired", "in_force": False}
    assert (filt.apply("order", body) is not None) is forwarded


@pytest.mark.parametrize(
    ("last", "version", "extensions", "ended", "event"),
    [
        (None, 1, 0, False, "imposed"),
        ((1, 0, False), 1, 0, False, None),  # told already
        ((1, 0, False), 2, 1, False, "extended"),
        ((1, 0, False), 2, 0, False, "changed"),
        ((2, 1, False), 2, 1, True, "ended"),
        ((2, 1, True), 2, 1, True, None),  # the end told once
        ((2, 1, True), 3, 2, False, "extended"),  # a late extension after the end
    ],
)
def test_what_police_systems_are_told(
    last: tuple[int, int, bool] | None, version: int, extensions: int, ended: bool, event: str | None
) -> None:
    from emon.orders.cap import police_event

    got = police_event(last, version, extensions, ended=ended)
    assert (None if got is None else got.value) == event
