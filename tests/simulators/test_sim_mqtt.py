"""The driver, the runner and the load generator against the real Mosquitto (127.0.0.1:1883)."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import pytest

from simulators.driver import DevicePlayer
from simulators.load import bench_device_id, publish_load
from simulators.runner import run_scenario
from simulators.scenario import Scenario
from simulators.stream import build_actions

pytestmark = pytest.mark.integration
HOST, PORT = "127.0.0.1", 1883


async def _collect(client: aiomqtt.Client, into: list[tuple[str, bytes]], until: int) -> None:
    async for m in client.messages:
        assert isinstance(m.payload, bytes)
        into.append((m.topic.value, m.payload))
        if len(into) >= until:
            return


async def test_driver_plays_the_exact_stream_and_acks_warnings(tiny: Scenario, prefix: str) -> None:
    received: list[tuple[str, bytes]] = []
    async with aiomqtt.Client(HOST, PORT) as spy:
        await spy.subscribe(f"{prefix}/#", qos=1)
        async with DevicePlayer(tiny, host=HOST, port=PORT, prefix=prefix) as player:
            loop = asyncio.get_running_loop()
            actions = build_actions(tiny, start=datetime.now(UTC), prefix=prefix)
            await player.play(actions, loop.time())
            await asyncio.wait_for(_collect(spy, received, len(actions)), 5)
            assert sorted(received) == sorted((a.topic, a.payload) for a in actions)
            for device in ("t-tag", "t-phone"):  # per device, in stream order
                mine = [(a.topic, a.payload) for a in actions if a.device_id == device]
                assert [r for r in received if r in mine] == mine
            assert any(t.endswith("/owntracks/victim/phone") for t, _ in received)
            batch = next(json.loads(p) for t, p in received if p.startswith(b"["))
            assert [f["seq"] for f in batch] == [3, 4]

            notify = {"notification_id": "n-1", "alert_id": "a-1", "type": "proximity_breach", "ts": "x",
                      "message": {"nl": "Let op", "en": "Watch out"}}  # fmt: skip
            await spy.publish(f"{prefix}/emon/v1/notify/t-phone", json.dumps(notify).encode(), qos=1)
            acks: list[tuple[str, bytes]] = []
            await asyncio.wait_for(_collect(spy, acks, 2), 5)  # our notify echoed, then the ack
            topic, body = acks[1]
            assert topic == f"{prefix}/emon/v1/ack/t-phone"
            ack = json.loads(body)
            assert (ack["notification_id"], ack["alert_id"]) == ("n-1", "a-1")
            assert datetime.fromisoformat(ack["ts"]).tzinfo is not None
            for _ in range(100):  # the ack's PUBACK may land just after the spy saw the ack
                if player.stats.acks:
                    break
                await asyncio.sleep(0.01)
            assert player.stats.acks == 1
            assert player.stats.notifications[0].payload["type"] == "proximity_breach"


class FakeApi:
    """In-memory emon API: records registrations, opens one alert when the first fix is in."""

    def __init__(self) -> None:
        self.devices: list[Mapping[str, Any]] = []
        self.cases: list[Mapping[str, Any]] = []
        self.alerts_out: list[dict[str, Any]] = []

    async def register_device(self, device: Mapping[str, Any]) -> None:
        self.devices.append(device)

    async def register_case(self, case: Mapping[str, Any]) -> None:
        self.cases.append(case)

    async def alerts(self, case_id: str) -> list[Any]:
        if not self.alerts_out:
            self.alerts_out.append({"alert_id": "a1", "case_id": case_id, "type": "proximity_breach",
                                    "state": "open", "recipients": ["victim", "probation", "police"],
                                    "opened_at": datetime.now(UTC).isoformat()})  # fmt: skip
        return self.alerts_out


async def test_run_scenario_registers_plays_and_compares(tiny: Scenario, prefix: str) -> None:
    api = FakeApi()
    result = await run_scenario(
        tiny, mqtt_host=HOST, mqtt_port=PORT, api_url="http://unused", token="t", topic_prefix=prefix,
        api=api, slack_s=2, poll_s=0.1,
    )  # fmt: skip
    assert result.passed, result.report()
    assert api.devices == [
        {"device_id": "t-tag", "kind": "ankle_tag", "report_interval_s": 1},
        {"device_id": "t-phone", "kind": "victim_device", "report_interval_s": 1,
         "owntracks_topic": "owntracks/victim/phone"},
    ]  # fmt: skip
    assert api.cases == [tiny.case]
    assert "published 10/10" in result.report()


@pytest.mark.parametrize("processes", [1, 2])
async def test_load_generator_sends_every_seq_once(prefix: str, processes: int) -> None:
    n, rate, duration = 25, 2000.0, 0.5
    expected = int(rate * duration)
    seqs: dict[str, list[int]] = defaultdict(list)
    async with aiomqtt.Client(HOST, PORT) as spy:
        await spy.subscribe(f"{prefix}/emon/v1/fix/+", qos=1)
        stats = await publish_load(n, rate, duration, HOST, PORT, prefix, qos=1, processes=processes)

        async def drain() -> None:
            count = 0
            async for m in spy.messages:
                assert isinstance(m.payload, bytes)
                body = json.loads(m.payload)
                seqs[m.topic.value.rsplit("/", 1)[1]].append(body["seq"])
                assert set(body) == {"lat", "lon", "acc", "src", "seq", "ts"}
                count += 1
                if count == expected:
                    return

        await asyncio.wait_for(drain(), 10)
    assert stats.sent == stats.acked == expected
    assert stats.achieved_rate > rate * 0.8
    assert sorted(seqs) == [bench_device_id(i) for i in range(n)]
    assert all(sorted(s) == list(range(1, len(s) + 1)) for s in seqs.values())
