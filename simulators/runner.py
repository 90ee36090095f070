"""Runs a scenario against a live emon: register, play the devices, watch the alerts, compare.

``run_scenario`` is the library entry point; ``main(argv)`` backs ``emon simulate``.
The emon API is reached through the :class:`AlertApi` port, so tests can pass an in-memory fake.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from simulators.compare import ScenarioResult, compare, observed_from_api, observed_from_notifications
from simulators.driver import DevicePlayer
from simulators.errors import ApiError, SimulatorError
from simulators.scenario import DeviceSpec, Scenario, anchored_case, library, load_scenario
from simulators.stream import build_actions


class AlertApi(Protocol):
    """What the runner needs from emon's HTTP API."""

    async def register_device(self, device: Mapping[str, Any]) -> None: ...
    async def register_case(self, case: Mapping[str, Any]) -> None: ...
    async def alerts(self, case_id: str) -> list[Any]: ...


class HttpAlertApi:
    """:class:`AlertApi` over HTTP with a bearer token; 409 on registration means "already there"."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._http = client

    async def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            resp = await self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ApiError(0, f"{method} {path}: {exc}") from exc
        if resp.status_code >= 400 and not (method == "POST" and resp.status_code == 409):
            raise ApiError(resp.status_code, f"{method} {path}: {resp.text[:300]}")
        return resp

    async def register_device(self, device: Mapping[str, Any]) -> None:
        await self._send("POST", "/api/v1/devices", json=dict(device))

    async def register_case(self, case: Mapping[str, Any]) -> None:
        await self._send("POST", "/api/v1/cases", json=dict(case))

    async def alerts(self, case_id: str) -> list[Any]:
        body = (await self._send("GET", "/api/v1/alerts", params={"case_id": case_id})).json()
        if not isinstance(body, list):
            raise ApiError(200, "GET /api/v1/alerts did not return a JSON list")
        return body


def device_registration(spec: DeviceSpec, compression: float) -> dict[str, Any]:
    """The device document for ``POST /api/v1/devices``. The report interval is divided by the
    compression (at least 1 s) so emon's silence timers run at the scenario's pace."""
    doc: dict[str, Any] = {
        "device_id": spec.device_id,
        "kind": spec.kind,
        "report_interval_s": max(1, round(spec.report_interval_s / compression)),
    }
    if spec.owntracks_topic is not None:
        doc["owntracks_topic"] = spec.owntracks_topic
    return doc


async def run_scenario(
    scenario: Scenario,
    *,
    mqtt_host: str,
    mqtt_port: int,
    api_url: str,
    token: str,
    topic_prefix: str = "",
    register: bool = True,
    compression: float | None = None,
    slack_s: float = 15.0,
    poll_s: float = 0.5,
    api: AlertApi | None = None,
) -> ScenarioResult:
    """Play ``scenario`` and compare emon's alerts with its expectations.

    Waits (real seconds) until the devices are played and every expectation is met, or until
    ``max(duration, within_s) / compression + slack_s``. ``slack_s`` real seconds are also allowed
    on top of each ``within_s`` for emon's own latency (ticks, confirmation timers).
    """
    comp = compression or scenario.time_compression
    async with httpx.AsyncClient(
        base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=10.0
    ) as http:
        port: AlertApi = api or HttpAlertApi(http)
        if register:
            for spec in scenario.devices:
                await port.register_device(device_registration(spec, comp))
            await port.register_case(anchored_case(scenario, datetime.now(UTC)))
        return await _play_and_watch(
            scenario, port, mqtt_host, mqtt_port, topic_prefix, comp, slack_s, poll_s
        )


async def _play_and_watch(
    scenario: Scenario,
    api: AlertApi,
    host: str,
    port: int,
    prefix: str,
    comp: float,
    slack_s: float,
    poll_s: float,
) -> ScenarioResult:
    loop = asyncio.get_running_loop()
    horizon_s = max([scenario.duration_s, *(e.within_s for e in scenario.expect)]) / comp + slack_s
    api_alerts: list[Any] = []
    poll_errors: list[str] = []
    async with DevicePlayer(scenario, host=host, port=port, prefix=prefix, compression=comp) as player:
        start, t0 = datetime.now(UTC), loop.time()
        actions = build_actions(scenario, start=start, prefix=prefix)

        def result() -> ScenarioResult:
            seen, bad = observed_from_api(api_alerts, start=start, compression=comp)
            seen += observed_from_notifications(player.stats.notifications, start=start, compression=comp)
            notes = [f"published {player.stats.published}/{len(actions)}, acks {player.stats.acks}"]
            if player.stats.max_lag_s > 0.5:
                notes.append(f"driver fell {player.stats.max_lag_s:.1f}s behind schedule")
            notes += poll_errors[-3:]
            return compare(
                scenario.name, scenario.expect, scenario.expect_none_of, seen,
                slack_s=slack_s * comp, unreadable=bad, notes=notes,
            )  # fmt: skip

        try:
            async with asyncio.TaskGroup() as tg:
                playing = tg.create_task(player.play(actions, t0))
                while loop.time() - t0 < horizon_s:
                    await asyncio.sleep(poll_s)
                    try:
                        api_alerts = await api.alerts(scenario.case_id)
                    except ApiError as exc:
                        poll_errors.append(str(exc))  # keep polling: emon may be restarting
                    if playing.done() and all(r.ok for r in result().rows):
                        break
        except* SimulatorError as group:
            raise group.exceptions[0] from None
        return result()


def _mqtt_host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    return parts.hostname or "127.0.0.1", parts.port or 1883


def main(argv: Sequence[str] | None = None) -> int:
    """``emon simulate SCENARIO...|--all``: exit 0 when every expectation of every scenario is met,
    1 when one is not, 2 on a usage, broker or API error."""
    p = argparse.ArgumentParser(prog="emon simulate", description="Play device scenarios against emon.")
    p.add_argument("scenarios", nargs="*", help="library names or paths of scenario JSON files")
    p.add_argument("--all", action="store_true", help="run every scenario in the library")
    p.add_argument("--list", action="store_true", help="list the library and exit")
    p.add_argument("--api", default=os.environ.get("EMON_API_URL", "http://127.0.0.1:8000"))
    p.add_argument("--token", default=os.environ.get("EMON_ADMIN_TOKEN", ""))
    p.add_argument(
        "--mqtt",
        default=os.environ.get("EMON_MQTT_URL") or None,
        help="default: the demo's broker when --api is a running `emon demo`, else mqtt://127.0.0.1:1883",
    )
    p.add_argument("--prefix", default=os.environ.get("EMON_MQTT_TOPIC_PREFIX", ""))
    p.add_argument("--speed", type=float, default=None, help="time compression (overrides the file)")
    p.add_argument("--no-register", action="store_true", help="devices and case already exist")
    p.add_argument("--parallel", action="store_true", help="play the scenarios at the same time")
    args = p.parse_args(argv)
    if args.list:
        for name in library():
            print(f"{name:<20} {load_scenario(name).description}")
        return 0
    names = library() if args.all else list(args.scenarios)
    if not names:
        p.print_usage(sys.stderr)
        return 2
    if args.mqtt is None:
        from emon.demo import demo_broker  # `emon demo` runs its own broker on a free port

        args.mqtt = demo_broker(args.api) or "mqtt://127.0.0.1:1883"
    host, port = _mqtt_host_port(args.mqtt)

    async def one(name: str) -> ScenarioResult:
        return await run_scenario(
            load_scenario(name), mqtt_host=host, mqtt_port=port, api_url=args.api, token=args.token,
            topic_prefix=args.prefix, register=not args.no_register, compression=args.speed,
        )  # fmt: skip

    async def play() -> list[ScenarioResult]:
        if args.parallel:
            return list(await asyncio.gather(*(one(n) for n in names)))
        return [await one(n) for n in names]

    try:
        results = asyncio.run(play())
    except (SimulatorError, OSError, ValueError) as exc:
        print(f"emon simulate: ERROR {exc}", file=sys.stderr)
        return 2
    for result in results:
        print(result.report())
    ok = all(r.passed for r in results)
    passed = sum(r.passed for r in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if ok else 1
