"""The alert layer's part (issue 9, items 1 and 3): ranking, the possible state's route, locate-now."""

from __future__ import annotations

from emon.alerts.routing import Routing
from emon.alerts.types import SEVERITY_RANK, AlertType, Recipient
from emon.case import Risk
from tests.geofence.conftest import Step, build_fixes, circle_zone, engine_for, make_case, run_live

from .conftest import Received


def test_crossing_and_retrospective_outrank_pre_alerts_and_possible_but_not_breaches() -> None:
    rank = SEVERITY_RANK
    for pre in (AlertType.EXCLUSION_PRE_ALERT, AlertType.PROXIMITY_PRE_ALERT, AlertType.PROXIMITY_UNKNOWN):
        assert rank[pre] < rank[AlertType.POSSIBLE_BREACH] < rank[AlertType.CROSSING_SUSPECTED]
    assert rank[AlertType.CROSSING_SUSPECTED] == rank[AlertType.RETROSPECTIVE_VIOLATION]
    assert rank[AlertType.RETROSPECTIVE_VIOLATION] < rank[AlertType.EXCLUSION_BREACH]


def test_possible_breach_goes_to_the_room_only_at_low_or_normal_priority() -> None:
    routing = Routing()
    for risk in Risk:
        route = routing.route(AlertType.POSSIBLE_BREACH, risk)
        assert route.recipients == frozenset({Recipient.PROBATION})
        assert route.priority.value in ("low", "normal")


def test_locate_requests_never_become_alerts() -> None:
    case = make_case(exclusion=[circle_zone("z", radius_m=100)])
    events = run_live(engine_for(case), build_fixes([Step(0, 400), Step(10, 250), Step(20, 60, 30)]))
    asks = [e for e in events if e.type.value == "locate_request"]
    assert asks and asks[0].detail["reason"] in ("pre_alert", "possible_breach")
    people = Received(case).feed(asks)
    assert people.alerts == {}
