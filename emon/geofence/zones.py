"""One offender fix against every exclusion and inclusion zone of a case."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from emon.geo import geodesic_m
from emon.geofence.classify import classify_zone, margin_clear, severity
from emon.geofence.config import EvalConfig
from emon.geofence.episode import Reading, close_all
from emon.geofence.events import Classification, EvalEvent, EvalEventType
from emon.geofence.measure import segment_enters
from emon.geofence.report import Context, ended_event, evidence, rule_events, simple_event
from emon.geofence.rules import CompiledCase
from emon.geofence.state import CaseState, FixRecord


def evaluate_zones(
    state: CaseState,
    cc: CompiledCase,
    rec: FixRecord,
    dists: NDArray[np.float64],
    prev: FixRecord | None,
    jump: bool,
    accept: bool,
    now: datetime,
    config: EvalConfig,
) -> list[EvalEvent]:
    """Advance every zone rule of ``cc`` by the offender fix ``rec`` (in fix-time order).

    ``dists`` are the fix's signed distances to the zones (metres, negative inside); ``prev`` the
    device's previous plausible fix (for crossings); ``jump`` whether ``rec`` is an implausible
    jump from it, ``accept`` whether it nevertheless becomes the new reference. Mutates ``state``; returns the events in order.
    """
    live = (now - rec.ts).total_seconds() <= config.freshness_s
    device = cc.case.offender_device
    ev = (evidence(device, rec, now),)
    counts = rec.acc <= config.max_acc_m
    good = counts and not jump
    step_m: float | None = None  # length of prev -> rec, measured once for all zones if needed
    out: list[EvalEvent] = []
    for k, z in enumerate(cc.zones):
        rs = state.rule(z.rule)
        d = float(dists[k])
        detail: dict[str, Any] = {"acc_m": rec.acc}
        if jump:
            detail["implausible_jump"] = True
        ctx = Context(cc.case_id, z.rule, z.kind, now, ev, detail)
        if z.active_since(cc.case.order, rec.ts) is None:
            rs.active = False
            for which, closed in close_all(rs):
                out.append(ended_event(ctx, closed, which, rec.ts, "not_enforced", live=live))
            if accept:
                rs.ref_d = d
            continue
        rs.active = True
        exclusion = z.kind == "exclusion"
        cls = classify_zone(z.kind, d, rec.acc)
        if jump and cls is Classification.BREACH:
            cls = Classification.POSSIBLE  # an implausible jump needs confirmation
        r = Reading(
            ts=rec.ts,
            classification=cls,
            distance_m=d,
            severity=severity(z.kind, d),
            lat=rec.lat,
            lon=rec.lon,
            counts=counts,
            good=good,
            clear_ok=margin_clear(z.kind, d, rec.acc, z.clear_margin_m),
            live=live,
        )
        ring = None
        if exclusion:
            assert z.prealert_enter_m is not None and z.prealert_exit_m is not None
            ring = (d <= z.prealert_enter_m, d > z.prealert_exit_m)
        out += rule_events(ctx, rs, r, z.limits, ring)
        if exclusion and prev is not None and rs.breach is None and good and cls is Classification.CLEAR:
            if step_m is None:
                step_m = geodesic_m(prev.lat, prev.lon, rec.lat, rec.lon)
            crossing = _crossing(cc, k, prev, rs.ref_d, rec, d, step_m, config)
            if crossing is not None:
                cdetail = {**detail, **crossing}
                cctx = Context(cc.case_id, z.rule, z.kind, now, (evidence(device, prev, now), *ev), cdetail)
                out.append(
                    simple_event(
                        EvalEventType.CROSSING_SUSPECTED,
                        cctx,
                        at=rec.ts,
                        episode=prev.ts,
                        classification=Classification.POSSIBLE,
                        distance_m=None,
                        live=live,
                    )
                )
        if accept:
            rs.ref_d = d
    return out


def _crossing(
    cc: CompiledCase,
    k: int,
    prev: FixRecord,
    prev_d: float | None,
    rec: FixRecord,
    d: float,
    length: float,
    config: EvalConfig,
) -> dict[str, Any] | None:
    """Detail of a suspected crossing between two fixes both clear of zone ``k`` and ``length``
    metres apart, else None.

    Suspected when the straight segment between them passes through the zone and covering it
    in the time between the fixes needs no more than the plausible maximum speed.
    """
    if prev_d is None or prev_d - prev.acc < 0:
        return None  # the previous fix was not clear of the zone: no gap to explain
    dt = (rec.ts - prev.ts).total_seconds()
    # A point of the segment inside the zone is >= prev_d from one end and >= d from the other.
    if dt <= 0 or length < prev_d + d or length / dt > config.max_speed_mps:
        return None
    inside = segment_enters(cc, k, (prev.lat, prev.lon), (rec.lat, rec.lon))
    if inside <= 0:
        return None
    return {"gap_s": dt, "segment_m": round(length, 1), "inside_m": round(inside, 1)}
