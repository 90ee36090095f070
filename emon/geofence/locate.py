"""Locate-now: when a decision hangs on uncertainty, ask the devices concerned for fresh fixes.

The engine only emits LOCATE_REQUEST events (detail ``{"devices", "reason", "every_s",
"until"}``); alerting turns them into device commands and never into an alert. A device asked is
asked again no sooner than ``locate_again_s`` later (rate-limited in the engine state).
Uncertainty about a breach, a pre-alert or a stale counterpart within the pre-alert ring asks for
pursuit (``locate_for_s``); a stale counterpart of a pair further apart for a short burst
(``locate_stale_for_s``), asked again no sooner than half of ``stale_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from emon.geofence.config import EvalConfig
from emon.geofence.events import Classification, EvalEvent, EvalEventType
from emon.geofence.report import Context, simple_event
from emon.geofence.rules import PROXIMITY, CompiledCase
from emon.geofence.state import CaseState

LOCATE = "locate"

_PRE = frozenset({EvalEventType.EXCLUSION_PRE_ALERT, EvalEventType.PROXIMITY_PRE_ALERT})


def _needs(
    state: CaseState, cc: CompiledCase, events: Sequence[EvalEvent], lean: float
) -> list[tuple[str, str, list[str], bool]]:
    """(reason, rule, devices, pursue) for every rule whose decision hangs on uncertainty now;
    ``pursue`` False asks for a short burst only (a stale counterpart of a pair far apart)."""
    out: list[tuple[str, str, list[str], bool]] = []
    for name, rs in state.rules.items():
        if rs.breach is not None or not rs.active:
            continue
        if rs.possible is not None or rs.llr >= lean:
            devices = _both(cc) if name == PROXIMITY else [cc.offender_device]
            out.append(("possible_breach", name, devices, True))
        elif rs.stale_device is not None:
            out.append(("stale_counterpart", name, [rs.stale_device], not rs.stale_far))
    for ev in events:
        if ev.type in _PRE and ev.live:
            out.append(
                ("pre_alert", ev.rule, _both(cc) if ev.rule == PROXIMITY else [cc.offender_device], True)
            )
    return out


def _both(cc: CompiledCase) -> list[str]:
    return [d for d in (cc.offender_device, cc.victim_device) if d is not None]


def locate_requests(
    state: CaseState, cc: CompiledCase, events: Sequence[EvalEvent], now: datetime, config: EvalConfig
) -> list[EvalEvent]:
    """LOCATE_REQUEST events for the uncertainty left after ``events`` (mutates the rate limit)."""
    out: list[EvalEvent] = []
    if state.locate_asked:
        keep = timedelta(seconds=max(config.locate_again_s, config.stale_s))
        if any(now - t >= keep for t in state.locate_asked.values()):
            state.locate_asked = {d: t for d, t in state.locate_asked.items() if now - t < keep}
    for reason, rule, devices, pursue in _needs(state, cc, events, config.possible_llr / 2):
        span = config.locate_for_s if pursue else config.locate_stale_for_s
        # Far apart, one fresh fix per half stale_s keeps the pair from going unknown.
        again = timedelta(seconds=config.locate_again_s if pursue else config.stale_s / 2)
        until = now + timedelta(seconds=span)
        ask = [d for d in devices if (t := state.locate_asked.get(d)) is None or now - t >= again]
        if not ask:
            continue
        for d in ask:
            state.locate_asked[d] = now
        detail = {
            "devices": ask,
            "reason": reason,
            "every_s": int(config.locate_every_s),
            "until": until.isoformat(),
        }
        # Each need is its own decision: the rule names the reason and the rule it is for, so two needs
        # in one step keep distinct records and command ids.
        ctx = Context(cc.case_id, f"{LOCATE}:{reason}:{rule}", LOCATE, now, (), detail)
        out.append(
            simple_event(
                EvalEventType.LOCATE_REQUEST,
                ctx,
                at=now,
                episode=now,
                classification=Classification.POSSIBLE,
                distance_m=None,
                live=True,
            )
        )
    return out
