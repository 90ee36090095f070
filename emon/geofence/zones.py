"""One offender fix against every exclusion and inclusion zone of a case."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from emon.geo import geodesic_m
from emon.geofence.classify import classify_zone, margin_clear, severity
from emon.geofence.config import EvalConfig
from emon.geofence.episode import Reading, close_all, quiet, step_lawful
from emon.geofence.events import Classification, EvalEvent, EvalEventType, Evidence
from emon.geofence.evidence import llr, p_violating, sigma_m
from emon.geofence.measure import segment_through
from emon.geofence.report import Context, advance, ended_event, evidence, moved_events, simple_event
from emon.geofence.rules import CompiledCase, ZoneRule
from emon.geofence.state import CaseState, FixRecord, RuleState


class Lengths:
    """Geodesic metres from earlier fixes to one fix ``rec``, each measured once: the jump check and
    every exclusion zone's crossing check mostly compare ``rec`` with the same earlier fix."""

    __slots__ = ("_last", "_memo", "rec")

    def __init__(self, rec: FixRecord) -> None:
        self.rec = rec
        self._memo: dict[tuple[float, float], float] = {}
        # The last record asked about and its length: mostly the same object every time (the
        # device's previous fix is its reference and every zone's crossing reference).
        self._last: tuple[FixRecord, float] | None = None

    def of(self, prev: FixRecord) -> float:
        """Metres from ``prev`` to ``rec`` (:func:`emon.geo.geodesic_m` in that direction)."""
        last = self._last
        if last is not None and last[0] is prev:
            return last[1]
        key = (prev.lat, prev.lon)
        length = self._memo.get(key)
        if length is None:
            length = self._memo[key] = geodesic_m(prev.lat, prev.lon, self.rec.lat, self.rec.lon)
        self._last = (prev, length)
        return length


def evaluate_zones(
    state: CaseState,
    cc: CompiledCase,
    rec: FixRecord,
    dists: NDArray[np.float64] | Sequence[float],
    jump: bool,
    accept: bool,
    now: datetime,
    config: EvalConfig,
    lengths: Lengths | None = None,
) -> list[EvalEvent]:
    """Advance every zone rule of ``cc`` by the offender fix ``rec`` (in fix-time order).

    ``dists`` are the fix's signed distances to the zones (metres, negative inside); ``jump``
    whether ``rec`` is an implausible jump from the device's previous plausible fix, ``accept``
    whether it nevertheless becomes the new reference. Each fix adds its evidence to every rule
    (docs/safety.md); exclusion zones also get the crossing check against the rule's last accurate
    fix clear of the zone. Mutates ``state``; returns the events in order.

    Most fixes change nothing but timestamps and evidence: a rule with nothing open gets a lawful
    fix through :func:`step_lawful`, and the explanation (detail, context, evidence) of a zone is
    built only when the fix makes an event there.
    """
    live = (now - rec.ts).total_seconds() <= config.freshness_s
    acc = rec.acc
    fix = _Fix(cc, rec, jump, live, config, now)
    counts, good, sigma = fix.counts, fix.good, fix.sigma
    depth_m, cap = config.depth_m, config.llr_cap
    lengths = lengths or Lengths(rec)
    out: list[EvalEvent] = []
    values = dists.tolist() if isinstance(dists, np.ndarray) else dists
    rules = state.rules
    for k, (z, d) in enumerate(zip(cc.zones, values, strict=True)):
        rs = rules.get(z.rule) or state.rule(z.rule)
        if not z.always and z.active_since(cc, rec.ts) is None:
            rs.active = False
            closed = close_all(rs)
            if closed:
                detail: dict[str, Any] = {"acc_m": acc}
                if jump:
                    detail["implausible_jump"] = True
                ctx = Context(cc.case_id, z.rule, z.kind, now, fix.evidence(), detail)
                for which, episode in closed:
                    out.append(ended_event(ctx, episode, which, rec.ts, "not_enforced", live=live))
            if accept:
                rs.ref_d = d
            continue
        rs.active = True
        exclusion = z.kind == "exclusion"
        lawful_m = d if exclusion else -d  # signed distance, positive on the lawful side
        evidence_llr = llr(lawful_m, sigma, depth_m, cap)
        if jump:
            evidence_llr = min(evidence_llr, 0.0)  # an implausible jump never adds to a breach
        near = exclusion and z.prealert_enter_m is not None and d <= z.prealert_enter_m
        if counts and evidence_llr < 0.0 and not (good and near) and quiet(rs, z.limits):
            step_lawful(rs, rec.ts, rec.lat, rec.lon)  # nothing open, nothing to open: no event
        else:
            out += fix.judge(z, rs, d, evidence_llr)
        if exclusion:
            crossing = crossing_check(cc, k, rs, rec, d, good, config, lengths)
            if crossing is not None:
                ref, found = crossing
                out.append(crossing_event(cc, k, ref, rec, now, {**fix.detail(z.kind, d), **found}, live))
        if accept:
            rs.ref_d = d
    return out


