"""The shortcut for lawful fixes of quiet rules (``step_lawful``) is exactly what the state
machines do to them: no event, the same state. Held to the machines reading by reading, and
engine-wide on fixes that wander in and out of zones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from types import ModuleType

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emon.geofence import Engine, EvalConfig, proximity, zones
from emon.geofence.episode import Limits, Reading, quiet, step_lawful
from emon.geofence.events import Classification
from emon.geofence.report import advance
from emon.geofence.state import RuleState

from .conftest import OFFENDER, T0, VICTIM, Step, build_fixes, circle_zone, make_case, run_live, types

LIMITS = Limits(confirm_fixes=3, confirm_s=60.0, clear_s=60.0, update_distance_m=10.0, update_move_m=25.0)
times = st.none() | st.integers(-3600, 3600).map(lambda s: T0 + timedelta(seconds=s))
coords = st.floats(-80.0, 80.0)


@st.composite
def quiet_states(draw: st.DrawFn) -> RuleState:
    """Rules with nothing open and no evidence, whatever their bookkeeping says."""
    return RuleState(
        active=draw(st.none() | st.booleans()),
        pending_since=draw(times),
        pending_count=draw(st.integers(0, 5)),
        clear_since=draw(times),
        llr_ts=draw(times),
        llr_lat=draw(st.none() | coords),
        llr_lon=draw(st.none() | coords),
        undecided_since=draw(times),
        retro_llr=draw(st.floats(0.0, 10.0)),
    )


@settings(max_examples=400, deadline=None)
@given(
    rs=quiet_states(),
    dt_s=st.integers(-600, 600),
    lat=coords,
    lon=coords,
    llr=st.floats(-4.0, -1e-9),
    good=st.booleans(),
    far=st.booleans(),
    ring=st.booleans(),
    cls=st.sampled_from([Classification.CLEAR, Classification.POSSIBLE]),
)
def test_step_lawful_is_what_the_machines_do(
    rs: RuleState,
    dt_s: int,
    lat: float,
    lon: float,
    llr: float,
    good: bool,
    far: bool,
    ring: bool,
    cls: Classification,
) -> None:
    assert quiet(rs, LIMITS)
    ts = T0 + timedelta(seconds=dt_s)
    r = Reading(ts, cls, 50.0, -50.0, lat, lon, True, good, good, True, llr, 10.0)
    machines = msgspec.structs.replace(rs)
    # A reading that counts with lawful evidence, outside the pre-alert ring (or not good enough to move it).
    assert advance(machines, r, LIMITS, (False, far) if ring else None) is None
    shortcut = msgspec.structs.replace(rs)
    step_lawful(shortcut, ts, lat, lon)
    assert msgspec.msgpack.encode(shortcut) == msgspec.msgpack.encode(machines)


def test_a_rule_with_anything_open_or_pending_is_not_quiet() -> None:
    assert not quiet(RuleState(llr=0.5), LIMITS)
    assert not quiet(RuleState(), Limits(3, 60.0, 60.0, 10.0, 25.0, possible_llr=0.0))
    assert quiet(RuleState(), LIMITS)


def wander(rng: np.random.Generator) -> Iterator[Step]:
    """Offender and victim fixes that go in and out of the zones and rings, with jumps, huge
    accuracies and late fixes."""
    east = 900.0
    for i in range(400):
        east += float(rng.normal(0, 60)) + 0.05 * (350.0 - east)  # drawn back to the zones
        if rng.random() < 0.02:
            east += float(rng.choice([-3000, 3000]))  # an implausible jump
        acc = float(rng.choice([5.0, 15.0, 40.0, 150.0, 700.0], p=[0.3, 0.4, 0.2, 0.07, 0.03]))
        t = i * 20.0 - (600.0 if rng.random() < 0.03 else 0.0)  # now and then a late one
        yield Step(t, east, acc)
        if i % 3 == 0:
            yield Step(t + 5, east + float(rng.normal(600, 400)), 20.0, device=VICTIM)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_shortcut_changes_no_decision(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    case = make_case(
        exclusion=[circle_zone("a", radius_m=300.0), circle_zone("b", radius_m=80.0, prealert_m=150.0)],
        inclusion=[circle_zone("home", radius_m=1500.0)],
        contact_ban_m=200,
    )
    fixes = build_fixes(wander(np.random.default_rng(seed)))
    runs = []
    taken: list[str] = []  # the modules whose shortcut was taken

    def counted(module: ModuleType) -> Callable[[RuleState, datetime, float, float], None]:
        def lawful(rs: RuleState, ts: datetime, lat: float, lon: float) -> None:
            taken.append(module.__name__)
            step_lawful(rs, ts, lat, lon)

        return lawful

    for module in (zones, proximity):
        monkeypatch.setattr(module, "step_lawful", counted(module))
    for shortcut in (True, False):
        if not shortcut:
            # Every reading through the machines, of zones and of the proximity rule.
            monkeypatch.setattr(zones, "quiet", lambda rs, lim: False)
            monkeypatch.setattr(proximity, "quiet", lambda rs, lim: False)
        engine = Engine(EvalConfig())
        engine.add_case(case)
        events = run_live(engine, fixes, lag_s=2.0)
        runs.append(([e.explain() for e in events], engine.snapshot(case.case_id)))
    assert runs[0] == runs[1]
    assert {zones.__name__, proximity.__name__} <= set(taken)  # both shortcuts were held to the machines
    assert len(runs[0][0]) > 10  # the walk did make decisions
    assert OFFENDER in runs[0][1]["devices"]


def _ring_distances() -> list[float]:
    """Pair distances at the edges the proximity shortcut decides on: the pre-alert ring's enter
    (1000 m) and exit (1300 m) distances, the ban (200 m) and the ban plus both accuracies and
    the counterpart's possible movement, exactly and a hair either side."""
    edges = [1000.0, 1300.0, 200.0, 200.0 + 2 * 10.0 + 15.0 * 5.0, 200.0 + 2 * 10.0]
    out = [5000.0, 3000.0]
    for edge in edges:
        out += [np.nextafter(edge, -np.inf), edge, np.nextafter(edge, np.inf), 5000.0, 2000.0]
    return out


