"""True tracks and realistic GPS noise for the safety benchmark (not a test).

A person-day is a piecewise-linear true track in a local metric frame (x east, y north, metres,
centred on a town) plus an environment per leg. :func:`observe` turns it into the fixes a device
reports: fix times every 30–60 s moving and 60–300 s stationary; a circular 2-D Gaussian error
whose 68 % radius is the reported accuracy (5–15 m open, 15–40 m urban, 30–80 m indoors); one fix
in 200 a 100–400 m multipath outlier with an honest large accuracy, one in 2,000 with a dishonest
10 m accuracy; and gaps of 10–60 minutes whose fixes arrive late, in one upload.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from pyproj import Transformer

F64 = NDArray[np.float64]
SIGMA_PER_ACC = 1.0 / math.sqrt(-2.0 * math.log(1.0 - 0.68))  # acc is the 68 % radius: sigma = acc/1.51
ACC_RANGE = {"open": (5.0, 15.0), "urban": (15.0, 40.0), "indoor": (30.0, 80.0)}
HONEST_OUTLIER_RATE = 1 / 200
DISHONEST_OUTLIER_RATE = 1 / 2000


@dataclass(slots=True)
class Track:
    """A true track: knots (seconds after ``t0``, x, y metres) and the environment of each leg."""

    t0: datetime
    t: list[float] = field(default_factory=list)
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    env: list[str] = field(default_factory=list)  # env[i]: the leg from knot i to knot i+1
    moving: list[bool] = field(default_factory=list)

    def start(self, x: float, y: float) -> Track:
        self.t, self.x, self.y = [0.0], [x], [y]
        return self

    @property
    def now_s(self) -> float:
        return self.t[-1]

    @property
    def here(self) -> tuple[float, float]:
        return self.x[-1], self.y[-1]

    def stay(self, seconds: float, env: str, at: tuple[float, float] | None = None) -> Track:
        """Stay ``seconds`` (at ``at``, jumping there instantly only when given as the start)."""
        x, y = at if at is not None else self.here
        self.t.append(self.now_s + seconds)
        self.x.append(x)
        self.y.append(y)
        self.env.append(env)
        self.moving.append(False)
        return self

    def go(self, to: tuple[float, float], speed_mps: float, env: str) -> Track:
        """Move in a straight line to ``to`` at ``speed_mps``."""
        d = math.hypot(to[0] - self.x[-1], to[1] - self.y[-1])
        self.t.append(self.now_s + max(1.0, d / speed_mps))
        self.x.append(to[0])
        self.y.append(to[1])
        self.env.append(env)
        self.moving.append(True)
        return self

    def until(self, t_s: float, env: str) -> Track:
        """Stay until ``t_s`` seconds after ``t0`` (no-op if already past)."""
        return self.stay(max(0.0, t_s - self.now_s), env)

    def arrays(self) -> tuple[F64, F64, F64]:
        return np.array(self.t), np.array(self.x), np.array(self.y)

    def at(self, ts: F64) -> tuple[F64, F64]:
        """True positions (x, y metres) at ``ts`` seconds after ``t0``."""
        t, x, y = self.arrays()
        return np.interp(ts, t, x), np.interp(ts, t, y)

    def leg_of(self, ts: F64) -> NDArray[np.int64]:
        t = np.array(self.t)
        return np.clip(np.searchsorted(t, ts, side="right") - 1, 0, len(self.env) - 1)


@dataclass(frozen=True, slots=True)
class Observed:
    """Fixes of one device: times (s after t0), reported x/y (m), accuracy (m), arrival (s)."""

    t: F64
    x: F64
    y: F64
    acc: F64
    arrival: F64
    kind: NDArray[np.int8]  # 0 normal, 1 honest outlier, 2 dishonest outlier


def fix_times(
    track: Track,
    rng: np.random.Generator,
    *,
    moving_s: tuple[float, float] = (30, 60),
    still_s: tuple[float, float] = (60, 300),
) -> F64:
    """Fix times over the whole track: 30–60 s apart while moving, 60–300 s while still."""
    out: list[float] = []
    t = float(rng.uniform(0, 30))
    end = track.now_s
    knots = np.array(track.t)
    while t < end:
        out.append(t)
        leg = min(int(np.searchsorted(knots, t, side="right")) - 1, len(track.env) - 1)
        lo, hi = moving_s if track.moving[leg] else still_s
        t += float(rng.uniform(lo, hi))
    return np.array(out)


def observe(
    track: Track,
    ts: F64,
    rng: np.random.Generator,
    *,
    gaps_per_day: float = 0.5,
    env_override: str | None = None,
) -> Observed:
    """Noisy fixes of ``track`` at ``ts``; see the module docstring for the noise model."""
    n = len(ts)
    tx, ty = track.at(ts)
    legs = track.leg_of(ts)
    envs = [env_override or track.env[i] for i in legs]
    lo = np.array([ACC_RANGE[e][0] for e in envs])
    hi = np.array([ACC_RANGE[e][1] for e in envs])
    acc = rng.uniform(lo, hi)
    sigma = acc * SIGMA_PER_ACC
    ex, ey = rng.normal(0, 1, n) * sigma, rng.normal(0, 1, n) * sigma
    kind = np.zeros(n, dtype=np.int8)
    u = rng.random(n)
    honest = u < HONEST_OUTLIER_RATE
    dishonest = (u >= HONEST_OUTLIER_RATE) & (u < HONEST_OUTLIER_RATE + DISHONEST_OUTLIER_RATE)
    wild = honest | dishonest
    r = rng.uniform(100, 400, n)
    a = rng.uniform(0, 2 * math.pi, n)
    ex = np.where(wild, r * np.sin(a), ex)
    ey = np.where(wild, r * np.cos(a), ey)
    # Honest: the reported 68 % radius covers the error (it is what the chip believes).
    acc = np.where(honest, r * rng.uniform(1.0, 1.5, n), np.where(dishonest, 10.0, acc))
    kind[honest], kind[dishonest] = 1, 2
    arrival = ts + rng.uniform(1, 5, n)
    # Gaps: the device cannot upload for 10–60 min; what it recorded arrives in one batch.
    days = max(1.0, (ts[-1] - ts[0]) / 86400) if n else 1.0
    for _ in range(rng.poisson(gaps_per_day * days)):
        g0 = float(rng.uniform(ts[0], ts[-1])) if n else 0.0
        g1 = g0 + float(rng.uniform(600, 3600))
        inside = (ts >= g0) & (ts < g1)
        arrival = np.where(inside, g1 + rng.uniform(1, 5), arrival)
    return Observed(ts, tx + ex, ty + ey, np.round(acc, 1), arrival, kind)


class Sampler:
    """:func:`observe` for one fix at a time, cheaply (for devices answering locate-now)."""

    def __init__(self, track: Track) -> None:
        self.t, self.x, self.y = track.arrays()
        self.env = track.env

    def one(self, t: float, rng: np.random.Generator) -> tuple[float, float, float]:
        """(x, y, acc) of one noisy fix at ``t`` seconds: the noise model of :func:`observe`."""
        leg = min(max(int(np.searchsorted(self.t, t, side="right")) - 1, 0), len(self.env) - 1)
        tx, ty = float(np.interp(t, self.t, self.x)), float(np.interp(t, self.t, self.y))
        lo, hi = ACC_RANGE[self.env[leg]]
        u, acc, ex, ey, r, a = rng.random(), rng.uniform(lo, hi), *rng.normal(0, 1, 2), *rng.random(2)
        if u < HONEST_OUTLIER_RATE + DISHONEST_OUTLIER_RATE:
            r, a = 100 + 300 * r, 2 * math.pi * a
            honest = u < HONEST_OUTLIER_RATE
            acc = r * float(rng.uniform(1.0, 1.5)) if honest else 10.0
            return tx + r * math.sin(a), ty + r * math.cos(a), round(acc, 1)
        s = acc * SIGMA_PER_ACC
        return tx + ex * s, ty + ey * s, round(acc, 1)


def late_upload(obs: Observed, t_from: float, t_to: float, upload_at: float) -> Observed:
    """The fixes taken in [t_from, t_to) arrive at ``upload_at`` (offline, buffered)."""
    inside = (obs.t >= t_from) & (obs.t < t_to)
    arrival = np.where(inside, np.maximum(upload_at, obs.t + 1), obs.arrival)
    return Observed(obs.t, obs.x, obs.y, obs.acc, arrival, obs.kind)


def drop(obs: Observed, keep: NDArray[np.bool_]) -> Observed:
    return Observed(obs.t[keep], obs.x[keep], obs.y[keep], obs.acc[keep], obs.arrival[keep], obs.kind[keep])


class Frame:
    """The local metric frame (AEQD around a town centre) ↔ WGS84, vectorised."""

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0, self.lon0 = lat0, lon0
        aeqd = f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +ellps=WGS84 +units=m +no_defs"
        self._inv = Transformer.from_crs(aeqd, "EPSG:4326", always_xy=True)

    def latlon(self, x: F64, y: F64) -> tuple[F64, F64]:
        lon, lat = self._inv.transform(x, y)
        return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)


def runs_at_least(mask: NDArray[np.bool_], dt_s: float, min_s: float) -> list[tuple[int, int]]:
    """Index ranges [i, j) where ``mask`` is True for at least ``min_s`` seconds (samples ``dt_s`` apart)."""
    if not mask.any():
        return []
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True) if (b - a) * dt_s >= min_s]


def seconds(t0: datetime, s: float) -> datetime:
    return t0 + timedelta(seconds=float(s))
