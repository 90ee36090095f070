"""Crossing tracks of the end-to-end benchmark: every offender drives once through its first zone.

A static load makes decisions only at cold start (an offender standing inside a zone is decided on its
first fix), so the benchmark's fix → alert latency would measure the first second only. Here each
offender (``bench-i``, ``i % 10 == 0``) drives in a straight line at ``SPEED_MPS`` through the centre
of a small circular zone (``ZONE_RADIUS_M``, a pre-alert ring of ``PREALERT_M``) that stands
``ZONE_OFFSET_M`` from its home. The zone is fixed when the schema is written; only *when* each
offender passes is scheduled per run (:func:`schedule`): entries are spread over the run after the
warm-up, so decisions keep coming while the load runs.

Why these numbers (emon/geofence/evidence.py, episode.py): with the load's 8 m accuracy one fix at
least ≈16 m inside adds the capped evidence (4 of the 6.9 that prove a breach), and a fix counts in
full only when it moved more than 25 m since the previous one (otherwise ``dt / 30 s`` of it). At
10,000 devices and 5,000 fixes/s a device reports every 2 s: 15 m/s (54 km/h, a car in town) moves
30 m per fix, and a 100 m chord holds at least two fixes ≥ 16 m deep — a proven breach on the second
or third fix inside, a ``possible`` on the first deep one, a pre-alert just before. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from emon.geo import destination

SPEED_MPS = 15.0
ZONE_RADIUS_M = 50.0
PREALERT_M = 15.0
ZONE_OFFSET_M = 400.0  # zone centre from the offender's home (the other zones are ≥ 1.4 km away)
WARMUP_S = 2.0
_GOLDEN = 0.6180339887498949
_PROBE_M = 1000.0


def offenders(n_devices: int) -> range:
    """Device indices of the offenders of :func:`benchmarks.e2e_setup.bench_cases` (one case per 10)."""
    return range(0, n_devices - 1, 10)


def heading_deg(i: int) -> float:
    """Direction of travel of offender ``i`` (degrees from north), varied so tracks point everywhere."""
    return float((i * 37) % 360)


def zone_centre(home_lat: float, home_lon: float, i: int) -> tuple[float, float]:
    """Centre (lat, lon) of offender ``i``'s crossing zone: ``ZONE_OFFSET_M`` from home, across its path."""
    return destination(home_lat, home_lon, (heading_deg(i) + 90.0) % 360, ZONE_OFFSET_M)


@dataclass(frozen=True, slots=True)
class Crossing:
    """A straight drive at ``SPEED_MPS`` through a zone centre, passing it ``t_centre`` seconds after
    the load starts. Degrees per second are taken over a 1 km chord: over the few hundred metres of a
    run the position is exact to centimetres."""

    lat_c: float
    lon_c: float
    dlat: float  # degrees per second
    dlon: float
    t_centre: float

    @classmethod
    def through(cls, lat_c: float, lon_c: float, heading: float, t_centre: float) -> Crossing:
        lat1, lon1 = destination(lat_c, lon_c, heading, _PROBE_M)
        scale = SPEED_MPS / _PROBE_M
        return cls(lat_c, lon_c, (lat1 - lat_c) * scale, (lon1 - lon_c) * scale, t_centre)

    @property
    def entry_s(self) -> float:
        """Seconds after the start when the track enters the zone."""
        return self.t_centre - ZONE_RADIUS_M / SPEED_MPS

    @property
    def exit_s(self) -> float:
        """Seconds after the start when the track leaves the zone."""
        return self.t_centre + ZONE_RADIUS_M / SPEED_MPS

    def at(self, t: float) -> tuple[float, float]:
        """(lat, lon) at ``t`` seconds after the start of the load."""
        dt = t - self.t_centre
        return self.lat_c + self.dlat * dt, self.lon_c + self.dlon * dt


def entry_window(n_devices: int, rate: float, duration_s: float) -> tuple[float, float]:
    """(first, last) entry time in seconds: the pre-alert ring is reached after the warm-up, and at
    least one report interval (``n_devices / rate``) is left for a fix inside before the end."""
    first = WARMUP_S + PREALERT_M / SPEED_MPS
    last = duration_s - n_devices / rate
    return first, max(first, last)


def schedule(
    n_devices: int, rate: float, duration_s: float, homes: list[tuple[float, float]]
) -> dict[int, Crossing]:
    """Offender device index → its crossing in a run of ``duration_s`` at ``rate`` fixes/s.

    Entries are spread evenly over :func:`entry_window` in a golden-ratio order, so that neither the
    device index nor its place in the publishing round trip decides when (and how deep) it is seen.
    ``homes`` are the devices' static positions (:func:`benchmarks.e2e_setup.device_positions`).
    """
    first, last = entry_window(n_devices, rate, duration_s)
    out = {}
    for j, i in enumerate(offenders(n_devices)):
        entry = first + (last - first) * ((j * _GOLDEN) % 1.0)
        lat_c, lon_c = zone_centre(*homes[i], i)
        out[i] = Crossing.through(lat_c, lon_c, heading_deg(i), entry + ZONE_RADIUS_M / SPEED_MPS)
    return out


def inside_during(crossings: dict[int, Crossing], start_s: float, end_s: float) -> tuple[int, int]:
    """How many tracks enter, and how many also leave, their zone within [start_s, end_s] seconds."""
    entered = [c for c in crossings.values() if start_s <= c.entry_s <= end_s]
    return len(entered), sum(1 for c in entered if c.exit_s <= end_s)
