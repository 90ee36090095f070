"""The person-days of the safety benchmark: compliant families and violation sets (not a test).

Each builder returns a :class:`PersonDay`: the case (order), the fixes each device reports with
their arrival times, and the ground truth computed from the *true* tracks: the person at least
20 m inside an exclusion zone (or outside an active curfew zone) for at least 60 s, the true
offender–victim distance below the ban for at least 60 s, or a true path through a zone between
two fixes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from benchmarks.safety_tracks import (
    F64,
    Frame,
    Observed,
    Track,
    drop,
    fix_times,
    late_upload,
    observe,
    runs_at_least,
)
from emon.case import Case
from emon.fix import Fix

AMS = ZoneInfo("Europe/Amsterdam")
FRAME = Frame(52.37, 4.90)
OFFENDER, VICTIM = "tag", "phone"
TRUTH_DT = 5.0
DEPTH_M = 20.0  # a violation is at least this far on the wrong side of the line
MIN_S = 60.0  # ... for at least this long
BAN_M = 500.0
CURFEW = {"timezone": "Europe/Amsterdam", "windows": [{"start": "22:00", "end": "07:00"}]}
DST_NIGHTS = (date(2026, 3, 28), date(2026, 10, 24))  # the nights the clocks change (Sat → Sun)


@dataclass(frozen=True, slots=True)
class Violation:
    kind: str  # exclusion / inclusion / proximity
    start: datetime
    end: datetime
    how: str  # dwell / crossing


@dataclass(frozen=True, slots=True)
class PersonDay:
    family: str
    case: Case
    fixes: list[tuple[datetime, Fix]]  # (arrival, fix)
    truth: list[Violation]
    t0: datetime
    end: datetime
    # For devices that obey locate-now: their true tracks, and when they cannot answer (offline).
    tracks: dict[str, Track] = field(default_factory=dict)
    mute: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


def _exclusion_day(
    family: str,
    case_id: str,
    radius: float,
    tr: Track,
    obs: Observed,
    t0: datetime,
    length: timedelta,
    *,
    mute: list[tuple[float, float]] | None = None,
) -> PersonDay:
    """An offender's day around one circular exclusion zone at the origin; the truth counts only what
    fixes of ≤ 100 m accuracy could have shown."""
    return PersonDay(
        family,
        _case(case_id, {"exclusion_zones": [_circle("zone", radius)]}),
        _fixes(OFFENDER, obs, t0),
        exclusion_truth(tr, obs.t[obs.acc <= 100], radius, t0),
        t0,
        t0 + length,
        {OFFENDER: tr},
        {OFFENDER: mute} if mute else {},
    )


def _case(case_id: str, order: dict[str, Any], *, victim: bool = False) -> Case:
    return Case.model_validate(
        {
            "case_id": case_id,
            "risk": "high",
            "offender_device": OFFENDER,
            "victim_device": VICTIM if victim else None,
            "residence": {"lat": FRAME.lat0, "lon": FRAME.lon0},
            "order": order,
        }
    )


def _fixes(device: str, obs: Observed, t0: datetime) -> list[tuple[datetime, Fix]]:
    lat, lon = FRAME.latlon(obs.x, obs.y)
    out = []
    for i in range(len(obs.t)):
        ts = t0 + timedelta(seconds=float(obs.t[i]))
        fix = Fix(device, ts, float(lat[i]), float(lon[i]), float(obs.acc[i]))
        out.append((t0 + timedelta(seconds=float(obs.arrival[i])), fix))
    return out


def _at(r: float, a: float) -> tuple[float, float]:
    return r * math.sin(a), r * math.cos(a)


def _circle(name: str, r: float, **kw: Any) -> dict[str, Any]:
    return {"name": name, "circle": {"lat": FRAME.lat0, "lon": FRAME.lon0, "radius_m": r}, **kw}


def _grid(track: Track) -> F64:
    return np.arange(0.0, track.now_s, TRUTH_DT)


def exclusion_truth(track: Track, fix_t: F64, radius: float, t0: datetime) -> list[Violation]:
    """Dwell ≥ 20 m inside for ≥ 60 s, or any ≥ 20 m-deep passage with no fix taken inside
    (``fix_t``: times of the fixes that could show it, accuracy ≤ 100 m)."""
    g = _grid(track)
    x, y = track.at(g)
    deep = np.hypot(x, y) < radius - DEPTH_M
    out = []
    for i, j in runs_at_least(deep, TRUTH_DT, 0.0):
        a, b = g[i], g[j - 1] + TRUTH_DT
        dwell = b - a >= MIN_S
        unseen = not np.any((fix_t >= a) & (fix_t <= b))
        if dwell or unseen:
            out.append(Violation("exclusion", _dt(t0, a), _dt(t0, b), "dwell" if dwell else "crossing"))
    return out


def _dt(t0: datetime, s: float) -> datetime:
    return t0 + timedelta(seconds=float(s))


def _local(d: date, hh: float) -> datetime:
    """Local wall-clock ``hh`` hours on day ``d`` (may exceed 24) in Amsterdam, as UTC."""
    base = datetime.combine(d, time(0), tzinfo=AMS)
    day, rest = divmod(hh, 24.0)
    local = datetime.combine(d + timedelta(days=int(day)), time(0), tzinfo=AMS) if day else base
    h = int(rest)
    m = (rest - h) * 60
    return (local.replace(hour=h, minute=int(m), second=int((m % 1) * 60))).astimezone(UTC)


# -- compliant families ------------------------------------------------------------------------


def _commute_day(rng: np.random.Generator, radius: float, *, walk: bool) -> tuple[Track, float] | None:
    """A day of daily life around an exclusion zone of ``radius`` at the origin (None: resample)."""
    th = float(rng.uniform(0, 2 * math.pi))
    home = _at(float(rng.uniform(2500, 5000)), th)
    work = _at(float(rng.uniform(2000, 5000)), th + math.pi + float(rng.uniform(-0.5, 0.5)))
    side = 1 if rng.random() < 0.5 else -1
    past = _at(radius + float(rng.uniform(150, 300)), th + side * math.pi / 2)
    shop = _at(float(rng.uniform(2500, 5000)), th + float(rng.uniform(-0.6, 0.6)))
    tr = Track(datetime(2026, 1, 1, tzinfo=UTC)).start(*home)
    tr.until(7.5 * 3600 + float(rng.uniform(-1800, 1800)), "indoor")
    tr.go(past, float(rng.uniform(6, 12)), "urban").go(work, float(rng.uniform(6, 12)), "urban")
    tr.until(17 * 3600 + float(rng.uniform(-1800, 1800)), "indoor")
    tr.go(past, float(rng.uniform(6, 12)), "urban").go(shop, float(rng.uniform(6, 12)), "urban")
    tr.stay(float(rng.uniform(1800, 3600)), "indoor").go(home, float(rng.uniform(6, 12)), "urban")
    if walk:
        # One hour a day walking 60–120 m outside the zone, along its edge.
        r = radius + float(rng.uniform(60, 120))
        a0 = th
        tr.stay(float(rng.uniform(600, 1800)), "indoor").go(_at(r, a0), 1.4, "urban")
        env = "open" if rng.random() < 0.5 else "urban"
        step = 5.0 / 180 * math.pi
        n = int(1800 * 1.4 / (r * step))
        for k in [*range(1, n + 1), *range(n - 1, -1, -1)]:  # half an hour along the edge, and back
            tr.go(_at(r, a0 + side * k * step), 1.4, env)
        tr.go(home, 1.4, "urban")
    tr.until(86400.0, "indoor")
    g = _grid(tr)
    x, y = tr.at(g)
    clearance = float(np.min(np.hypot(x, y))) - radius
    return (tr, clearance) if clearance >= (50 if walk else 140) else None


def exclusion_day(i: int, rng: np.random.Generator, *, walk: bool = False) -> PersonDay:
    radius = float(rng.uniform(200, 500))
    day = None
    while day is None:
        day = _commute_day(rng, radius, walk=walk)
    tr, _ = day
    t0 = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(days=i)
    tr.t0 = t0
    obs = observe(tr, fix_times(tr, rng), rng)
    return _exclusion_day(
        "exclusion_edge_walk" if walk else "exclusion_daily",
        f"ex{'w' if walk else ''}-{i}",
        radius,
        tr,
        obs,
        t0,
        timedelta(days=1, hours=1),
    )


def proximity_truth(off: Track, vic: Track, t0: datetime) -> list[Violation]:
    end = min(off.now_s, vic.now_s)
    g = np.arange(0.0, end, TRUTH_DT)
    ox, oy = off.at(g)
    vx, vy = vic.at(g)
    close = np.hypot(ox - vx, oy - vy) < BAN_M
    return [
        Violation("proximity", _dt(t0, g[i]), _dt(t0, g[j - 1] + TRUTH_DT), "dwell")
        for i, j in runs_at_least(close, TRUTH_DT, MIN_S)
    ]


def _victim_obs(vic: Track, rng: np.random.Generator) -> Observed:
    """A victim's phone: the same noise, and more silence (gaps that are lost or uploaded late)."""
    obs = observe(vic, fix_times(vic, rng), rng, gaps_per_day=3.0)
    keep = np.ones(len(obs.t), dtype=bool)
    for _ in range(rng.poisson(2.0)):
        g0 = float(rng.uniform(0, vic.now_s))
        keep &= ~((obs.t >= g0) & (obs.t < g0 + float(rng.uniform(600, 3600))))
    return drop(obs, keep)


