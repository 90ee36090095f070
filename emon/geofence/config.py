"""Engine settings for zone and proximity evaluation: one frozen object, documented defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """How cautious evaluation is. Distances in metres, durations in seconds, speeds in m/s.

    Confirmation: a ``possible`` classification (error circle only overlaps the forbidden
    condition) opens a violation after ``confirm_fixes`` consecutive possible fixes, or after two
    or more consecutive possible fixes spanning ``confirm_s`` seconds. A ``breach`` proven by
    the whole error circle opens at once. Zones may override ``confirm_fixes``, ``confirm_s``,
    ``clear_s`` and ``clear_margin_m``.

    Clearing: a violation ends only after fixes whose whole error circle is at least
    ``clear_margin_m`` clear of the condition, sustained for ``clear_s`` seconds (fix time).
    """

    confirm_fixes: int = 3
    confirm_s: float = 60.0
    clear_margin_m: float = 20.0
    clear_s: float = 60.0
    # A fix older than now - freshness_s is late: it is evaluated, but its events are not live.
    freshness_s: float = 300.0
    # Positions older than this (relative to the decision) make the offender-victim pair unknown,
    # and make an inclusion zone's "last known position" unusable at the start of a curfew.
    stale_s: float = 600.0
    # A speed implied between consecutive fixes (after subtracting both accuracies) above this is
    # an implausible jump: the fix can then only be ``possible``, never a proven breach.
    max_speed_mps: float = 70.0
    # Growth of the counterpart's uncertainty with the age of its last fix (proximity).
    counterpart_speed_mps: float = 15.0
    # A proximity `possible` counts towards confirmation only while the counterpart's fix is at
    # most this old; older, the doubt comes from silence, which PROXIMITY_UNKNOWN reports instead.
    confirm_max_age_s: float = 120.0
    # Fixes less accurate than this never count towards confirming, clearing or pre-alerts.
    max_acc_m: float = 500.0
    # Emit BREACH_UPDATE only when the episode got worse by this much, or the position moved.
    update_distance_m: float = 10.0
    update_move_m: float = 25.0
    # ORDER_EXPIRING reminder window before a zone's valid_until (days); the order's own term: emon/orders.
    expiry_warn_days: float = 7.0
    # Zone polygons further than this from the residence get a projection centred on themselves.
    frame_radius_m: float = 50_000.0
    # Recent fixes kept per device (for proximity on late fixes and jump checks).
    history_fixes: int = 32
    # Evidence (docs/safety.md): a breach is proven when the accumulated log-likelihood ratio of
    # "depth_m on the wrong side" versus "on the edge" reaches log(1/alpha). One fix adds at most
    # llr_cap (no single fix proves a breach); a fix dt after the previous adds min(1, dt/tau_s) of
    # its ratio (GPS errors are correlated over tens of seconds).
    depth_m: float = 20.0
    alpha: float = 1e-3
    llr_cap: float = 4.0
    tau_s: float = 30.0
    # A visible possible state opens when the evidence reaches possible_llr (10:1) without proof,
    # or when a decision has hung on a stale counterpart for possible_after_s.
    possible_llr: float = 2.3
    possible_after_s: float = 120.0
    # Locate-now requests: report every locate_every_s for locate_for_s; one per device until
    # half of that has passed.
    locate_every_s: float = 15.0
    locate_for_s: float = 300.0
    # A device asked is asked again no sooner than locate_again_s (pursuit is extended before it
    # ends). A stale counterpart of a pair further apart than the pre-alert ring needs one fresh
    # fix, not pursuit: a burst of locate_stale_for_s, asked again no sooner than stale_s / 2.
    locate_again_s: float = 150.0
    locate_stale_for_s: float = 60.0
    # Crossings: only fixes at least this accurate bound a gap; a detour around the zone is
    # possible when it fits at detour_speed_mps.
    crossing_max_acc_m: float = 100.0
    detour_speed_mps: float = 40.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0:
                raise ValueError(f"EvalConfig.{f.name} must be >= 0, got {value!r}")
        if self.confirm_fixes < 1:
            raise ValueError("EvalConfig.confirm_fixes must be >= 1")
        if not 0 < self.alpha < 1:
            raise ValueError("EvalConfig.alpha must be between 0 and 1")
        if self.history_fixes < 2:
            raise ValueError("EvalConfig.history_fixes must be >= 2")


DEFAULT_CONFIG = EvalConfig()