class _Fix:
    """One offender fix being judged against the zones of its case; its evidence is built once,
    when a zone first needs it."""

    __slots__ = ("_ev", "cc", "counts", "good", "jump", "live", "now", "rec", "sigma")

    def __init__(
        self, cc: CompiledCase, rec: FixRecord, jump: bool, live: bool, config: EvalConfig, now: datetime
    ) -> None:
        self.cc, self.rec, self.jump, self.live, self.now = cc, rec, jump, live, now
        self.counts = rec.acc <= config.max_acc_m  # counts towards confirming
        self.good = self.counts and not jump  # may also clear or move a pre-alert ring
        self.sigma = sigma_m(rec.acc)
        self._ev: tuple[Evidence, ...] | None = None

    def evidence(self) -> tuple[Evidence, ...]:
        if self._ev is None:
            self._ev = (evidence(self.cc.offender_device, self.rec, self.now),)
        return self._ev

    def detail(self, kind: str, d: float) -> dict[str, Any]:
        """The explanation of this fix against a zone of ``kind`` at signed distance ``d`` (metres)."""
        rec = self.rec
        detail: dict[str, Any] = {"acc_m": rec.acc}
        if self.jump:
            detail["implausible_jump"] = True
        if rec.acc > abs(d):
            detail["why"] = f"accuracy {rec.acc:.0f} m > margin {abs(d):.0f} m"
        lawful_m = d if kind == "exclusion" else -d
        detail["p_violating"] = round(p_violating(lawful_m, self.sigma), 4)
        return detail

    def judge(self, z: ZoneRule, rs: RuleState, d: float, evidence_llr: float) -> list[EvalEvent]:
        """Run the rule's state machines on this fix (signed distance ``d``); the events they make."""
        rec = self.rec
        cls = classify_zone(z.kind, d, rec.acc)
        if self.jump and cls is Classification.BREACH:
            cls = Classification.POSSIBLE  # an implausible jump needs confirmation
        r = Reading(
            ts=rec.ts,
            classification=cls,
            distance_m=d,
            severity=severity(z.kind, d),
            lat=rec.lat,
            lon=rec.lon,
            counts=self.counts,
            good=self.good,
            clear_ok=margin_clear(z.kind, d, rec.acc, z.clear_margin_m),
            live=self.live,
            llr=evidence_llr,
            acc_m=rec.acc,
        )
        ring = None
        if z.kind == "exclusion":
            assert z.prealert_enter_m is not None and z.prealert_exit_m is not None
            ring = (d <= z.prealert_enter_m, d > z.prealert_exit_m)
        moved = advance(rs, r, z.limits, ring)
        if moved is None:
            return []
        ctx = Context(self.cc.case_id, z.rule, z.kind, self.now, self.evidence(), self.detail(z.kind, d))
        return moved_events(ctx, rs, r, z.limits, moved)