def contact_ban_day(i: int, rng: np.random.Generator) -> PersonDay:
    """Offender and victim living 2 km apart; some days both in the centre 700–1,000 m apart."""
    t0 = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(days=i)
    oh = (-1000.0, float(rng.uniform(-200, 200)))
    vh = (1000.0, float(rng.uniform(-200, 200)))
    off = Track(t0).start(*oh).until(float(rng.uniform(8, 11)) * 3600, "indoor")
    vic = Track(t0).start(*vh).until(float(rng.uniform(8, 11)) * 3600, "indoor")
    gap = float(rng.uniform(700, 1000))
    yc = float(rng.uniform(-150, 150))
    off.go((-gap / 2, yc), float(rng.uniform(1.2, 8)), "urban").stay(float(rng.uniform(3600, 10800)), "urban")
    vic.go((gap / 2, yc + float(rng.uniform(-50, 50))), float(rng.uniform(1.2, 8)), "urban")
    vic.stay(float(rng.uniform(3600, 10800)), "urban")
    off.go(oh, float(rng.uniform(1.2, 8)), "urban").until(86400, "indoor")
    vic.go(vh, float(rng.uniform(1.2, 8)), "urban").until(86400, "indoor")
    case = _case(f"ban-{i}", {"contact_ban_m": BAN_M}, victim=True)
    fixes = _fixes(OFFENDER, observe(off, fix_times(off, rng), rng), t0) + _fixes(
        VICTIM, _victim_obs(vic, rng), t0
    )
    return PersonDay(
        "contact_ban",
        case,
        fixes,
        proximity_truth(off, vic, t0),
        t0,
        t0 + timedelta(days=1, hours=1),
        {OFFENDER: off, VICTIM: vic},
    )


