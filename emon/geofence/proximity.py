"""Dynamic proximity: offender against victim, symmetric and aware of the age of positions.

Evaluated on a fix from either device against the counterpart's fix nearest in time. The
counterpart's error circle grows by ``counterpart_speed_mps`` × its age; past ``stale_s`` the
pair is *unknown* (PROXIMITY_UNKNOWN), and an open episode stays open: silence never clears.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from emon.geo import geodesic_m
from emon.geofence.classify import classify_proximity, margin_clear
from emon.geofence.config import EvalConfig
from emon.geofence.episode import Reading, quiet, step_lawful
from emon.geofence.events import Classification, EvalEvent, EvalEventType, Evidence
from emon.geofence.evidence import llr, sigma_m
from emon.geofence.report import Context, advance, evidence, moved_events, simple_event
from emon.geofence.rules import PROXIMITY, CompiledCase, ProximityRule
from emon.geofence.state import CaseState, FixRecord


def counterpart(cc: CompiledCase, device_id: str) -> str:
    assert cc.victim_device is not None
    return cc.victim_device if device_id == cc.offender_device else cc.offender_device


def _stale_at(state: CaseState, device_id: str, at: datetime, config: EvalConfig) -> datetime | None:
    """When ``device_id``'s position went stale as of ``at``, or None if it is no older than
    ``stale_s``. A device that never reported counts from ``first_seen``."""
    assert state.first_seen is not None
    last = state.track(device_id).last
    seen = last.ts if last is not None else state.first_seen
    limit = timedelta(seconds=config.stale_s)
    return seen + limit if at - seen > limit else None


def stale_since(state: CaseState, cc: CompiledCase, at: datetime, config: EvalConfig) -> datetime | None:
    """When the pair became unknown as of ``at`` (a deterministic instant), or None if both devices
    have a fix no older than ``stale_s``. A device that never reported counts from ``first_seen``."""
    assert cc.victim_device is not None
    stale = [
        t
        for dev in (cc.offender_device, cc.victim_device)
        if (t := _stale_at(state, dev, at, config)) is not None
    ]
    return min(stale) if stale else None


def measure_pair(
    rec: FixRecord, other: FixRecord, prox: ProximityRule, config: EvalConfig
) -> tuple[float, float, float, Classification]:
    """(distance m, accuracy sum m, age of ``other`` s, classification) of two fixes: the older
    one's error circle grows by ``counterpart_speed_mps`` for every second between them."""
    age = abs((rec.ts - other.ts).total_seconds())
    dist = geodesic_m(rec.lat, rec.lon, other.lat, other.lon)
    acc_sum = rec.acc + other.acc + config.counterpart_speed_mps * age
    return dist, acc_sum, age, classify_proximity(dist, acc_sum, prox.ban_m)


def pair_evidence(
    rec: FixRecord, other: FixRecord, dist: float, age: float, prox: ProximityRule, config: EvalConfig
) -> tuple[float, str | None]:
    """(log-likelihood ratio of "within the ban", why the decision hangs on a stale counterpart).

    The difference of two fixes' positions is Gaussian with sigma² = sigma_o² + sigma_v². Movement
    since the older fix is not Gaussian: it is bounded by ``counterpart_speed_mps`` × age, so it
    makes an interval of distances. Evidence of a breach counts only if it holds at the far end
    of that interval, evidence of compliance only if it holds at the near end; in between the
    decision hangs on the old fix (``why``).
    """
    sig = math.hypot(sigma_m(rec.acc), sigma_m(other.acc))
    move = config.counterpart_speed_mps * age
    lawful = dist - prox.ban_m
    prove = llr(lawful + move, sig, config.depth_m, config.llr_cap)
    if prove > 0:
        return prove, None
    clear = llr(lawful - move, sig, config.depth_m, config.llr_cap)
    if clear < 0 or move == 0:
        return clear, None
    return 0.0, f"counterpart fix {age:.0f} s old ({move:.0f} m of possible movement at {dist:.0f} m apart)"


def status_changes(state: CaseState, unknown_at: datetime | None) -> bool:
    """True if :func:`status_events` has anything to do: the pair's status is not yet the one
    ``unknown_at`` says (unknown since then, or known when None)."""
    return state.proximity != ("unknown" if unknown_at is not None else "known")


