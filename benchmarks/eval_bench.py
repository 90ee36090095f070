"""Micro-benchmark of the evaluation core (not a test).

    .venv/bin/python -m benchmarks.eval_bench [--cases 10000] [--zones 5] [--batches 10] [--batch 5000]
    .venv/bin/python -m benchmarks.eval_bench --walk [--cases 1000] [--batch 500] [--batches 40]
    .venv/bin/python -m benchmarks.eval_bench --e2e [--cases 10000] [--batch 880] [--batches 200]

10,000 cases with 5 zones each (50,000 zones: 3 circles and 2 polygons per case, around the
Netherlands), a victim device on every fifth case, batches of fixes with the clock advancing.
Prints fix-rule evaluations per second, fixes per second, the cost of packing the changed cases
after each batch (what :class:`emon.evaluation.Evaluation` persists every step) and of a JSON
snapshot of them (what it keeps for replay every ``snapshot_s``), and memory per case.

``--walk`` measures the per-fix path at a realistic scale instead: every device walks from its
residence (1.5 m/s, turning), fixes carry GPS noise of their accuracy, and most offenders stay
outside their zones. It prints the CPU time (``time.process_time``: the machine's cores are shared)
of ``evaluate_batch`` per fix, as a median over the batches after a warm-up, and a digest of every
event and state so that runs of two versions can be compared decision for decision.

``--e2e`` does the same with the load of ``benchmarks.e2e`` (``--cases`` is then its number of
devices): one case per ten devices (offender and victim; fixes of the other eight reach the engine
and are ignored), offenders standing 1-6 km from four of their zones and driving once through the
fifth (``benchmarks.e2e_tracks``), everyone else standing still, 8 m accuracy, 20,000 fixes/s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import numpy as np
from shapely.geometry import mapping

from emon.case import Case
from emon.fix import Fix
from emon.geo import destination, geodesic_circle
from emon.geofence import Engine

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def build_cases(n: int, zones: int, rng: np.random.Generator) -> list[Case]:
    cases = []
    for i in range(n):
        lat, lon = float(rng.uniform(51.3, 53.4)), float(rng.uniform(3.6, 7.1))
        ex = []
        for k in range(zones):
            zlat, zlon = destination(lat, lon, float(rng.uniform(0, 360)), float(rng.uniform(500, 8000)))
            radius = float(rng.uniform(100, 600))
            if k % 5 < 3:
                ex.append({"name": f"c{k}", "circle": {"lat": zlat, "lon": zlon, "radius_m": radius}})
            else:
                poly = json.loads(json.dumps(mapping(geodesic_circle(zlat, zlon, radius, 12))))
                ex.append({"name": f"p{k}", "geometry": poly})
        victim = i % 5 == 0
        doc = {
            "case_id": f"case-{i}",
            "risk": "high",
            "offender_device": f"tag-{i}",
            "victim_device": f"vic-{i}" if victim else None,
            "residence": {"lat": lat, "lon": lon},
            "order": {"exclusion_zones": ex, "contact_ban_m": 500 if victim else None},
        }
        cases.append(Case.model_validate(doc))
    return cases


def walk(cases: list[Case], batches: int, size: int, rng: np.random.Generator) -> None:
    """Per-fix CPU time of :meth:`Engine.evaluate_batch` with devices that move as people do."""
    engine = Engine()
    for case in cases:
        engine.add_case(case)
    # device -> [lat, lon, heading]; victims live 1-3 km from the offender's residence.
    where: dict[str, list[float]] = {}
    for c in cases:
        where[c.offender_device] = [c.residence.lat, c.residence.lon, float(rng.uniform(0, 360))]
        if c.victim_device is not None:
            vlat, vlon = destination(c.residence.lat, c.residence.lon, float(rng.uniform(0, 360)), 2000)
            where[c.victim_device] = [vlat, vlon, float(rng.uniform(0, 360))]
    devices = sorted(where)
    seen = dict.fromkeys(devices, T0)
    digest = hashlib.sha256()
    per_fix: list[float] = []
    events = 0
    step = timedelta(seconds=max(1.0, 30.0 * size / len(devices)))  # each device every ~30 s
    for b in range(batches):
        now = T0 + step * (b + 1)
        batch = []
        for i in rng.choice(len(devices), size=min(size, len(devices)), replace=False):
            dev = devices[i]
            pos = where[dev]
            ts = now - timedelta(seconds=float(rng.uniform(0, 5)))
            pos[2] += float(rng.normal(0, 20))
            dt = max(0.0, (ts - seen[dev]).total_seconds())
            pos[0], pos[1] = destination(pos[0], pos[1], pos[2], 1.5 * dt)
            seen[dev] = ts
            acc = float(rng.uniform(5, 40))
            lat, lon = destination(pos[0], pos[1], float(rng.uniform(0, 360)), abs(rng.normal(0, acc / 1.5)))
            batch.append(Fix(dev, ts, lat, lon, acc))
        t = time.process_time()
        out = engine.evaluate_batch(batch, now)
        cpu = time.process_time() - t
        if b >= min(5, batches // 4):  # warm-up: first fixes of every device create its state
            per_fix.append(cpu / len(batch) * 1e6)
        events += len(out)
        for e in out:
            digest.update(json.dumps(e.explain(), sort_keys=True).encode())
    _report(f"walk: {len(cases)} cases, batches of {size}", engine, digest, per_fix, events)


def e2e_walk(n_devices: int, batches: int, size: int) -> None:
    """Per-fix CPU time of :meth:`Engine.evaluate_batch` under the load of ``benchmarks.e2e``."""
    from benchmarks import e2e_tracks
    from benchmarks.e2e_setup import bench_cases, device_positions
    from simulators.load import bench_device_id

    rate = 20_000.0
    homes = device_positions(n_devices)
    engine = Engine()
    for case in bench_cases(n_devices):
        engine.add_case(case)
    crossings = e2e_tracks.schedule(n_devices, rate, batches * size / rate, homes)
    ids = [bench_device_id(i) for i in range(n_devices)]
    digest = hashlib.sha256()
    per_fix: list[float] = []
    events = 0
    for b in range(batches):
        batch = []
        for j in range(b * size, (b + 1) * size):  # the load publishes device after device
            i, t = j % n_devices, j / rate
            crossing = crossings.get(i)
            lat, lon = homes[i] if crossing is None else crossing.at(t)
            batch.append(Fix(ids[i], T0 + timedelta(seconds=t), lat, lon, 8.0, seq=j // n_devices))
        now = T0 + timedelta(seconds=(b + 1) * size / rate)
        t0 = time.process_time()
        out = engine.evaluate_batch(batch, now)
        cpu = time.process_time() - t0
        if b * size >= n_devices:  # warm-up: first fixes of every device create its state
            per_fix.append(cpu / len(batch) * 1e6)
        events += len(out)
        for e in out:
            digest.update(json.dumps(e.explain(), sort_keys=True).encode())
    _report(f"e2e: {n_devices} devices, batches of {size}", engine, digest, per_fix, events)


def _report(what: str, engine: Engine, digest: hashlib._Hash, per_fix: list[float], events: int) -> None:
    """CPU per fix, and a digest of every decision and of every case's final state (equal digests: the
    same decisions)."""
    for case_id in engine.case_ids():
        digest.update(json.dumps(engine.snapshot(case_id), sort_keys=True).encode())
    print(f"{what}, {len(per_fix)} measured, events {events}")
    print(
        f"evaluate_batch CPU µs/fix: median {statistics.median(per_fix):.1f}, "
        f"min {min(per_fix):.1f}, max {max(per_fix):.1f}"
    )
    print(f"decisions digest {digest.hexdigest()[:16]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--zones", type=int, default=5)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--walk", action="store_true", help="per-fix CPU time, people walking (see above)")
    ap.add_argument("--e2e", action="store_true", help="per-fix CPU time, the load of benchmarks.e2e")
    args = ap.parse_args()
    if args.e2e:
        e2e_walk(args.cases, args.batches, args.batch)
        return
    rng = np.random.default_rng(7)
    if args.walk:
        walk(build_cases(args.cases, args.zones, rng), args.batches, args.batch, rng)
        return

    t = time.perf_counter()
    cases = build_cases(args.cases, args.zones, rng)
    t_build = time.perf_counter() - t

    sample = min(500, len(cases))
    tracemalloc.start()
    probe = Engine()
    base = tracemalloc.get_traced_memory()[0]
    for case in cases[:sample]:
        probe.add_case(case)
    compiled_mem = (tracemalloc.get_traced_memory()[0] - base) / sample
    tracemalloc.stop()

    engine = Engine()
    t = time.perf_counter()
    for case in cases:
        engine.add_case(case)
    t_compile = time.perf_counter() - t

    # Each device wanders around its residence; one position per device per batch.
    devices: list[tuple[str, float, float]] = []
    for c in cases:
        devices.append((c.offender_device, c.residence.lat, c.residence.lon))
        if c.victim_device is not None:
            devices.append((c.victim_device, c.residence.lat + 0.01, c.residence.lon))
    rules_of = {
        c.offender_device: len(c.order.exclusion_zones) + (c.victim_device is not None) for c in cases
    }
    rules_of.update({c.victim_device: 1 for c in cases if c.victim_device is not None})

    evals = fixes_done = events = snapshots = 0
    t_eval = t_snap = t_pack = 0.0
    engine.changed()  # adding the cases changed them all; measure what batches change
    for b in range(args.batches):
        now = T0 + timedelta(seconds=30 * b)
        idx = rng.choice(len(devices), size=min(args.batch, len(devices)), replace=False)
        batch = []
        for i in idx:
            dev, lat, lon = devices[i]
            plat, plon = destination(lat, lon, float(rng.uniform(0, 360)), float(rng.uniform(0, 6000)))
            batch.append(
                Fix(
                    dev,
                    now - timedelta(seconds=float(rng.uniform(0, 20))),
                    plat,
                    plon,
                    float(rng.uniform(5, 40)),
                )
            )
        t = time.perf_counter()
        events += len(engine.evaluate_batch(batch, now))
        t_eval += time.perf_counter() - t
        changed = engine.changed()
        t = time.perf_counter()
        snapshots += len({c: engine.packed(c) for c in changed})
        t_pack += time.perf_counter() - t
        t = time.perf_counter()
        len({c: json.dumps(engine.snapshot(c)) for c in changed})
        t_snap += time.perf_counter() - t
        fixes_done += len(batch)
        evals += sum(rules_of[f.device_id] for f in batch)
    t = time.perf_counter()
    events += len(engine.tick(T0 + timedelta(seconds=30 * args.batches)))
    t_tick = time.perf_counter() - t

    state_bytes = sum(len(json.dumps(engine.snapshot(c))) for c in engine.case_ids()) / len(cases)
    packed_bytes = sum(len(engine.packed(c)) for c in engine.case_ids()) / len(cases)
    n_zones = sum(len(c.order.exclusion_zones) for c in cases)
    print(f"cases {len(cases)}, zones {n_zones}, victims {sum(c.victim_device is not None for c in cases)}")
    print(
        f"build documents {t_build:.1f} s, compile {t_compile:.1f} s ({t_compile / len(cases) * 1e3:.2f} ms/case)"
    )
    print(f"fixes {fixes_done} in {t_eval:.2f} s: {fixes_done / t_eval:,.0f} fixes/s")
    print(f"fix-rule evaluations {evals}: {evals / t_eval:,.0f} evaluations/s; events {events}")
    print(
        f"changed cases after each batch: {snapshots}; packed (eval_state) in {t_pack:.2f} s "
        f"({t_pack / snapshots * 1e6:.0f} µs/case), as JSON (snapshots) {t_snap:.2f} s "
        f"({t_snap / snapshots * 1e6:.0f} µs/case)"
    )
    print(f"tick over all cases: {t_tick * 1e3:.0f} ms")
    print(f"memory per compiled case ~{compiled_mem / 1024:.1f} KiB (tracemalloc, {sample} cases)")
    print(
        f"persisted state per case ~{packed_bytes / 1024:.2f} KiB packed, {state_bytes / 1024:.2f} KiB JSON"
    )


if __name__ == "__main__":
    main()
