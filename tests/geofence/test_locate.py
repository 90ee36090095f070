"""Locate-now requests: one step can ask for fresh fixes for several reasons, and each is its own decision."""

from __future__ import annotations

from emon.geofence import EvalConfig, compile_case
from emon.geofence.locate import locate_requests
from emon.geofence.rules import PROXIMITY
from emon.geofence.state import CaseState, RuleState
from tests.geofence.conftest import OFFENDER, T0, VICTIM, circle_zone, make_case


def test_two_reasons_in_one_step_are_two_decisions_with_their_own_keys() -> None:
    config = EvalConfig()
    case = make_case(exclusion=[circle_zone("school")], contact_ban_m=500.0)
    cc = compile_case(case, config)
    state = CaseState()
    # The zone's decision hangs on evidence; the pair far apart hangs on the victim's stale fix.
    state.rules["exclusion:school"] = RuleState(active=True, llr=config.possible_llr)
    state.rules[PROXIMITY] = RuleState(active=True, stale_device=VICTIM, stale_far=True)

    requests = locate_requests(state, cc, [], T0, config)

    assert [(r.detail["reason"], r.detail["devices"]) for r in requests] == [
        ("possible_breach", [OFFENDER]),
        ("stale_counterpart", [VICTIM]),
    ]
    # eval_events is unique on (case, type, rule, at, episode), and a command's origin is built from the rule
    # and the time: two requests that shared them would lose the second's record.
    keys = {(r.case_id, r.type, r.rule, r.at, r.episode) for r in requests}
    assert len(keys) == 2