def curfew_truth(tr: Track, t0: datetime, radius: float, d: date) -> list[Violation]:
    g = _grid(tr)
    x, y = tr.at(g)
    start = (_local(d, 22) - t0).total_seconds()
    end = (_local(d, 31) - t0).total_seconds()
    out_ = (np.hypot(x, y) > radius + DEPTH_M) & (g >= start) & (g < end)
    return [
        Violation("inclusion", _dt(t0, g[i]), _dt(t0, g[j - 1] + TRUTH_DT), "dwell")
        for i, j in runs_at_least(out_, TRUTH_DT, MIN_S)
    ]


def curfew_night(i: int, rng: np.random.Generator, *, broken: bool = False) -> PersonDay:
    """Noon to noon around a 22:00–07:00 curfew, asleep 8 m from the centre with indoor noise."""
    d = date(2026, 1, 5) + timedelta(days=i % 330)
    if i < len(DST_NIGHTS) * 3:
        d = DST_NIGHTS[i % len(DST_NIGHTS)]
    t0 = _local(d, 12)
    radius = 150.0
    bed = _at(8.0, float(rng.uniform(0, 2 * math.pi)))
    away = _at(float(rng.uniform(1500, 3000)), float(rng.uniform(0, 2 * math.pi)))
    tr = Track(t0).start(*away)

    def sec(hh: float) -> float:
        return (_local(d, hh) - t0).total_seconds()

    tr.until(sec(float(rng.uniform(19.5, 21.6))), "urban").go(bed, float(rng.uniform(1.2, 8)), "urban")
    if broken:
        tr.until(sec(float(rng.uniform(23.0, 25.0))), "indoor")
        tr.go(
            _at(float(rng.uniform(1000, 3000)), float(rng.uniform(0, 6.3))),
            float(rng.uniform(1.2, 8)),
            "urban",
        )
        tr.stay(float(rng.uniform(1800, 5400)), "urban").go(bed, float(rng.uniform(1.2, 8)), "urban")
    tr.until(sec(float(rng.uniform(31.25, 33.0))), "indoor").go(away, float(rng.uniform(1.2, 8)), "urban")
    tr.until(sec(36.0), "urban")
    obs = observe(tr, fix_times(tr, rng), rng)
    case = _case(
        f"cur{'b' if broken else ''}-{i}", {"inclusion_zones": [_circle("home", radius, schedule=CURFEW)]}
    )
    return PersonDay(
        "curfew_broken" if broken else "curfew_night",
        case,
        _fixes(OFFENDER, obs, t0),
        curfew_truth(tr, t0, radius, d),
        t0,
        t0 + timedelta(hours=25),
        {OFFENDER: tr},
    )