@pytest.mark.parametrize("acc_m", [10.0, 500.0, 500.5, 2000.0])  # counting or not (max_acc_m 500)
@pytest.mark.parametrize("jumps", [False, True])
def test_the_proximity_shortcut_at_the_edges_of_its_rings(
    acc_m: float, jumps: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fixes of a pair exactly at (and a hair either side of) each distance the proximity rule
    decides on, with accurate and inaccurate fixes and implausible jumps: the shortcut and the
    machines make the same events and leave the same state."""
    case = make_case(contact_ban_m=200)
    distances = _ring_distances()
    steps: list[Step] = []
    for i in range(len(distances)):
        east = 3000.0 * (i % 2) if jumps else 0.0  # every other fix 3 km away: implausible
        steps += [Step(10.0 * i, east, acc_m), Step(10.0 * i + 5.0, 0.0, 10.0, device=VICTIM)]
    fixes = build_fixes(steps)
    runs = []
    for shortcut in (True, False):
        if not shortcut:
            monkeypatch.setattr(proximity, "quiet", lambda rs, lim: False)
        # The pair's distance is the next one of the list at each fix of either device.
        told = iter(d for d in distances for _ in range(2))
        monkeypatch.setattr(proximity, "geodesic_m", lambda *_, _told=told: next(_told))
        engine = Engine(EvalConfig())
        engine.add_case(case)
        events = run_live(engine, fixes, lag_s=2.0)
        runs.append(([e.explain() for e in events], engine.snapshot(case.case_id)))
    assert runs[0] == runs[1]
    if acc_m <= 500.0:  # fixes that count: the edges made decisions
        assert types(e for e in events if e.rule == "proximity")
