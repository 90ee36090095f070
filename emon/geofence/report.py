"""Turning episode transitions into :class:`EvalEvent` records that explain themselves."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from emon.geofence.episode import Limits, Reading, Step, step_breach, step_possible, step_prealert
from emon.geofence.events import Classification, EvalEvent, EvalEventType, Evidence
from emon.geofence.state import Episode, FixRecord, RuleState

T = EvalEventType
START = {"exclusion": T.EXCLUSION_BREACH, "inclusion": T.INCLUSION_BREACH, "proximity": T.PROXIMITY_BREACH}
_ENDED = {
    "exclusion": T.EXCLUSION_BREACH_ENDED,
    "inclusion": T.INCLUSION_BREACH_ENDED,
    "proximity": T.PROXIMITY_BREACH_ENDED,
}
_PRE = {"exclusion": T.EXCLUSION_PRE_ALERT, "proximity": T.PROXIMITY_PRE_ALERT}
_PRE_ENDED = {"exclusion": T.EXCLUSION_PRE_ALERT_ENDED, "proximity": T.PROXIMITY_PRE_ALERT_ENDED}


def evidence(device_id: str, rec: FixRecord, decided_at: datetime) -> Evidence:
    """Evidence for one fix; its age is measured at the decision time (seconds)."""
    return Evidence(device_id, rec.ts, rec.lat, rec.lon, rec.acc, (decided_at - rec.ts).total_seconds())


@dataclass(frozen=True, slots=True)
class Context:
    """What every event of one decision shares."""

    case_id: str
    rule: str
    kind: str  # exclusion / inclusion / proximity
    decided_at: datetime
    evidence: tuple[Evidence, ...]
    detail: dict[str, Any]


def episode_events(
    ctx: Context, steps: list[Step], episode: Episode, r: Reading, *, prealert: bool, possible: bool = False
) -> list[EvalEvent]:
    """Events for the ``steps`` one reading caused on ``episode`` (breach, pre-alert ring or
    possible state)."""
    out: list[EvalEvent] = []
    for step in steps:
        detail = dict(ctx.detail)
        if possible:
            etype = T.POSSIBLE_BREACH if step is not Step.ENDED else T.POSSIBLE_BREACH_ENDED
            if step is Step.ANNOUNCED:
                detail["opened_by_late_fixes"] = True
        elif step is Step.OPENED or step is Step.ANNOUNCED:
            etype = _PRE[ctx.kind] if prealert else START[ctx.kind]
            if step is Step.ANNOUNCED:
                detail["opened_by_late_fixes"] = True
            elif not r.live and not prealert:
                detail["violation"] = etype.value
                etype = T.RETROSPECTIVE_VIOLATION
        elif step is Step.UPDATED:
            etype = T.BREACH_UPDATE
        else:
            etype = _PRE_ENDED[ctx.kind] if prealert else _ENDED[ctx.kind]
        out.append(
            EvalEvent(
                type=etype,
                case_id=ctx.case_id,
                rule=ctx.rule,
                at=r.ts,
                decided_at=ctx.decided_at,
                episode=episode.start,
                classification=r.classification,
                distance_m=r.distance_m,
                evidence=ctx.evidence,
                live=r.live,
                detail=detail,
            )
        )
    return out


def ended_event(
    ctx: Context, episode: Episode, which: str, at: datetime, reason: str, *, live: bool = True
) -> EvalEvent:
    """An episode closed because its rule stopped being enforced (schedule or validity ended)."""
    ended = {"prealert": _PRE_ENDED.get(ctx.kind), "possible": T.POSSIBLE_BREACH_ENDED}.get(which)
    return simple_event(
        ended or _ENDED[ctx.kind],
        replace(ctx, detail={**ctx.detail, "reason": reason}),
        at=at,
        episode=episode.start,
        classification=Classification.CLEAR,
        distance_m=None,
        live=live,
    )


def simple_event(
    etype: EvalEventType,
    ctx: Context,
    *,
    at: datetime,
    episode: datetime,
    classification: Classification,
    distance_m: float | None,
    live: bool,
) -> EvalEvent:
    """A one-off event (unknown/known, crossing, expiry reminder, retrospective out-of-order)."""
    return EvalEvent(
        type=etype,
        case_id=ctx.case_id,
        rule=ctx.rule,
        at=at,
        decided_at=ctx.decided_at,
        episode=episode,
        classification=classification,
        distance_m=distance_m,
        evidence=ctx.evidence,
        live=live,
        detail=dict(ctx.detail),
    )


@dataclass(slots=True)
class Moved:
    """What one reading did to a rule: the steps of its violation, possible state and pre-alert ring,
    with the episode each concerns (the open one, or the one just closed)."""

    steps: list[Step]
    ep: Episode | None
    possible: list[Step]
    possible_ep: Episode | None
    pre: list[Step]
    pre_ep: Episode | None


def advance(rs: RuleState, r: Reading, lim: Limits, ring: tuple[bool, bool] | None = None) -> Moved | None:
    """Advance the violation machine of ``rs`` by the reading ``r`` and, when ``ring`` gives
    (near: within the enter distance, beyond: past the exit distance), its pre-alert ring
    (mutates ``rs``). None when no step was taken: most readings only move timestamps, and their
    callers then skip building the explanation of events there are none of."""
    before = rs.breach
    possible_before = rs.possible
    steps = step_breach(rs, r, lim)
    possible = step_possible(rs, r, lim)
    if rs.breach is not None and possible_before is not None and possible_before.start != rs.breach.start:
        possible = [Step.ENDED]  # superseded by a breach of another episode: its own alert ends
    pre: list[Step] = []
    pre_ep = rs.prealert
    if ring is not None:
        near, beyond = ring
        pre = step_prealert(rs, r, near=near, far=beyond and rs.breach is None)
        pre_ep = rs.prealert or pre_ep
    if not steps and not possible and not pre:
        return None
    return Moved(steps, rs.breach or before, possible, rs.possible or possible_before, pre, pre_ep)


def moved_events(ctx: Context, rs: RuleState, r: Reading, lim: Limits, moved: Moved) -> list[EvalEvent]:
    """The events of what :func:`advance` did, in the order people should see them: a pre-alert that
    opens comes before the breach it precedes, and a pre-alert ends only after the breach has ended
    (the ring stays up while a violation is open). Call it right after :func:`advance` (it reads
    the evidence ``rs`` holds then)."""
    pre, pre_ep = moved.pre, moved.pre_ep
    out: list[EvalEvent] = []
    if pre_ep is not None and pre and pre[0] is not Step.ENDED:
        out += episode_events(ctx, pre, pre_ep, r, prealert=True)
    if moved.possible_ep is not None and moved.possible:
        pdetail = {**ctx.detail, "evidence_llr": round(rs.llr, 2), "prove_llr": lim.prove_llr}
        if r.stale_why is not None:
            pdetail["why"] = r.stale_why
        elif "why" not in pdetail:
            pdetail["why"] = f"evidence {rs.llr:.1f} of the {lim.prove_llr:.1f} a breach needs"
        pctx = replace(ctx, detail=pdetail)
        out += episode_events(pctx, moved.possible, moved.possible_ep, r, prealert=False, possible=True)
    if moved.ep is not None:
        out += episode_events(ctx, moved.steps, moved.ep, r, prealert=False)
    if pre_ep is not None and pre and pre[0] is Step.ENDED:
        out += episode_events(ctx, pre, pre_ep, r, prealert=True)
    return out
