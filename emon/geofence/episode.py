"""The episode state machine shared by every rule: confirmation, hysteresis, updates.

A rule sees a stream of :class:`Reading` (one fix judged against it) and moves between
*no episode*, *pending* (possible, not yet confirmed) and *open episode*. The machine only
decides transitions; callers turn them into events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from emon.geo import geodesic_m
from emon.geofence.events import Classification
from emon.geofence.evidence import weight
from emon.geofence.state import Episode, RuleState


class Step(StrEnum):
    OPENED = "opened"  # a new episode (live or retrospective, per Episode.live)
    ANNOUNCED = "announced"  # an episode opened from late fixes is confirmed by a live fix
    UPDATED = "updated"  # materially worse, or moved
    ENDED = "ended"


@dataclass(slots=True)  # not frozen: one is made per rule per fix, and a frozen __init__ costs twice
class Reading:
    """One fix judged against one rule (a value: nothing changes one after it is made).

    ``distance_m`` as reported; ``severity`` larger-is-worse metres; ``counts`` whether a possible
    counts towards confirmation (accurate enough); ``good`` whether the fix may also clear an
    episode or move a pre-alert ring (accurate and no implausible jump); ``clear_ok`` whether its
    whole error circle is clear of the condition by the rule's margin.
    """

    ts: datetime
    classification: Classification
    distance_m: float
    severity: float
    lat: float
    lon: float
    counts: bool
    good: bool
    clear_ok: bool
    live: bool
    llr: float = 0.0  # evidence of this fix (emon.geofence.evidence.llr), before the correlation weight
    acc_m: float = 0.0  # the fix's accuracy (for the correlation weight)
    stale_why: str | None = None  # the decision hangs on a stale counterpart (why, for people)


@dataclass(frozen=True, slots=True)
class Limits:
    """A rule's confirmation and update settings (seconds, metres), resolved when the case is compiled."""

    confirm_fixes: int
    confirm_s: float
    clear_s: float
    update_distance_m: float
    update_move_m: float
    tau_s: float = 30.0
    prove_llr: float = 6.9  # log(1/alpha)
    possible_llr: float = 2.3
    possible_after_s: float = 120.0
    independent_m: float = 25.0  # moved further than this (or the accuracy): an independent error


def _open(r: Reading, start: datetime) -> Episode:
    return Episode(start=start, live=r.live, worst=r.severity, lat=r.lat, lon=r.lon)


def _changed(ep: Episode, r: Reading, lim: Limits) -> bool:
    """Materially worse than the baseline, or moved without improving.

    Improving silently lowers the baseline (no event: the end event will come), so that coming
    back closer again is reported.
    """
    if r.severity > ep.worst + lim.update_distance_m:
        return True
    if r.severity < ep.worst - lim.update_distance_m:
        ep.worst, ep.lat, ep.lon = r.severity, r.lat, r.lon
        return False
    return geodesic_m(ep.lat, ep.lon, r.lat, r.lon) > lim.update_move_m


def step_breach(rs: RuleState, r: Reading, lim: Limits) -> list[Step]:
    """Advance the violation machine of ``rs`` by one reading (mutates ``rs``)."""
    c = r.classification
    ep = rs.breach
    if ep is None:
        # Only accumulated evidence opens a violation (docs/safety.md): every counted fix adds its
        # weighted log-likelihood ratio; the sum never goes below 0 (a repeated Wald test). The
        # episode starts at the fix that began the run of evidence (a deterministic id).
        if not r.counts or r.llr == 0.0:
            return []  # no evidence either way (e.g. undecided by a stale counterpart)
        # The first fix of a run counts in full: the fixes before it spoke for the other side, so
        # a correlated error would have had to flip sign.
        # A fix that moved further than its accuracy since the last counted one sees another
        # multipath environment: its error is taken as independent whatever the time between.
        dt = None if rs.llr_ts is None or rs.llr <= 0 else (r.ts - rs.llr_ts).total_seconds()
        lat, lon = rs.llr_lat, rs.llr_lon
        if dt is not None and lat is not None and lon is not None:
            moved = geodesic_m(lat, lon, r.lat, r.lon)
            dt = None if moved > max(r.acc_m, lim.independent_m) else dt
        total = rs.llr + weight(dt, lim.tau_s) * r.llr
        rs.llr_ts, rs.llr_lat, rs.llr_lon = r.ts, r.lat, r.lon
        if total <= 0.0:
            rs.llr, rs.pending_since, rs.pending_count = 0.0, None, 0
            return []
        if rs.pending_since is None:
            rs.pending_since, rs.pending_count = r.ts, 0
        rs.llr, rs.pending_count = total, rs.pending_count + 1
        if total < lim.prove_llr:
            return []
        rs.breach = _open(r, rs.pending_since)
        rs.pending_since, rs.pending_count, rs.clear_since = None, 0, None
        rs.llr, rs.llr_ts = 0.0, None
        return [Step.OPENED]
    steps: list[Step] = []
    if r.live and not ep.live and c is not Classification.CLEAR:
        # Late fixes opened it and a fresh fix still shows it: now it is a live warning. A fresh
        # fix that is already clear is not: the violation is over, and stays on the record only.
        ep.live = True
        steps.append(Step.ANNOUNCED)
    if c is Classification.CLEAR:
        if not r.good:
            return steps
        if not r.clear_ok:
            rs.clear_since = None  # inside the margin: not yet leaving
            return steps
        if rs.clear_since is None:
            rs.clear_since = r.ts
        if (r.ts - rs.clear_since).total_seconds() >= lim.clear_s:
            rs.breach, rs.clear_since = None, None
            steps.append(Step.ENDED)
        return steps
    rs.clear_since = None
    if Step.ANNOUNCED in steps or _changed(ep, r, lim):
        ep.worst, ep.lat, ep.lon = r.severity, r.lat, r.lon
        if Step.ANNOUNCED not in steps:
            steps.append(Step.UPDATED)
    return steps


