"""A panic carries positions: the CAP message to police and the room's alert show the victim's and the
offender's latest fixes (area circle = accuracy) with their ages; where none is fresh they say so, and a
locate-now (pursuit) goes to both devices. Real PostgreSQL, Redis, Mosquitto and a webhook server."""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from emon.fix import EventType, Fix
from tests.alerts.conftest import World
from tests.alerts.helpers import OFFENDER, VICTIM, dev
from tests.alerts.test_commands import listening
from tests.alerts.test_delivery import NS, check_cap, delivering

pytestmark = pytest.mark.integration
VICTIM_AT = (52.3601, 4.8855, 12.0)
OFFENDER_AT = (52.3655, 4.8790, 8.0)


def params(root: ET.Element) -> dict[str, str]:
    return {
        p.findtext("cap:valueName", namespaces=NS) or "": p.findtext("cap:value", namespaces=NS) or ""
        for p in root.findall("cap:info/cap:parameter", NS)
    }


async def test_panic_cap_carries_both_fresh_positions_with_ages_and_validates(world: World) -> None:
    now = datetime.now(UTC)
    await world.live.set_latest(
        [
            Fix(VICTIM, now - timedelta(seconds=20), *VICTIM_AT),
            Fix(OFFENDER, now - timedelta(seconds=40), *OFFENDER_AT),
        ]
    )
    service = world.service()
    cmd_topics = {f"{world.prefix}/emon/v1/cmd/{d}": d for d in (OFFENDER, VICTIM)}
    async with listening(list(cmd_topics)) as commands, delivering(service):
        await service.on_device_events([dev(EventType.PANIC, now, VICTIM)], now, time.monotonic())
        [posted] = await world.webhook.wait_for(1)
        root = check_cap(posted)  # XSD-valid CAP 1.2, signed
        p = params(root)
        assert p["alert_type"] == "panic"
        assert 15 <= float(p["victim_position_age_s"]) <= 30 and p["victim_position_fresh"] == "true"
        assert 35 <= float(p["offender_position_age_s"]) <= 50 and p["offender_position_fresh"] == "true"
        circles = [a.findtext("cap:circle", namespaces=NS) for a in root.findall("cap:info/cap:area", NS)]
        assert circles == [
            "52.365500,4.879000 0.010",
            "52.360100,4.885500 0.012",
        ]  # offender, victim; r = acc
        description = root.findtext("cap:info/cap:description", namespaces=NS) or ""
        assert "Geen" not in description and "nauwkeurigheid 12 m" in description

        # The room sees the same facts on the alert.
        [alert] = await service.open_alerts("case-1")
        assert alert["victim_position"]["lat"] == VICTIM_AT[0]
        positions = alert["explanation"]["positions"]
        assert positions["victim"]["fresh"] and positions["offender"]["fresh"]
        assert positions["victim"]["age_s"] == pytest.approx(20, abs=5)

        # A panic asks both devices for fresh fixes, every locate_every_s until the pursuit ends.
        got: dict[str, dict[str, object]] = {}
        async with asyncio.timeout(5):
            while len(got) < 2:
                topic, body = await commands.get()
                got[cmd_topics[topic]] = json.loads(body)
        assert {d: (c["cmd"], c["every_s"]) for d, c in got.items()} == {
            OFFENDER: ("locate", 30),
            VICTIM: ("locate", 30),
        }


async def test_panic_without_fresh_fixes_says_so_and_sends_locate_now_to_both(world: World) -> None:
    now = datetime.now(UTC)
    await world.live.set_latest(
        [Fix(OFFENDER, now - timedelta(seconds=900), *OFFENDER_AT)]
    )  # victim: none at all
    service = world.service()
    cmd_topics = {f"{world.prefix}/emon/v1/cmd/{d}": d for d in (OFFENDER, VICTIM)}
    async with listening(list(cmd_topics)) as commands, delivering(service):
        await service.on_device_events([dev(EventType.PANIC, now, VICTIM)], now, time.monotonic())
        [posted] = await world.webhook.wait_for(1)
        root = check_cap(posted)
        p = params(root)
        assert p["victim_position_fresh"] == "false" and "victim_position" not in p
        assert p["offender_position_fresh"] == "false" and 895 <= float(p["offender_position_age_s"]) <= 910
        description = root.findtext("cap:info/cap:description", namespaces=NS) or ""
        assert "Geen positie van het slachtoffer (victim) bekend" in description
        assert (
            "Geen verse positie van de verdachte (offender)" in description
            and "locate requested" in description
        )
        [area] = root.findall("cap:info/cap:area", NS)  # only the offender's (old) position is known
        assert "900 s oud" in (area.findtext("cap:areaDesc", namespaces=NS) or "")

        [alert] = await service.open_alerts("case-1")
        assert alert["explanation"]["positions"]["victim"] is None
        assert alert["explanation"]["positions"]["offender"]["fresh"] is False
        seen: set[str] = set()
        async with asyncio.timeout(5):
            while len(seen) < 2:
                topic, body = await commands.get()
                assert json.loads(body)["cmd"] == "locate"
                seen.add(cmd_topics[topic])
        detail = await service.get_alert(alert["alert_id"])
        assert sorted(d["target"] for d in detail["deliveries"] if d["channel"] == "command") == sorted(
            cmd_topics_suffix()
        )


def cmd_topics_suffix() -> list[str]:
    return [f"emon/v1/cmd/{OFFENDER}", f"emon/v1/cmd/{VICTIM}"]
