"""A time-compressed subset of the scenario library, through the real Mosquitto, PostgreSQL and Redis.

Each scenario plays real MQTT devices against a running emon and compares the alerts emon raised
(via the API and the victim's notify topic) with the alerts the scenario expects — including the
scenarios where no alert is expected. They run concurrently, each on its own case and devices.
"""

from __future__ import annotations

import asyncio

import pytest

from simulators.runner import run_scenario
from simulators.scenario import load_scenario
from tests.harness import ADMIN_TOKEN, Running

pytestmark = pytest.mark.integration

# name → time compression for the test run (stationary devices tolerate more).
SUBSET = {
    "demo": None,
    "tamper": 60.0,
    "panic": None,
    "silent_tag": None,
    "lawful_distance": None,
    "lawful_near_edge": None,
}


@pytest.mark.timeout(240)
async def test_scenario_subset(emon: Running) -> None:
    async def one(name: str, compression: float | None) -> tuple[str, bool, str]:
        result = await run_scenario(
            load_scenario(name),
            mqtt_host="127.0.0.1",
            mqtt_port=1883,
            api_url=emon.base_url,
            token=ADMIN_TOKEN,
            topic_prefix=emon.settings.mqtt_topic_prefix,
            compression=compression,
        )
        return name, result.passed, result.report()

    results = await asyncio.gather(*(one(n, c) for n, c in SUBSET.items()))
    failed = [f"{name}:\n{report}" for name, passed, report in results if not passed]
    assert not failed, "\n\n".join(failed)