def step_possible(rs: RuleState, r: Reading, lim: Limits) -> list[Step]:
    """Advance the visible possible state of ``rs`` (mutates ``rs``).

    Opens when the evidence leans towards a violation (``possible_llr``) without proving it, or
    when a decision has hung on a stale counterpart for ``possible_after_s``; ends when a good fix
    leaves neither. A proven breach supersedes it silently: the breach shares its episode.
    """
    if r.stale_why is None:
        rs.undecided_since = None
    elif rs.undecided_since is None:
        rs.undecided_since = r.ts
    if rs.breach is not None:
        rs.possible = None
        return []
    leaning = rs.llr >= lim.possible_llr
    hanging = (
        rs.undecided_since is not None and (r.ts - rs.undecided_since).total_seconds() >= lim.possible_after_s
    )
    if rs.possible is None:
        if leaning or hanging:
            start = rs.pending_since if leaning and rs.pending_since is not None else rs.undecided_since
            rs.possible = _open(r, start or r.ts)
            return [Step.OPENED]
        return []
    if r.live and not rs.possible.live and (leaning or hanging):
        rs.possible.live = True
        return [Step.ANNOUNCED]
    if r.good and rs.llr <= 0.0 and r.stale_why is None:
        rs.possible = None
        return [Step.ENDED]
    return []


def quiet(rs: RuleState, lim: Limits) -> bool:
    """True if ``rs`` has no episode open and no evidence for a violation: a lawful reading then
    changes nothing but the evidence's bookkeeping (:func:`step_lawful`)."""
    return (
        rs.breach is None
        and rs.possible is None
        and rs.prealert is None
        and rs.llr == 0.0
        and lim.possible_llr > 0.0
    )


def step_lawful(rs: RuleState, ts: datetime, lat: float, lon: float) -> None:
    """What :func:`step_breach`, :func:`step_possible` and :func:`step_prealert` do to a
    :func:`quiet` rule with a reading at (``ts``, ``lat``, ``lon``) that counts, whose evidence is
    negative (the lawful side), with no stale counterpart and outside any pre-alert ring: no step,
    only the bookkeeping. The common case (offenders far from their zones), so it skips building
    a :class:`Reading`; tests/geofence/test_quiet.py holds it to the machines."""
    rs.llr_ts, rs.llr_lat, rs.llr_lon = ts, lat, lon
    rs.llr, rs.pending_since, rs.pending_count = 0.0, None, 0
    rs.undecided_since = None


def step_prealert(rs: RuleState, r: Reading, near: bool, far: bool) -> list[Step]:
    """Advance the pre-alert ring of ``rs``: open when ``near``, end when ``far`` (mutates ``rs``)."""
    ep = rs.prealert
    if not r.good:
        return []
    if ep is None:
        if near:
            rs.prealert = _open(r, r.ts)
            return [Step.OPENED]
        return []
    if far:
        rs.prealert = None
        return [Step.ENDED]
    if r.live and not ep.live and near:
        ep.live = True
        return [Step.ANNOUNCED]
    return []


def close_all(rs: RuleState) -> list[tuple[str, Episode]]:
    """End every open episode of ``rs`` (the rule stopped being enforced); reset pending."""
    out: list[tuple[str, Episode]] = []
    if rs.breach is not None:
        out.append(("breach", rs.breach))
    if rs.prealert is not None:
        out.append(("prealert", rs.prealert))
    if rs.possible is not None:
        out.append(("possible", rs.possible))
    rs.breach = rs.prealert = rs.possible = None
    rs.pending_since, rs.pending_count, rs.clear_since = None, 0, None
    rs.llr, rs.llr_ts, rs.undecided_since = 0.0, None, None
    return out
