"""Locate now, end to end: fixes over MQTT → the engine's own ``locate_request`` → alerting → a command on the
device's ``emon/v1/cmd/{id}`` topic (the engine's and alerting's halves were built apart; here they meet)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from emon.geo import destination
from emon.storage import alerts as st
from tests.harness import eventually, listening, publish, running_emon

pytestmark = pytest.mark.integration
VICTIM_AT = (52.3702, 4.8952)
TAG, PHONE = "tag-l", "victim-l"


@pytest.mark.timeout(60)
async def test_an_engine_locate_request_for_a_stale_victim_fix_reaches_the_devices_command_topics() -> None:
    async with running_emon() as em:
        residence = destination(*VICTIM_AT, 0, 6000)
        case = {
            "case_id": "case-l",
            "risk": "high",
            "offender_device": TAG,
            "victim_device": PHONE,
            "residence": {"lat": residence[0], "lon": residence[1]},
            "order": {"contact_ban_m": 500},
        }
        async with em.client() as c:
            for device_id, kind in ((TAG, "ankle_tag"), (PHONE, "victim_device")):
                assert (
                    await c.post("/api/v1/devices", json={"device_id": device_id, "kind": kind})
                ).status_code == 201
            assert (await c.post("/api/v1/cases", json=case)).status_code == 201
        tag_topic, phone_topic = em.topic(f"emon/v1/cmd/{TAG}"), em.topic(f"emon/v1/cmd/{PHONE}")
        async with listening([tag_topic, phone_topic]) as inbox:
            now = datetime.now(UTC)
            # The victim's phone last reported 200 s ago; the tag, fresh, is 800 m from that position: inside
            # the 1,000 m pre-alert ring, and 200 s × 15 m/s of possible movement leaves the ban undecided.
            victim = {
                "ts": (now - timedelta(seconds=200)).isoformat(),
                "lat": VICTIM_AT[0],
                "lon": VICTIM_AT[1],
                "acc": 12,
                "seq": 1,
            }
            await publish(em.topic(f"emon/v1/fix/{PHONE}"), json.dumps(victim))
            lat, lon = destination(*VICTIM_AT, 0, 800)
            tag = {"ts": (now - timedelta(seconds=2)).isoformat(), "lat": lat, "lon": lon, "acc": 6, "seq": 1}
            await publish(em.topic(f"emon/v1/fix/{TAG}"), json.dumps(tag))

            got: dict[str, list[dict[str, Any]]] = {tag_topic: [], phone_topic: []}
            async with asyncio.timeout(15):
                while not got[phone_topic] or not got[tag_topic]:
                    topic, body = await inbox.get()
                    got[topic].append(json.loads(body))

        # The engine decided it (a locate_request of its own, never an alert) ...
        async with em.client() as c:
            decided = (await c.get("/api/v1/cases/case-l/evaluations")).json()
            alerts = (await c.get("/api/v1/alerts", params={"case_id": "case-l"})).json()
        requests = [d for d in decided if d["type"] == "locate_request"]
        assert requests and PHONE in {dev for r in requests for dev in r["detail"]["devices"]}
        assert "locate_request" not in [a["type"] for a in alerts]
        # ... and the phone and the tag were told to report, every_s from the engine, until a time.
        phone_cmd = got[phone_topic][0]
        assert phone_cmd["cmd"] == "locate" and phone_cmd["every_s"] == requests[0]["detail"]["every_s"]
        assert phone_cmd["until"] and got[tag_topic][0]["cmd"] == "locate"

        async def recorded() -> list[st.Delivery] | None:  # the worker commits just after the publish
            async with em.runtime.db.pool.connection() as conn:
                rows = await st.commands(conn, "case-l")
            return rows if rows and all(r.state == "delivered" for r in rows) else None

        rows = await eventually(recorded, within=5)
        assert {r.target for r in rows} == {f"emon/v1/cmd/{TAG}", f"emon/v1/cmd/{PHONE}"}
        # The phone is asked because its fix is stale (the tag, for the pre-alert: that second request of the
        # same step is not in /evaluations — equal (type, rule, at, episode) keys keep the first).
        assert [r.reason for r in rows if r.target.endswith(PHONE)] == ["stale_counterpart"]
        assert any(
            r["detail"]["reason"] == "stale_counterpart" and r["detail"]["devices"] == [PHONE]
            for r in requests
        )