# -- violation sets ----------------------------------------------------------------------------


def enter_run(i: int, rng: np.random.Generator) -> PersonDay:
    """Walks 40–150 m into an exclusion zone, stays 2–7 minutes, leaves."""
    t0 = datetime(2026, 2, 2, 8, tzinfo=UTC) + timedelta(days=i)
    radius = float(rng.uniform(200, 500))
    th = float(rng.uniform(0, 2 * math.pi))
    tr = Track(t0).start(*_at(3000, th)).stay(600, "urban")
    tr.go(_at(radius + 100, th), float(rng.uniform(5, 10)), "urban")
    tr.go(_at(radius - float(rng.uniform(40, 150)), th), 1.4, "urban").stay(
        float(rng.uniform(120, 420)), "urban"
    )
    tr.go(_at(radius + 100, th), 1.4, "urban").go(_at(3000, th), 8, "urban").stay(1800, "urban")
    obs = observe(tr, fix_times(tr, rng), rng, gaps_per_day=0)
    return _exclusion_day("v_enter", f"enter-{i}", radius, tr, obs, t0, timedelta(hours=3))


def crossing_run(i: int, rng: np.random.Generator) -> PersonDay:
    """Drives straight through a zone between two fixes 5 min apart; every third run a fix with an
    honest 350–400 m accuracy lies between them."""
    t0 = datetime(2026, 2, 2, 8, tzinfo=UTC) + timedelta(days=i)
    radius = float(rng.uniform(200, 500))
    th = float(rng.uniform(0, 2 * math.pi))
    off = float(rng.uniform(-0.5, 0.5)) * radius
    speed = float(rng.uniform(8, 15))
    ox, oy = off * math.cos(th), -off * math.sin(th)  # offset across the direction of travel
    ux, uy = math.sin(th), math.cos(th)
    a = (ox - 3000 * ux, oy - 3000 * uy)
    b = (ox + 3000 * ux, oy + 3000 * uy)
    tr = Track(t0).start(*a).stay(300, "urban").go(b, speed, "urban").stay(900, "urban")
    # Sparse fixes 300 s apart, none of them inside the zone.
    t_in = 300 + (3000 - math.sqrt(max(radius**2 - off**2, 0))) / speed
    phase = t_in - float(rng.uniform(20, 280 - 2 * math.sqrt(max(radius**2 - off**2, 0)) / speed))
    ts = np.concatenate([np.arange(phase % 300, tr.now_s, 300.0)])
    ts = np.sort(ts)
    obs = observe(tr, ts, rng, gaps_per_day=0)
    if i % 3 == 0:
        # A fix with a huge honest accuracy between the two around the crossing.
        k = int(np.searchsorted(ts, t_in))
        tm = float((ts[k - 1] + ts[k]) / 2) if 0 < k < len(ts) else float(ts[0] + 150)
        mx, my = tr.at(np.array([tm]))
        acc = float(rng.uniform(350, 400))
        sig = acc / 1.51
        extra = Observed(
            np.array([tm]),
            mx + rng.normal(0, sig),
            my + rng.normal(0, sig),
            np.array([acc]),
            np.array([tm + 2]),
            np.array([1], dtype=np.int8),
        )
        obs = Observed(
            *(
                np.concatenate([getattr(obs, f), getattr(extra, f)])
                for f in ("t", "x", "y", "acc", "arrival", "kind")
            )
        )
    return _exclusion_day("v_crossing", f"cross-{i}", radius, tr, obs, t0, timedelta(hours=2))


