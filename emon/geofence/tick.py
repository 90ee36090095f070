"""Time passing without fixes: ``(state, rules, now) -> (state, events)``.

A tick detects what no fix will announce: the offender-victim pair going stale, a curfew
(inclusion window) starting while the offender's last known position is outside, rules that
stop being enforced while an episode is open, and orders or zones about to expire.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from emon.geofence.config import DEFAULT_CONFIG, EvalConfig
from emon.geofence.episode import close_all
from emon.geofence.events import Classification, EvalEvent, EvalEventType, Evidence
from emon.geofence.evidence import llr, sigma_m
from emon.geofence.locate import locate_requests
from emon.geofence.measure import zone_distances
from emon.geofence.proximity import stale_since, status_events
from emon.geofence.report import Context, ended_event, evidence, simple_event
from emon.geofence.rules import ORDER, CompiledCase, ZoneRule
from emon.geofence.state import CaseState, Episode, FixRecord


def tick(
    state: CaseState, rules: CompiledCase, now: datetime, config: EvalConfig = DEFAULT_CONFIG
) -> tuple[CaseState, list[EvalEvent]]:
    """Advance ``state`` to UTC ``now`` without a new fix; ``state`` is updated in place and returned."""
    if state.first_seen is None:
        state.first_seen = now
    out: list[EvalEvent] = []
    if rules.proximity is not None:
        assert rules.victim_device is not None
        # A tick reports the pair going stale, or fresh again; "known" is first set by a fix.
        unknown_at = stale_since(state, rules, now, config)
        if unknown_at is not None or state.proximity == "unknown":
            ev = tuple(
                evidence(dev, last, now)
                for dev in (rules.offender_device, rules.victim_device)
                if (last := state.track(dev).last) is not None
            )
            out += status_events(state, rules, unknown_at, now, ev)
    off = state.track(rules.offender_device).ref
    # Built only for a zone that decides something: most ticks of most cases decide nothing.
    for k, z in enumerate(rules.zones):
        rs = state.rule(z.rule)
        since = z.active_since(rules, now)
        if since is None:
            if rs.active:
                ctx = _context(rules, z, now, off)
                out += [ended_event(ctx, ep, which, now, "not_enforced") for which, ep in close_all(rs)]
            rs.active = False
            continue
        was = rs.active
        rs.active = True
        if z.kind == "inclusion" and not was and rs.breach is None and (was is False or off is not None):
            out += _curfew_start(state, rules, k, z, since, now, config, _context(rules, z, now, off))
    out += _expiry(state, rules, now, config)
    return state, out


def _context(rules: CompiledCase, z: ZoneRule, now: datetime, off: FixRecord | None) -> Context:
    """What a zone's tick events share: the offender's last position as evidence, when known."""
    ev: tuple[Evidence, ...] = () if off is None else (evidence(rules.offender_device, off, now),)
    return Context(rules.case_id, z.rule, z.kind, now, ev, {})


def quiet_changes(state: CaseState) -> list[object]:
    """What :func:`tick` may change without an event (first sight, a rule starting or stopping
    being enforced, a curfew start awaiting confirmation, pending confirmation dropped): equal
    before and after a tick that emitted nothing means there is nothing new to persist."""
    return [
        state.first_seen,
        *[(name, rs.active, rs.pending_since, rs.pending_count) for name, rs in state.rules.items()],
    ]


def _curfew_start(
    state: CaseState,
    cc: CompiledCase,
    k: int,
    z: ZoneRule,
    since: datetime,
    now: datetime,
    config: EvalConfig,
    ctx: Context,
) -> list[EvalEvent]:
    """An inclusion zone just became enforced (after its grace period): judge the offender's last
    known position.

    Stale or missing position: we cannot say the offender is inside, and silence is never read
    as compliance — but uncertainty alone is not a breach either. The curfew opens a visible
    POSSIBLE_BREACH (``why``: no fresh position) and asks for a fresh fix (LOCATE_REQUEST); fixes
    decide. A fresh last position counts as the first evidence of the curfew.
    """
    rs = state.rule(z.rule)
    off = state.track(cc.offender_device).ref
    start = since if since.year > 1 else now  # an always-on zone has no window start
    detail: dict[str, Any] = {"window_start": start.isoformat()}
    if off is None or (now - off.ts).total_seconds() > config.stale_s:
        detail["reason"] = "no_fresh_position"
        detail["why"] = "no fresh position at the start of the curfew"
        rs.possible = Episode(start=start, live=True, worst=0.0, lat=0.0, lon=0.0)
        ctx = Context(ctx.case_id, ctx.rule, ctx.kind, ctx.decided_at, ctx.evidence, detail)
        event = simple_event(
            EvalEventType.POSSIBLE_BREACH,
            ctx,
            at=now,
            episode=start,
            classification=Classification.POSSIBLE,
            distance_m=None,
            live=True,
        )
        return [event, *_locate(state, cc, now, config)]
    d = float(zone_distances([(off.lat, off.lon, cc)])[0][k])
    value = llr(-d, sigma_m(off.acc), config.depth_m, config.llr_cap)
    if value > 0:
        rs.llr, rs.llr_ts, rs.pending_since, rs.pending_count = value, off.ts, start, 1
        return _locate(state, cc, now, config)
    return []


def _locate(state: CaseState, cc: CompiledCase, now: datetime, config: EvalConfig) -> list[EvalEvent]:
    return locate_requests(state, cc, (), now, config)


def _expiry(state: CaseState, cc: CompiledCase, now: datetime, config: EvalConfig) -> list[EvalEvent]:
    """ORDER_EXPIRING once per (zone, valid_until value) within ``expiry_warn_days``. The order's own term
    has its reminder and expiry workflow with responsible officers (emon/orders/lifecycle.py)."""
    horizon = now + timedelta(days=config.expiry_warn_days)
    items = [(z.rule, z.valid_until) for z in cc.zones]
    out: list[EvalEvent] = []
    for rule, until in items:
        if until is None or not now < until <= horizon:
            continue
        key = f"{rule}@{until.isoformat()}"
        if key in state.reminders:
            continue
        state.reminders |= {key}
        days_left = round((until - now).total_seconds() / 86400, 2)
        ctx = Context(
            cc.case_id, rule, ORDER, now, (), {"valid_until": until.isoformat(), "days_left": days_left}
        )
        out.append(
            simple_event(
                EvalEventType.ORDER_EXPIRING,
                ctx,
                at=now,
                episode=until,
                classification=Classification.CLEAR,
                distance_m=None,
                live=True,
            )
        )
    return out
