"""Evaluating one fix for one case: ``(state, rules, fix, now) -> (state, events)``.

Fixes of a device must arrive in fix-time order for live evaluation. A fix older than the
device's last evaluated fix is judged on its own for retrospective violations only and leaves
the live state (episodes, confirmation counters, last fix) untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from emon.fix import Fix
from emon.geofence.classify import implausible_jump
from emon.geofence.config import DEFAULT_CONFIG, EvalConfig
from emon.geofence.events import Classification, EvalEvent, EvalEventType
from emon.geofence.evidence import llr, sigma_m, weight
from emon.geofence.locate import locate_requests
from emon.geofence.measure import zone_distances
from emon.geofence.proximity import counterpart, evaluate_proximity, measure_pair, pair_evidence
from emon.geofence.report import START, Context, evidence, simple_event
from emon.geofence.rules import PROXIMITY, CompiledCase
from emon.geofence.state import CaseState, FixRecord, RuleState
from emon.geofence.zones import Lengths, _crossing, crossing_event, evaluate_zones


def evaluate_fix(
    state: CaseState,
    rules: CompiledCase,
    fix: Fix,
    now: datetime,
    config: EvalConfig = DEFAULT_CONFIG,
    zone_d: NDArray[np.float64] | Sequence[float] | None = None,
) -> tuple[CaseState, list[EvalEvent]]:
    """Judge ``fix`` against every rule of ``rules`` at decision time ``now`` (UTC).

    ``zone_d`` may carry the fix's precomputed signed zone distances (see
    :func:`emon.geofence.measure.zone_distances`, or its lists). ``state`` is updated in place and
    returned.
    Events of fixes older than ``now - freshness_s`` have ``live=False``; a violation they open
    is a RETROSPECTIVE_VIOLATION.
    """
    dev = fix.device_id
    offender = dev == rules.offender_device
    if not offender and (dev != rules.victim_device or rules.proximity is None):
        return state, []
    if state.first_seen is None:
        state.first_seen = fix.ts
    rec = FixRecord.of(fix)
    track = state.track(dev)
    if offender and rules.zones and zone_d is None:
        zone_d = zone_distances([(rec.lat, rec.lon, rules)])[0]
    if track.last is not None and rec.ts <= track.last.ts:
        if track.holds(rec):
            return state, []  # a duplicate delivery
        return state, _out_of_order(state, rules, dev, rec, zone_d, now, config)
    # An implausible jump from the last plausible fix can only be `possible`. If it agrees with
    # the previous (also rejected) fix, the device really moved: it becomes the new reference.
    lengths = Lengths(rec)  # the last plausible fix is mostly also the zones' crossing reference
    jump = track.ref is not None and implausible_jump(
        track.ref, rec, config.max_speed_mps, lengths.of(track.ref)
    )
    accept = not jump or (
        track.last is not None
        and track.last != track.ref
        and not implausible_jump(track.last, rec, config.max_speed_mps, lengths.of(track.last))
    )
    events: list[EvalEvent] = []
    if offender and zone_d is not None:
        events += evaluate_zones(state, rules, rec, zone_d, jump, accept, now, config, lengths)
    if rules.proximity is not None:
        events += evaluate_proximity(state, rules, dev, rec, jump, now, config)
    if (now - rec.ts).total_seconds() <= config.freshness_s:
        events += locate_requests(state, rules, events, now, config)
    track.last = rec
    if accept:
        track.ref = rec
    track.remember(rec, config.history_fixes)
    return state, events


def _out_of_order(
    state: CaseState,
    cc: CompiledCase,
    dev: str,
    rec: FixRecord,
    zone_d: NDArray[np.float64] | Sequence[float] | None,
    now: datetime,
    config: EvalConfig,
) -> list[EvalEvent]:
    """Retrospective violations shown by an out-of-order (late) fix: never live.

    Late fixes accumulate evidence of their own (in their fix-time order) and get the crossing
    check against the remembered fixes on either side of them.
    """
    track = state.track(dev)
    before = track.before(rec.ts)
    jump = before is not None and implausible_jump(before, rec, config.max_speed_mps)
    track.remember(rec, config.history_fixes)
    if jump:
        return []  # alone and implausible: cannot prove anything
    after = track.after(rec.ts)
    out: list[EvalEvent] = []
    ev = (evidence(dev, rec, now),)
    if dev == cc.offender_device and zone_d is not None:
        for k, z in enumerate(cc.zones):
            if z.active_since(cc, rec.ts) is None:
                continue
            d = float(zone_d[k])
            lawful = d if z.kind == "exclusion" else -d
            value = llr(lawful, sigma_m(rec.acc), config.depth_m, config.llr_cap)
            rs = state.rule(z.rule)
            if _retro_proven(rs, rec, value, z.limits.prove_llr, config) and _new_retro(
                state, z.rule, rec.ts, config
            ):
                ctx = Context(cc.case_id, z.rule, z.kind, now, ev, _retro_detail(z.kind, rec))
                out.append(_retro_event(ctx, rec.ts, d))
            if z.kind == "exclusion":
                out += _late_crossings(cc, k, rec, d, (before, after), now, config)
    prox = cc.proximity
    if prox is not None:
        other_id = counterpart(cc, dev)
        other = state.track(other_id).nearest(rec.ts)
        if other is not None:
            dist, _, age, _ = measure_pair(rec, other, prox, config)
            value, _ = pair_evidence(rec, other, dist, age, prox, config)
            rs = state.rule(PROXIMITY)
            if (
                age <= config.stale_s
                and _retro_proven(rs, rec, value, prox.limits.prove_llr, config)
                and _new_retro(state, PROXIMITY, rec.ts, config)
            ):
                pev = (*ev, evidence(other_id, other, now))
                ctx = Context(cc.case_id, PROXIMITY, PROXIMITY, now, pev, _retro_detail(PROXIMITY, rec))
                out.append(_retro_event(ctx, rec.ts, dist))
    return out


def _retro_proven(rs: RuleState, rec: FixRecord, value: float, prove: float, config: EvalConfig) -> bool:
    """Accumulate a late fix's evidence (same test as live, over late fixes in fix-time order).

    A late fix still showing the violation just proven (within ``freshness_s`` of it) extends
    that retrospective episode instead of starting a new test."""
    window = timedelta(seconds=config.freshness_s)
    start, last = rs.retro_start, rs.retro_last
    if value > 0 and start is not None and last is not None and start <= rec.ts <= last + window:
        rs.retro_last = max(last, rec.ts)
        return False
    dt = None if rs.retro_ts is None else (rec.ts - rs.retro_ts).total_seconds()
    if dt is not None and not 0 <= dt <= config.stale_s:
        rs.retro_llr, dt = 0.0, None  # another stretch of late fixes
    rs.retro_llr = max(0.0, rs.retro_llr + weight(dt, config.tau_s) * value)
    rs.retro_ts = rec.ts
    if rs.retro_llr >= prove:
        rs.retro_llr = 0.0
        return True
    return False


def _late_crossings(
    cc: CompiledCase,
    k: int,
    rec: FixRecord,
    d: float,
    around: tuple[FixRecord | None, FixRecord | None],
    now: datetime,
    config: EvalConfig,
) -> list[EvalEvent]:
    """The crossing check for a late fix against its remembered neighbours in time."""
    before, after = around
    out: list[EvalEvent] = []
    for a, b in ((before, rec), (rec, after)):
        if a is None or b is None or max(a.acc, b.acc) > config.crossing_max_acc_m:
            continue
        da, db = (d if x is rec else float(zone_distances([(x.lat, x.lon, cc)])[0][k]) for x in (a, b))
        if db - b.acc < 0:
            continue
        crossing = _crossing(cc, k, a, da, b, db, config)
        if crossing is None:
            continue
        out.append(crossing_event(cc, k, a, b, now, {"acc_m": rec.acc, "late": True, **crossing}, live=False))
    return out


def _new_retro(state: CaseState, rule: str, ts: datetime, config: EvalConfig) -> bool:
    """True if ``ts`` starts a new retrospective episode of ``rule`` (not already covered)."""
    rs = state.rule(rule)
    if rs.breach is not None and rs.breach.start <= ts:
        return False  # inside the open live episode
    start, last = rs.retro_start, rs.retro_last
    window = timedelta(seconds=config.freshness_s)
    if start is not None and last is not None and start <= ts <= last + window:
        rs.retro_last = max(last, ts)
        return False
    rs.retro_start = rs.retro_last = ts
    return True


def _retro_detail(kind: str, rec: FixRecord) -> dict[str, Any]:
    return {"violation": START[kind].value, "out_of_order": True, "acc_m": rec.acc}


def _retro_event(ctx: Context, ts: datetime, distance_m: float) -> EvalEvent:
    return simple_event(
        EvalEventType.RETROSPECTIVE_VIOLATION,
        ctx,
        at=ts,
        episode=ts,
        classification=Classification.BREACH,
        distance_m=distance_m,
        live=False,
    )
