"""Where a simulated person truly is at scenario time t: routes of waypoints, speeds and pauses.

Pure and deterministic: no clock, no randomness. Legs follow the geodesic between waypoints.
Speeds are metres per second, times scenario seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from emon.geo import WGS84, destination
from simulators.scenario import Environment, Mode, Route

SPEED_MPS: dict[Mode, float] = {"walk": 1.4, "cycle": 5.0, "drive": 13.0}


@dataclass(frozen=True, slots=True)
class TruePosition:
    """The real position at one moment: degrees, metres per second, heading in degrees from north."""

    lat: float
    lon: float
    speed_mps: float
    heading_deg: float
    env: Environment


@dataclass(frozen=True, slots=True)
class _Leg:
    t0: float
    t1: float
    lat: float
    lon: float
    azimuth_deg: float
    distance_m: float
    env: Environment

    @property
    def speed_mps(self) -> float:
        return self.distance_m / (self.t1 - self.t0) if self.t1 > self.t0 else 0.0


class Track:
    """A route turned into timed legs (moving) and stops (pauses, distance 0)."""

    def __init__(self, route: Route) -> None:
        first = route.waypoints[0]
        legs: list[_Leg] = []
        t = route.start_s
        heading = 0.0
        if first.pause_s:
            legs.append(_Leg(t, t + first.pause_s, first.lat, first.lon, heading, 0.0, first.env))
            t += first.pause_s
        for a, b in zip(route.waypoints, route.waypoints[1:], strict=False):
            az, _, dist = WGS84.inv(a.lon, a.lat, b.lon, b.lat)
            speed = b.speed_mps or SPEED_MPS[b.mode or route.mode]
            heading = float(az) % 360.0
            if dist > 0:
                legs.append(_Leg(t, t + float(dist) / speed, a.lat, a.lon, heading, float(dist), b.env))
                t += float(dist) / speed
            if b.pause_s:
                legs.append(_Leg(t, t + b.pause_s, b.lat, b.lon, heading, 0.0, b.env))
                t += b.pause_s
        self._legs = tuple(legs)
        self._start = (first.lat, first.lon, first.env)
        last = route.waypoints[-1]
        self._end = (last.lat, last.lon, last.env, heading)
        self.end_s = t

    def at(self, t: float) -> TruePosition:
        """The true position at scenario second ``t`` (waiting at the ends outside the route's time)."""
        if not self._legs or t >= self.end_s:
            lat, lon, env, heading = self._end
            return TruePosition(lat, lon, 0.0, heading, env)
        if t < self._legs[0].t0:
            lat, lon, env = self._start
            return TruePosition(lat, lon, 0.0, 0.0, env)
        leg = next(leg for leg in self._legs if leg.t0 <= t < leg.t1)
        if leg.distance_m == 0:
            return TruePosition(leg.lat, leg.lon, 0.0, leg.azimuth_deg, leg.env)
        lat, lon = destination(leg.lat, leg.lon, leg.azimuth_deg, leg.speed_mps * (t - leg.t0))
        return TruePosition(lat, lon, leg.speed_mps, leg.azimuth_deg, leg.env)