def status_events(
    state: CaseState, cc: CompiledCase, unknown_at: datetime | None, now: datetime, ev: tuple[Evidence, ...]
) -> list[EvalEvent]:
    """PROXIMITY_UNKNOWN / PROXIMITY_KNOWN on a change of the pair's status (live decisions only)."""
    if unknown_at is not None and state.proximity != "unknown":
        state.proximity, state.unknown_since = "unknown", unknown_at
        ctx = Context(cc.case_id, PROXIMITY, "proximity", now, ev, {})
        return [
            simple_event(
                EvalEventType.PROXIMITY_UNKNOWN,
                ctx,
                at=now,
                episode=unknown_at,
                classification=Classification.POSSIBLE,
                distance_m=None,
                live=True,
            )
        ]
    if unknown_at is None and state.proximity != "known":
        was, since = state.proximity, state.unknown_since
        state.proximity, state.unknown_since = "known", None
        if was == "unknown" and since is not None:
            ctx = Context(cc.case_id, PROXIMITY, "proximity", now, ev, {})
            return [
                simple_event(
                    EvalEventType.PROXIMITY_KNOWN,
                    ctx,
                    at=now,
                    episode=since,
                    classification=Classification.CLEAR,
                    distance_m=None,
                    live=True,
                )
            ]
    return []


def evaluate_proximity(
    state: CaseState,
    cc: CompiledCase,
    device_id: str,
    rec: FixRecord,
    jump: bool,
    now: datetime,
    config: EvalConfig,
) -> list[EvalEvent]:
    """Advance the proximity rule by a fix ``rec`` of either device (in that device's fix order)."""
    prox = cc.proximity
    assert prox is not None and state.first_seen is not None
    other_id = counterpart(cc, device_id)
    other = state.track(other_id).nearest(rec.ts)
    live = (now - rec.ts).total_seconds() <= config.freshness_s

    def explained() -> tuple[Evidence, ...]:  # built only for an event: most fixes make none
        return (evidence(device_id, rec, now),) + (() if other is None else (evidence(other_id, other, now),))

    out: list[EvalEvent] = []
    if live:
        # This device is fresh (``rec``); the pair is as fresh as the counterpart. A counterpart
        # that never reported leaves the status unset until the grace period from first_seen ends.
        unknown_at = _stale_at(state, other_id, rec.ts, config)
        if (unknown_at is not None or state.track(other_id).last is not None) and status_changes(
            state, unknown_at
        ):
            out += status_events(state, cc, unknown_at, now, explained())
    if other is None:
        return out
    dist, acc_sum, age, cls = measure_pair(rec, other, prox, config)
    if age > config.stale_s:
        return out
    if jump and cls is Classification.BREACH:
        cls = Classification.POSSIBLE
    counts = rec.acc <= config.max_acc_m and other.acc <= config.max_acc_m
    evidence_llr, stale_why = pair_evidence(rec, other, dist, age, prox, config)
    rs = state.rule(PROXIMITY)
    rs.stale_device = other_id if stale_why is not None and live else None
    rs.stale_far = dist > prox.prealert_enter_m
    if dist > prox.prealert_enter_m:
        stale_why = None  # far apart: ask for a fresh fix, but nothing for the room to look at
    if jump:
        evidence_llr = min(evidence_llr, 0.0)
    offender = rec if device_id == cc.offender_device else other
    rs.active = True
    good, near = counts and not jump, dist <= prox.prealert_enter_m
    if counts and evidence_llr < 0.0 and stale_why is None and not (good and near) and quiet(rs, prox.limits):
        # Most fixes (a pair far apart): nothing open, nothing to open, so the machines would only
        # do the bookkeeping (tests/geofence/test_quiet.py holds the two to each other).
        step_lawful(rs, rec.ts, offender.lat, offender.lon)
        return out
    r = Reading(
        ts=rec.ts,
        classification=cls,
        distance_m=dist,
        severity=-dist,
        lat=offender.lat,
        lon=offender.lon,
        counts=counts,
        good=good,
        clear_ok=margin_clear(PROXIMITY, dist, acc_sum, prox.clear_margin_m, prox.ban_m),
        live=live,
        llr=evidence_llr,
        acc_m=offender.acc,
        stale_why=stale_why,
    )
    ring = (near, dist > prox.prealert_exit_m)
    moved = advance(rs, r, prox.limits, ring)
    if moved is None:
        return out  # most fixes: no event, so no explanation to build
    detail: dict[str, Any] = {"acc_sum_m": round(acc_sum, 1), "counterpart_age_s": age, "ban_m": prox.ban_m}
    if stale_why is not None:
        detail["stale_device"] = other_id
    if jump:
        detail["implausible_jump"] = True
    ctx = Context(cc.case_id, PROXIMITY, PROXIMITY, now, explained(), detail)
    out += moved_events(ctx, rs, r, prox.limits, moved)
    return out