def offline_run(i: int, rng: np.random.Generator) -> PersonDay:
    """Drives into the zone while offline, stays 20 min, leaves; the buffer is uploaded 10–60 min later."""
    t0 = datetime(2026, 2, 2, 8, tzinfo=UTC) + timedelta(days=i)
    radius = float(rng.uniform(250, 500))
    th = float(rng.uniform(0, 2 * math.pi))
    tr = Track(t0).start(*_at(4000, th)).stay(600, "urban")
    tr.go(_at(radius + 300, th), 10, "urban")
    t_off = tr.now_s
    tr.go(_at(float(rng.uniform(0, radius - 120)), th), 8, "urban").stay(1200, "urban")
    tr.go(_at(radius + 300, th), 8, "urban")
    t_on = tr.now_s
    tr.go(_at(4000, th), 10, "urban").stay(3600, "urban")
    obs = observe(tr, fix_times(tr, rng), rng, gaps_per_day=0)
    obs = late_upload(obs, t_off, t_on, t_on + float(rng.uniform(600, 3600)))
    return _exclusion_day(
        "v_offline_late", f"offline-{i}", radius, tr, obs, t0, timedelta(hours=3), mute=[(t_off, t_on)]
    )


def linger_run(i: int, rng: np.random.Generator, *, silent_victim: bool = False) -> PersonDay:
    """The offender parks ~200 m from the victim for 5–10 min; fixes of the two devices interleave
    more than 120 s apart. ``silent_victim``: the victim's device stopped reporting 40 min before."""
    t0 = datetime(2026, 2, 2, 8, tzinfo=UTC) + timedelta(days=i)
    vh = (0.0, 0.0)
    th = float(rng.uniform(0, 2 * math.pi))
    vic = Track(t0).start(*vh).stay(3 * 3600, "indoor")
    off = Track(t0).start(*_at(4000, th)).stay(3600, "urban")
    off.go(_at(float(rng.uniform(150, 250)), th), float(rng.uniform(5, 10)), "urban")
    off.stay(float(rng.uniform(300, 600)) if not silent_victim else 600, "urban")
    off.go(_at(4000, th), float(rng.uniform(5, 10)), "urban").until(3 * 3600, "urban")
    o_obs = observe(off, fix_times(off, rng, moving_s=(130, 200), still_s=(130, 200)), rng, gaps_per_day=0)
    v_obs = observe(vic, fix_times(vic, rng, still_s=(130, 300)), rng, gaps_per_day=0)
    if silent_victim:
        v_obs = drop(v_obs, v_obs.t < 3600 - 2400)
    case = _case(f"{'silent' if silent_victim else 'linger'}-{i}", {"contact_ban_m": BAN_M}, victim=True)
    fixes = _fixes(OFFENDER, o_obs, t0) + _fixes(VICTIM, v_obs, t0)
    mute = {VICTIM: [(3600.0 - 2400.0, 1e9)]} if silent_victim else {}
    return PersonDay(
        "v_victim_silent" if silent_victim else "v_linger",
        case,
        fixes,
        proximity_truth(off, vic, t0),
        t0,
        t0 + timedelta(hours=3),
        {OFFENDER: off, VICTIM: vic},
        mute,
    )


Builder = Callable[[int, np.random.Generator], PersonDay]

COMPLIANT: dict[str, Builder] = {
    "exclusion_daily": exclusion_day,
    "exclusion_edge_walk": lambda i, rng: exclusion_day(i, rng, walk=True),
    "contact_ban": contact_ban_day,
    "curfew_night": curfew_night,
}
VIOLATIONS: dict[str, Builder] = {
    "v_enter": enter_run,
    "v_crossing": crossing_run,
    "v_offline_late": offline_run,
    "v_linger": linger_run,
    "v_victim_silent": lambda i, rng: linger_run(i, rng, silent_victim=True),
    "v_curfew_broken": lambda i, rng: curfew_night(i, rng, broken=True),
}
