"""MQTT → store → evaluation → stored decisions, through the real servers; state survives a restart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emon.geo import destination
from tests.harness import Running, eventually, publish, running_emon, start

pytestmark = pytest.mark.integration

HOME = (52.0907, 5.1214)  # Utrecht: the victim's home, centre of the exclusion zone
RESIDENCE = destination(*HOME, 90, 3000)  # the offender lives 3 km east


def case_doc(case_id: str, clear_s: float | None = None) -> dict[str, Any]:
    zone: dict[str, Any] = {
        "name": "victim-home",
        "circle": {"lat": HOME[0], "lon": HOME[1], "radius_m": 500},
    }
    if clear_s is not None:
        zone["clear_s"] = clear_s
    return {
        "case_id": case_id,
        "risk": "high",
        "offender_device": f"{case_id}-tag",
        "victim_device": f"{case_id}-victim",
        "residence": {"lat": RESIDENCE[0], "lon": RESIDENCE[1]},
        "order": {
            "exclusion_zones": [zone],
            "contact_ban_m": 300,
        },
    }


async def setup_case(em: Running, case_id: str, clear_s: float | None = None) -> None:
    async with em.client() as c:
        for device, kind in ((f"{case_id}-tag", "ankle_tag"), (f"{case_id}-victim", "victim_device")):
            r = await c.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            assert r.status_code == 201, r.text
        r = await c.post("/api/v1/cases", json=case_doc(case_id, clear_s))
        assert r.status_code == 201, r.text


async def walk(
    em: Running, device: str, distances_m: list[float], start: datetime, seq0: int = 0, every_s: float = 10
) -> None:
    """The tag reports positions at the given distances east of the zone centre, ``every_s`` apart."""
    fixes = []
    for i, d in enumerate(distances_m):
        lat, lon = destination(*HOME, 90, d)
        fixes.append(
            {
                "ts": (start + timedelta(seconds=every_s * i)).isoformat(),
                "lat": lat,
                "lon": lon,
                "acc": 5,
                "seq": seq0 + i,
            }
        )
    for fix in fixes:
        await publish(em.topic(f"emon/v1/fix/{device}"), json.dumps(fix))


async def evaluations(em: Running, case_id: str) -> list[dict[str, Any]]:
    async with em.client() as c:
        r = await c.get(f"/api/v1/cases/{case_id}/evaluations")
        assert r.status_code == 200
        return list(r.json())


async def test_entering_an_exclusion_zone_is_decided_and_explained(emon: Running) -> None:
    await setup_case(emon, "c1")
    start_ts = datetime.now(UTC) - timedelta(seconds=60)
    await walk(emon, "c1-tag", [1200, 800, 650, 400, 300, 200], start_ts)

    async def decided() -> list[dict[str, Any]]:
        events = await evaluations(emon, "c1")
        return events if any(e["type"] == "breach_update" for e in events) else []

    events = [e for e in await eventually(decided) if e["type"] != "locate_request"]
    # Pre-alert in the ring; the first fix inside is evidence (a possible state), the second proves
    # the breach (no single fix does, docs/safety.md); an update as the tag goes deeper.
    assert [e["type"] for e in events] == [
        "exclusion_pre_alert",
        "possible_breach",
        "exclusion_breach",
        "breach_update",
    ]
    event = events[2]
    assert event["rule"] == "exclusion:victim-home" and event["classification"] == "breach"
    assert event["live"] is True
    (evidence,) = event["evidence"]
    assert evidence["device_id"] == "c1-tag" and evidence["acc_m"] == 5
    assert event["distance_m"] == pytest.approx(300 - 500, abs=1.0)  # 200 m inside the edge


async def test_evaluation_state_survives_a_restart() -> None:
    async with running_emon() as em:
        await setup_case(em, "c2", clear_s=0)
        start_ts = datetime.now(UTC) - timedelta(seconds=110)
        await walk(em, "c2-tag", [900, 300, 250], start_ts, every_s=30)  # two fixes inside prove it

        async def breach() -> bool:
            return any(e["type"] == "exclusion_breach" for e in await evaluations(em, "c2"))

        await eventually(breach)
        await em.stop()
        again = await start(em.settings)
        try:
            # Still inside after the restart: no second breach; then out: the same episode ends.
            later = start_ts + timedelta(seconds=70)
            await walk(again, "c2-tag", [250, 700, 1100], later, seq0=10, every_s=15)

            async def ended() -> list[dict[str, Any]]:
                return [e for e in await evaluations(again, "c2") if e["type"] == "exclusion_breach_ended"]

            (end,) = await eventually(ended)
            events = await evaluations(again, "c2")
            breaches = [e for e in events if e["type"] == "exclusion_breach"]
            assert len(breaches) == 1
            assert end["episode"] == breaches[0]["episode"]
        finally:
            await again.stop()


class _Crashed:
    """Stands for an emon that died after committing (and acknowledging) a batch, before evaluating it."""

    async def consume(self, *args: object) -> None:
        return None


async def test_a_batch_stored_but_not_evaluated_before_a_crash_is_evaluated_at_start() -> None:
    async with running_emon() as em:
        await setup_case(em, "c3")
        at_migration = await em.runtime.cases.watermark()
        assert at_migration is not None  # it starts at the migration: even a first batch is recovered
        start_ts = datetime.now(UTC) - timedelta(seconds=100)
        await walk(em, "c3-tag", [3000], start_ts)  # evaluated normally: the watermark moves

        async def first_evaluated() -> bool:
            mark = await em.runtime.cases.watermark()
            return mark is not None and mark > at_migration

        await eventually(first_evaluated)
        em.runtime.pipeline.consumers[:] = [_Crashed()]
        await walk(em, "c3-tag", [2700, 2400], start_ts + timedelta(seconds=10), seq0=1)
        await walk(
            em,
            "c3-tag",
            [2100, 1800, 1500, 1200, 900, 600, 300, 200],
            start_ts + timedelta(seconds=30),
            seq0=3,
            every_s=6,
        )

        async def stored() -> bool:
            return await em.runtime.records.count_fixes() == 11

        await eventually(stored)
        assert not [e for e in await evaluations(em, "c3") if e["type"] == "exclusion_breach"]
        await em.stop()
        again = await start(em.settings)
        try:

            async def breach() -> list[dict[str, Any]]:
                return [e for e in await evaluations(again, "c3") if e["type"] == "exclusion_breach"]

            (event,) = await eventually(breach)
            assert event["evidence"][0]["device_id"] == "c3-tag"
            async with again.client() as c:
                alerts = (await c.get("/api/v1/alerts", params={"case_id": "c3"})).json()
            assert "exclusion_breach" in {a["type"] for a in alerts}
        finally:
            await again.stop()
