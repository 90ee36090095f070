"""Baseline: the naive design, one PostGIS query per fix against the same zones as the e2e run.

    .venv/bin/python -m benchmarks.postgis_baseline [--devices 10000] [--duration 10] [--connections 4]

The zones of :func:`benchmarks.e2e_setup.bench_cases` (circles as 32-vertex geodesic polygons) go
into ``bench_postgis.zones`` as ``geography`` with a GiST index and a B-tree on the device. Each fix
of the load generator's devices is then one round trip:
``SELECT name FROM zones WHERE device_id = $1 AND ST_DWithin(geog, point, 100)`` (inside, or within a
100 m pre-alert ring). That is *less* than emon does per fix (no proximity, no hysteresis, nothing
stored), so the ratio flatters the baseline. Several connections run in parallel, as a pool would.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

import psycopg
from shapely.geometry import shape

from benchmarks.e2e_setup import PG_URL, bench_cases, device_positions
from emon.geo import geodesic_circle
from simulators.load import bench_device_id

SCHEMA = "bench_postgis"
QUERY = (
    "SELECT name FROM zones WHERE device_id = %s "
    "AND ST_DWithin(geog, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, 100)"
)


@dataclass(frozen=True, slots=True)
class BaselineResult:
    available: bool
    detail: str  # why not, when unavailable; the PostGIS version otherwise
    zones: int = 0
    fixes: int = 0
    seconds: float = 0.0
    hits: int = 0

    @property
    def rate(self) -> float:
        return self.fixes / self.seconds if self.seconds else 0.0


def setup(n_devices: int) -> tuple[str, int]:
    """Create the schema, the extension and the zones; return (PostGIS version, zone count)."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        row = conn.execute(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'postgis'"
        ).fetchone()
        ext_schema = row[0] if row else SCHEMA
        if row is None:
            conn.execute(f"CREATE EXTENSION postgis SCHEMA {SCHEMA}")
        conn.execute(f"SET search_path = {SCHEMA}, {ext_schema}")
        version = str(conn.execute("SELECT postgis_lib_version()").fetchone()[0])  # type: ignore[index]
        conn.execute(
            "CREATE TABLE zones (id serial PRIMARY KEY, device_id text NOT NULL, case_id text NOT NULL, "
            "name text NOT NULL, geog geography(Polygon, 4326) NOT NULL)"
        )
        n = 0
        with conn.cursor().copy("COPY zones (device_id, case_id, name, geog) FROM STDIN") as cp:
            for case in bench_cases(n_devices):
                for zone in case.order.exclusion_zones:
                    if zone.circle is not None:
                        poly = geodesic_circle(zone.circle.lat, zone.circle.lon, zone.circle.radius_m, 32)
                    else:
                        poly = shape(zone.geometry)
                    cp.write_row((case.offender_device, case.case_id, zone.name, f"SRID=4326;{poly.wkt}"))
                    n += 1
        conn.execute("CREATE INDEX ON zones USING gist (geog)")
        conn.execute("CREATE INDEX ON zones (device_id)")
        conn.execute("ANALYZE zones")
    return version, n


async def _worker(
    positions: list[tuple[float, float]], start: int, step: int, until: float
) -> tuple[int, int]:
    options = f"-c search_path={SCHEMA},public"
    done = hits = 0
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True, options=options) as conn:
        # The extension may live in another schema; find it once.
        cur = await conn.execute(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'postgis'"
        )
        row = await cur.fetchone()
        if row is not None:
            await conn.execute(f"SET search_path = {SCHEMA}, {row[0]}")
        i = start
        n = len(positions)
        while time.perf_counter() < until:
            lat, lon = positions[i % n]
            cur = await conn.execute(QUERY, (bench_device_id(i % n), lon, lat), prepare=True)
            hits += len(await cur.fetchall())
            done += 1
            i += step
    return done, hits


async def run(n_devices: int, duration_s: float, connections: int) -> BaselineResult:
    try:
        version, zones = await asyncio.to_thread(setup, n_devices)
    except psycopg.Error as exc:
        return BaselineResult(False, f"PostGIS not available: {str(exc).strip().splitlines()[0]}")
    positions = device_positions(n_devices)
    t0 = time.perf_counter()
    results = await asyncio.gather(
        *(_worker(positions, k, connections, t0 + duration_s) for k in range(connections))
    )
    elapsed = time.perf_counter() - t0
    return BaselineResult(
        True, f"PostGIS {version}", zones, sum(r[0] for r in results), elapsed, sum(r[1] for r in results)
    )


def cleanup() -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    r = asyncio.run(run(args.devices, args.duration, args.connections))
    if not r.available:
        print(r.detail)
        return
    print(
        f"{r.detail}: {r.zones} zones, {r.fixes} fixes in {r.seconds:.1f} s = {r.rate:,.0f} fixes/s ({r.hits} hits)"
    )
    cleanup()


if __name__ == "__main__":
    main()
