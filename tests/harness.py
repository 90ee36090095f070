"""A real emon for integration tests: uvicorn in-process, on its own schema, topic prefix and Redis prefix."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt
import httpx
import redis.asyncio as aioredis
import uvicorn

from emon.api.app import create_app
from emon.demo import free_port
from emon.runtime import Runtime
from emon.settings import Secret, Settings
from emon.storage.postgres import drop_schema

ADMIN_TOKEN = "test-admin-token-0123456789"
PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def isolated_settings(**overrides: Any) -> Settings:
    tag = uuid.uuid4().hex[:10]
    base = Settings(
        database_url=PG_URL,
        db_schema=f"t_{tag}",
        redis_prefix=f"t-{tag}",
        mqtt_topic_prefix=f"t/{tag}",
        mqtt_client_id=f"emon-test-{tag}",
        admin_token=Secret(ADMIN_TOKEN),
        http_port=free_port(),
        batch_wait_ms=5,
        tick_s=0.2,
        # The test process hosts many runtimes one after another: freezing each one's start-up objects
        # would exempt earlier tests' leftovers from collection and hide referrers from gc.get_referrers
        # (hypothesis's plugin then warns, an error here). tests/test_collector.py tests the freeze.
        gc_freeze=False,
    )
    return base.model_copy(update=overrides)


@dataclass
class Running:
    settings: Settings
    runtime: Runtime
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    def client(self, token: str | None = ADMIN_TOKEN) -> httpx.AsyncClient:
        """An HTTP client with a bearer token (None: no Authorization header at all)."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10)

    def topic(self, suffix: str) -> str:
        return self.settings.topic(suffix)

    async def token_for(self, role: str, units: Sequence[str] = ("*",), name: str | None = None) -> str:
        """A new user with ``role`` and ``units`` (default ``*``: every case) and a token of theirs,
        made through the admin API (``POST /users``, ``POST /users/{id}/tokens``)."""
        user_id = f"{role}-{uuid.uuid4().hex[:8]}"
        async with self.client() as admin:
            r = await admin.post(
                "/api/v1/users",
                json={"user_id": user_id, "name": name or user_id, "role": role, "units": list(units)},
            )
            assert r.status_code == 201, r.text
            r = await admin.post(f"/api/v1/users/{user_id}/tokens")
            assert r.status_code == 201, r.text
            return str(r.json()["token"])

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)


async def start(settings: Settings) -> Running:
    app = create_app(settings)
    rt: Runtime = app.state.rt
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=settings.http_port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(300):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    else:
        raise TimeoutError("emon did not start")
    await rt.wait_connected()
    return Running(settings, rt, server, task)


@contextlib.asynccontextmanager
async def running_emon(**overrides: Any) -> AsyncIterator[Running]:
    settings = isolated_settings(**overrides)
    em = await start(settings)
    try:
        yield em
    finally:
        if not em.task.done():
            await em.stop()
        await cleanup(settings)


async def cleanup(settings: Settings) -> None:
    await drop_schema(settings.database_url, settings.db_schema)
    r = aioredis.Redis.from_url(settings.redis_url)
    try:
        keys = [k async for k in r.scan_iter(match=f"{settings.redis_prefix}:*")]
        if keys:
            await r.delete(*keys)
    finally:
        await r.aclose()
    # Remove the persistent MQTT session of the test's client id.
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=settings.mqtt_client_id, clean_session=True):
        pass


async def publish(topic: str, payload: bytes | str, qos: int = 1) -> None:
    async with aiomqtt.Client("127.0.0.1", 1883) as client:
        await client.publish(topic, payload, qos=qos)


async def eventually(check: Any, within: float = 20.0, interval: float = 0.05) -> Any:
    """Poll an async ``check`` until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s (last value {value!r})")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def listening(topics: list[str]) -> AsyncIterator[asyncio.Queue[tuple[str, bytes]]]:
    """(topic, payload) of every message on ``topics`` (the shared broker, QoS 1) while the block runs."""
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    async with aiomqtt.Client("127.0.0.1", 1883) as client:
        for t in topics:
            await client.subscribe(t, qos=1)

        async def pump() -> None:
            async for m in client.messages:
                assert isinstance(m.payload, bytes)
                await queue.put((m.topic.value, m.payload))

        task = asyncio.create_task(pump())
        try:
            yield queue
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
