"""What a positioning chip reports for a true position: noise that matches the reported accuracy.

``acc`` is treated as the 68 % radius (the Android / OwnTracks convention): the horizontal error is
a circular Gaussian with per-axis sigma = acc / 1.515, so about 68 % of fixes lie within ``acc``
metres of the truth. A wild outlier lands hundreds of metres to kilometres away while still
claiming a small ``acc`` -- the case a geofence engine must not trust blindly. Pure: the caller
passes the seeded ``random.Random``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from emon.geo import destination
from simulators.movement import TruePosition
from simulators.scenario import Noise

SIGMA_PER_ACC = 1.0 / math.sqrt(-2.0 * math.log(1.0 - 0.68))  # 1 / 1.5096

Source = Literal["gnss", "wifi", "cell"]


@dataclass(frozen=True, slots=True)
class Reading:
    """One reported position: degrees, ``acc_m`` metres, ``outlier`` True for a wild fix."""

    lat: float
    lon: float
    acc_m: float
    src: Source
    outlier: bool = False


def nominal_acc_m(noise: Noise, pos: TruePosition) -> float:
    """The accuracy (metres) the chip typically claims in this environment."""
    return {"open": noise.open_acc_m, "urban": noise.urban_acc_m, "indoor": noise.indoor_acc_m}[pos.env]


def read(pos: TruePosition, noise: Noise, rng: random.Random) -> Reading:
    """A noisy reading of ``pos``; always draws the same number of random values (replayable)."""
    acc = nominal_acc_m(noise, pos) * rng.uniform(0.7, 1.3)
    sigma = acc * SIGMA_PER_ACC
    dx, dy = rng.gauss(0.0, sigma), rng.gauss(0.0, sigma)
    wild = rng.random() < noise.outlier_rate
    wild_m = rng.uniform(noise.outlier_min_m, max(noise.outlier_min_m, noise.outlier_max_m))
    wild_az = rng.uniform(0.0, 360.0)
    src: Source = "wifi" if pos.env == "indoor" else "gnss"
    if wild:
        lat, lon = destination(pos.lat, pos.lon, wild_az, wild_m)
        return Reading(lat, lon, round(acc, 1), src, outlier=True)
    lat, lon = destination(pos.lat, pos.lon, math.degrees(math.atan2(dx, dy)) % 360.0, math.hypot(dx, dy))
    return Reading(lat, lon, round(acc, 1), src)