def crossing_check(
    cc: CompiledCase,
    k: int,
    rs: RuleState,
    rec: FixRecord,
    d: float,
    good: bool,
    config: EvalConfig,
    lengths: Lengths | None = None,
) -> tuple[FixRecord, dict[str, Any]] | None:
    """(the last accurate fix clear of exclusion zone ``k``, the crossing's detail) when it and
    ``rec`` bound a straight path through the zone; moves that reference (mutates ``rs``).

    Only fixes at least ``crossing_max_acc_m`` accurate bound a gap: a fix with a huge (honest)
    accuracy in between neither hides the crossing nor becomes its reference.
    """
    if rs.breach is not None:
        rs.cross_ref = rs.cross_ref_d = None  # a violation is open: evidence, not a gap, explains it
        return None
    if not good or rec.acc > config.crossing_max_acc_m or d - rec.acc < 0:
        # Uninformative, or not clear of the zone: the gap stays open from the last clear fix,
        # so neither a huge honest accuracy nor a brief unproven entry hides the crossing.
        return None
    ref, ref_d = rs.cross_ref, rs.cross_ref_d
    rs.cross_ref, rs.cross_ref_d = rec, d
    if ref is None or ref_d is None or ref.ts >= rec.ts:
        return None
    crossing = _crossing(cc, k, ref, ref_d, rec, d, config, lengths)
    return None if crossing is None else (ref, crossing)


def crossing_event(
    cc: CompiledCase,
    k: int,
    ref: FixRecord,
    rec: FixRecord,
    now: datetime,
    detail: dict[str, Any],
    live: bool,
) -> EvalEvent:
    """CROSSING_SUSPECTED between ``ref`` and ``rec`` (``detail``: the fix's and the crossing's)."""
    device = cc.offender_device
    cdetail = {k_: v for k_, v in detail.items() if k_ != "why"}
    ev = (evidence(device, ref, now), evidence(device, rec, now))
    cctx = Context(cc.case_id, cc.zones[k].rule, cc.zones[k].kind, now, ev, cdetail)
    return simple_event(
        EvalEventType.CROSSING_SUSPECTED,
        cctx,
        at=rec.ts,
        episode=ref.ts,
        classification=Classification.BREACH if detail["proven"] else Classification.POSSIBLE,
        distance_m=None,
        live=live,
    )


def _crossing(
    cc: CompiledCase,
    k: int,
    prev: FixRecord,
    prev_d: float,
    rec: FixRecord,
    d: float,
    config: EvalConfig,
    lengths: Lengths | None = None,
) -> dict[str, Any] | None:
    """Detail of a suspected crossing between two fixes both clear of zone ``k``, else None
    (``lengths``: measured distances to ``rec``, shared by the checks of one fix).

    Suspected when the straight segment between them passes through the zone and covering it
    in the time between the fixes needs no more than the plausible maximum speed. Proven when
    even the shortest way around the zone (for a convex zone) does not fit at
    ``detour_speed_mps`` in that time.
    """
    if prev_d - prev.acc < 0:
        return None  # the previous fix was not clear of the zone: no gap to explain
    dt = (rec.ts - prev.ts).total_seconds()
    if lengths is None or lengths.rec is not rec:
        lengths = Lengths(rec)
    length = lengths.of(prev)
    # A point of the segment inside the zone is >= prev_d from one end and >= d from the other.
    if dt <= 0 or length < prev_d + d or length / dt > config.max_speed_mps:
        return None
    inside, detour, convex = segment_through(cc, k, (prev.lat, prev.lon), (rec.lat, rec.lon))
    if inside <= 0:
        return None
    proven = convex and detour > config.detour_speed_mps * dt
    return {
        "gap_s": dt,
        "segment_m": round(length, 1),
        "inside_m": round(inside, 1),
        "detour_m": round(detour, 1),
        "detour_speed_needed_mps": round(detour / dt, 1),
        "straight_speed_mps": round(length / dt, 1),
        "proven": proven,
        "path": [[prev.lon, prev.lat], [rec.lon, rec.lat]],
    }
