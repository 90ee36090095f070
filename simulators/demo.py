"""The demo loop behind ``emon demo``: play the ``demo`` scenario again and again, each round as a
new case with new devices (so every round opens fresh alerts), and print the result table."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from emon.settings import Settings
from simulators.runner import run_scenario
from simulators.scenario import Scenario, load_scenario


def renamed(scenario: Scenario, suffix: str) -> Scenario:
    """The same scenario with ``-{suffix}`` appended to the case id and every device id."""
    doc: dict[str, Any] = scenario.model_dump(mode="json")
    ids = {d["device_id"]: f"{d['device_id']}-{suffix}" for d in doc["devices"]}
    for d in doc["devices"]:
        d["device_id"] = ids[d["device_id"]]
        if d.get("owntracks_topic"):
            d["owntracks_topic"] = f"{d['owntracks_topic']}-{suffix}"
    case = doc["case"]
    case["case_id"] = f"{case['case_id']}-{suffix}"
    for key in ("offender_device", "victim_device"):
        if case.get(key):
            case[key] = ids[case[key]]
    return Scenario.model_validate(doc)


async def play_demo(
    settings: Settings, api_url: str, token: str, *, rounds: int | None = None, pause_s: float = 10.0
) -> None:
    """Run the demo scenario ``rounds`` times (forever if None), ``pause_s`` real seconds apart."""
    host, port = settings.mqtt_host_port
    base = load_scenario("demo")
    run = time.strftime("%H%M%S", time.gmtime())  # a restarted demo must not collide with old cases
    n = 0
    while rounds is None or n < rounds:
        n += 1
        result = await run_scenario(
            renamed(base, f"{run}-{n}"), mqtt_host=host, mqtt_port=port, api_url=api_url, token=token,
            topic_prefix=settings.mqtt_topic_prefix,
        )  # fmt: skip
        print(result.report(), flush=True)
        await asyncio.sleep(pause_s)
