"""Builders for geofence tests: cases around a point, fixes placed in metres, event tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from emon.case import Case
from emon.fix import Fix
from emon.geo import destination
from emon.geofence import Engine, EvalConfig
from emon.geofence.events import EvalEvent

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CENTRE = (52.37, 4.90)  # Amsterdam
OFFENDER = "tag-1"
VICTIM = "vic-1"


def at(lat_lon: tuple[float, float], east_m: float, north_m: float = 0.0) -> tuple[float, float]:
    """The point ``east_m`` east and ``north_m`` north of ``lat_lon`` (geodesic)."""
    lat, lon = lat_lon
    if east_m:
        lat, lon = destination(lat, lon, 90.0 if east_m > 0 else 270.0, abs(east_m))
    if north_m:
        lat, lon = destination(lat, lon, 0.0 if north_m > 0 else 180.0, abs(north_m))
    return lat, lon


def circle_zone(
    name: str, centre: tuple[float, float] = CENTRE, radius_m: float = 100.0, **kw: Any
) -> dict[str, Any]:
    return {"name": name, "circle": {"lat": centre[0], "lon": centre[1], "radius_m": radius_m}, **kw}


def make_case(
    *,
    exclusion: Sequence[dict[str, Any]] = (),
    inclusion: Sequence[dict[str, Any]] = (),
    contact_ban_m: float | None = None,
    residence: tuple[float, float] = CENTRE,
    case_id: str = "case-1",
    **order: Any,
) -> Case:
    doc: dict[str, Any] = {
        "case_id": case_id,
        "risk": "high",
        "offender_device": OFFENDER,
        "victim_device": VICTIM if contact_ban_m is not None else None,
        "residence": {"lat": residence[0], "lon": residence[1]},
        "order": {
            "exclusion_zones": list(exclusion),
            "inclusion_zones": list(inclusion),
            "contact_ban_m": contact_ban_m,
            **order,
        },
    }
    return Case.model_validate(doc)


@dataclass(frozen=True)
class Step:
    """One row of a fix table: seconds after the start, where (east metres of a point), accuracy."""

    t_s: float
    east_m: float
    acc_m: float = 10.0
    device: str = OFFENDER
    north_m: float = 0.0


def build_fixes(
    steps: Iterable[Step], *, origin: tuple[float, float] = CENTRE, start: datetime = T0
) -> list[Fix]:
    out = []
    for s in steps:
        lat, lon = at(origin, s.east_m, s.north_m)
        out.append(Fix(s.device, start + timedelta(seconds=s.t_s), lat, lon, s.acc_m))
    return out


def walk(
    distances: Sequence[float], *, every_s: float = 10.0, acc_m: float = 10.0, t0_s: float = 0.0
) -> list[Step]:
    """Offender fixes every ``every_s`` seconds at these east offsets (metres) from the origin."""
    return [Step(t0_s + i * every_s, d, acc_m) for i, d in enumerate(distances)]


def run_live(engine: Engine, fixes: Iterable[Fix], lag_s: float = 1.0) -> list[EvalEvent]:
    """Feed fixes one at a time as they would arrive live (decision ``lag_s`` after each fix)."""
    events: list[EvalEvent] = []
    for fix in sorted(fixes, key=lambda f: (f.ts, f.device_id)):
        events += engine.evaluate(fix, fix.ts + timedelta(seconds=lag_s))
    return events


def types(events: Iterable[EvalEvent], *, locate: bool = False) -> list[str]:
    """Event types in order; locate-now requests only with ``locate`` (tests/safety pins them)."""
    return [e.type.value for e in events if locate or e.type.value != "locate_request"]


def engine_for(case: Case, config: EvalConfig | None = None) -> Engine:
    engine = Engine(config)
    engine.add_case(case)
    return engine
