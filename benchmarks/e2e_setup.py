"""Setting up one end-to-end benchmark run: schema, bulk devices and cases, an ``emon serve`` subprocess.

Devices and cases are written with SQL before emon starts (emon loads the registry and the open cases
at start), so registering 100,000 devices takes a second instead of 100,000 API calls.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from shapely.geometry import mapping

from benchmarks import e2e_tracks as tracks
from benchmarks.e2e_publisher import publish_raw
from emon.case import Case
from emon.geo import destination, geodesic_circle
from emon.storage.cases import case_document
from emon.storage.postgres import drop_schema
from simulators.load import LoadStats, _heads, bench_device_id, publish_load

PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ADMIN_TOKEN = "bench-admin-token-0123456789"
VENV_BIN = Path(sys.executable).parent


def device_positions(n: int) -> list[tuple[float, float]]:
    """(lat, lon) of ``bench-{i:06d}`` exactly as the load generator sends it (a static position)."""
    out = []
    for head in _heads(0, n):
        doc = json.loads(head + b"0}")
        out.append((float(doc["lat"]), float(doc["lon"])))
    return out


def bench_cases(n: int) -> list[Case]:
    """Every 10th device is an offender whose victim is the next device; 5 zones each (3 circles,
    2 polygons). The first is the small zone the offender drives through during the run
    (``benchmarks.e2e_tracks``, 400 m from home); the others are 2-6 km away."""
    return list(each_bench_case(n))


def each_bench_case(n: int) -> Iterator[Case]:
    """The cases of :func:`bench_cases`, one at a time (as ``emon serve`` reads them at start-up)."""
    pos = device_positions(n)
    for i in range(0, n - 1, 10):
        lat, lon = pos[i]
        zones: list[dict[str, Any]] = []
        for k in range(5):
            if k == 0:
                clat, clon = tracks.zone_centre(lat, lon, i)
                circle = {"lat": clat, "lon": clon, "radius_m": tracks.ZONE_RADIUS_M}
                zones.append({"name": "c0", "circle": circle, "prealert_m": tracks.PREALERT_M})
                continue
            zlat, zlon = destination(lat, lon, (i * 37 + k * 71) % 360, 1000 + 1000 * k)
            radius = 150.0 + 50 * k
            if k < 3:
                zones.append({"name": f"c{k}", "circle": {"lat": zlat, "lon": zlon, "radius_m": radius}})
            else:
                poly = json.loads(json.dumps(mapping(geodesic_circle(zlat, zlon, radius, 12))))
                zones.append({"name": f"p{k}", "geometry": poly})
        doc = {
            "case_id": f"bench-case-{i:06d}",
            "risk": "high",
            "offender_device": bench_device_id(i),
            "victim_device": bench_device_id(i + 1),
            "residence": {"lat": lat, "lon": lon},
            "order": {"exclusion_zones": zones, "contact_ban_m": 500},
        }
        yield Case.model_validate(doc)


@dataclass
class EmonProcess:
    proc: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def metrics_text(self, client: httpx.AsyncClient) -> str:
        r = await client.get(f"{self.base_url}/metrics", timeout=10)
        r.raise_for_status()
        return r.text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def emon_env(tag: str, port: int, batch_max: int, batch_wait_ms: float) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        EMON_DATABASE_URL=PG_URL,
        EMON_DB_SCHEMA=f"bench_{tag}",
        EMON_REDIS_PREFIX=f"bench-{tag}",
        EMON_MQTT_TOPIC_PREFIX=f"bench/{tag}",
        EMON_MQTT_CLIENT_ID=f"emon-bench-{tag}",
        EMON_ADMIN_TOKEN=ADMIN_TOKEN,
        EMON_HTTP_PORT=str(port),
        EMON_BATCH_MAX=str(batch_max),
        EMON_BATCH_WAIT_MS=str(batch_wait_ms),
        EMON_LOG_LEVEL="WARNING",
    )
    return env


def prepare_schema(env: dict[str, str], n_devices: int, cases: list[Case]) -> None:
    """Drop and recreate the schema, run migrations, then bulk-insert devices and cases."""
    schema = env["EMON_DB_SCHEMA"]
    asyncio.run(drop_schema(PG_URL, schema))
    subprocess.run([str(VENV_BIN / "emon"), "migrate"], env=env, check=True, capture_output=True, timeout=120)
    with psycopg.connect(PG_URL, options=f"-c search_path={schema},public") as conn:
        with conn.cursor().copy("COPY devices (device_id, kind, report_interval_s) FROM STDIN") as cp:
            for i in range(n_devices):
                # Victims are the device after each offender (odd ids ending in 1).
                kind = "victim_device" if i % 10 == 1 else "ankle_tag"
                cp.write_row((bench_device_id(i), kind, 5))
        with conn.cursor().copy(
            "COPY cases (case_id, risk, offender_device, victim_device, document) FROM STDIN"
        ) as cp:
            for c in cases:
                cp.write_row(
                    (
                        c.case_id,
                        c.risk.value,
                        c.offender_device,
                        c.victim_device,
                        json.dumps(case_document(c)),
                    )
                )
        conn.commit()


def clear_redis(prefix: str) -> None:
    import redis

    r = redis.Redis()
    keys = list(r.scan_iter(f"{prefix}:*"))
    if keys:
        r.delete(*keys)
    r.close()


async def start_emon(env: dict[str, str], port: int, log_path: Path, timeout_s: float = 180) -> EmonProcess:
    """Start ``emon serve``; return once /readyz answers 200 (registry and cases loaded, MQTT up)."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurement
            [str(VENV_BIN / "emon"), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    em = EmonProcess(proc, port, env, log_path)
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"emon exited with {proc.returncode}; see {log_path}")
            try:
                r = await client.get(f"{em.base_url}/readyz", timeout=2)
                if r.status_code == 200:
                    return em
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    em.stop()
    raise RuntimeError(f"emon not ready after {timeout_s} s; see {log_path}")


async def publish(n: int, rate: float, duration: float, prefix: str, publishers: int) -> LoadStats:
    """``publishers`` 0: the raw-socket generator (default), offenders on their crossing tracks;
    ≥ 1: simulators.load (paho) processes, every device at a fixed position (no crossings)."""
    if publishers == 0:
        homes = await asyncio.to_thread(device_positions, n)
        crossings = await asyncio.to_thread(tracks.schedule, n, rate, duration, homes)
        return await asyncio.to_thread(publish_raw, n, rate, duration, prefix, crossings=crossings)
    return await publish_load(n, rate, duration, "127.0.0.1", 1883, prefix, 1, publishers)


def db_figures(schema: str) -> tuple[int, tuple[float, float, float]]:
    """Fixes stored, and publish → stored per fix p50/p95/p99 in seconds (``received_at − ts``)."""
    with psycopg.connect(PG_URL) as conn:
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        row = conn.execute(
            "SELECT count(*), percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM received_at - ts)) FROM fixes"
        ).fetchone()
    assert row is not None
    q = row[1] or [math.nan] * 3
    return int(row[0]), (float(q[0]), float(q[1]), float(q[2]))
