"""The raw load generator on the real broker: offenders given a crossing report their position on it at
the publish time; every other device keeps its fixed position (same payload shape, per-device seq)."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid

import pytest

from benchmarks import e2e_tracks as tracks
from benchmarks.e2e_publisher import publish_raw
from benchmarks.e2e_setup import device_positions
from emon.geo import geodesic_m
from tests.harness import listening

pytestmark = pytest.mark.integration


async def test_a_crossing_device_moves_on_its_track_and_the_others_stand_still() -> None:
    prefix = f"t-bench-{uuid.uuid4().hex[:8]}"
    n, rate, duration = 20, 100.0, 2.0  # a fix every 0.2 s per device
    homes = device_positions(n)
    crossing = tracks.Crossing.through(*tracks.zone_centre(*homes[0], 0), tracks.heading_deg(0), 1.0)
    async with listening([f"{prefix}/emon/v1/fix/#"]) as queue:
        stats = await asyncio.to_thread(publish_raw, n, rate, duration, prefix, crossings={0: crossing})
        got: dict[str, list[dict[str, float]]] = {}
        async with asyncio.timeout(10):
            for _ in range(stats.acked):
                topic, payload = await queue.get()
                got.setdefault(topic.rsplit("/", 1)[1], []).append(json.loads(payload))
    assert stats.sent == stats.acked == 200
    moving = got["bench-000000"]
    assert [m["seq"] for m in moving] == list(range(1, 11))
    # on the line through the zone centre, moving at the track's speed between publish times
    for a, b in itertools.pairwise(moving):
        metres = geodesic_m(a["lat"], a["lon"], b["lat"], b["lon"])
        assert metres == pytest.approx(tracks.SPEED_MPS * (b["ts"] - a["ts"]), abs=0.5)
    passed = min(geodesic_m(crossing.lat_c, crossing.lon_c, m["lat"], m["lon"]) for m in moving)
    assert passed < tracks.SPEED_MPS * 0.2  # it goes through the centre (within one report)
    still = got["bench-000001"]
    assert {(m["lat"], m["lon"]) for m in still} == {(round(homes[1][0], 6), round(homes[1][1], 6))}
    assert all(m["acc"] == 8.0 for ms in got.values() for m in ms)
