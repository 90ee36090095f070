"""Readiness tells the truth: a stalled store and a dead background task make /readyz not ready and
show in the metrics; a dead task ends `emon serve` with a non-zero exit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime

import pytest

from tests.harness import Running, cleanup, eventually, isolated_settings, publish, running_emon
from tests.ingest.test_ingest_integration import register
from tests.storage.private_pg import PrivatePostgres

pytestmark = pytest.mark.integration


async def ready(em: Running) -> tuple[int, dict[str, object]]:
    async with em.client(token=None) as c:
        r = await c.get("/readyz")
    return r.status_code, r.json()


async def metric(em: Running, name: str) -> float:
    async with em.client(token=None) as c:
        text = (await c.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_readyz_is_not_ready_while_storage_is_stalled_and_ready_again_after() -> None:
    with PrivatePostgres() as pg:
        async with running_emon(database_url=pg.url, stall_s=1.0) as em:
            await register(em, "tag-s")
            assert (await ready(em))[0] == 200
            await asyncio.to_thread(pg.stop)
            fix = {"ts": datetime.now(UTC).isoformat(), "lat": 52.0, "lon": 5.0, "acc": 5, "seq": 1}
            await publish(em.topic("emon/v1/fix/tag-s"), json.dumps(fix))

            async def stalled() -> dict[str, object] | None:
                status, body = await ready(em)
                return body if status == 503 and body["checks"]["ingest"] is False else None  # type: ignore[index]

            body = await eventually(stalled, within=15, interval=0.2)
            assert body["ingest"]["waiting"] >= 1 and body["ingest"]["stalled"] is True  # type: ignore[index]
            assert await metric(em, "emon_ingest_stalled") == 1
            assert await metric(em, "emon_ingest_waiting_messages") >= 1
            assert await metric(em, "emon_ingest_queue_depth") >= 1  # the batch being stored counts

            await asyncio.to_thread(pg.start)

            async def recovered() -> bool:
                status, _ = await ready(em)
                return status == 200 and await em.runtime.records.count_fixes() == 1

            await eventually(recovered, within=30, interval=0.2)
            assert await metric(em, "emon_ingest_stalled") == 0


async def test_a_dead_background_task_makes_readyz_not_ready(emon: Running) -> None:
    called: list[str] = []
    emon.runtime.on_fatal = called.append

    async def doomed() -> None:
        raise RuntimeError("a bug")

    emon.runtime.spawn("doomed", doomed())

    async def not_ready() -> dict[str, object] | None:
        status, body = await ready(emon)
        return body if status == 503 else None

    body = await eventually(not_ready, within=5)
    assert body["dead_tasks"] == ["doomed"] and body["checks"]["loops"] is False  # type: ignore[index]
    assert called == ["doomed"] and emon.runtime.fatal == "doomed"
    assert await metric(emon, 'emon_background_task_up{task="doomed"}') == 0


SERVE_WITH_A_DYING_TASK = textwrap.dedent(
    """
    import asyncio, sys
    import uvicorn
    from emon.api.app import create_app
    from emon.cli import run_server
    from emon.settings import Settings

    settings = Settings.from_env()
    app = create_app(settings)
    rt = app.state.rt
    opened = rt.open

    async def open_then_die():
        await opened()

        async def doomed():
            await asyncio.sleep(0.5)
            raise RuntimeError("a background loop's bug")

        rt.spawn("doomed", doomed())

    rt.open = open_then_die
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=settings.http_port, log_level="warning"))
    sys.exit(run_server(server, rt))
    """
)


async def test_a_dead_background_task_ends_the_process_with_a_non_zero_exit() -> None:
    settings = isolated_settings()
    env = {
        **os.environ,
        **{
            k: str(v)
            for k, v in {
                "EMON_DATABASE_URL": settings.database_url,
                "EMON_DB_SCHEMA": settings.db_schema,
                "EMON_REDIS_PREFIX": settings.redis_prefix,
                "EMON_MQTT_TOPIC_PREFIX": settings.mqtt_topic_prefix,
                "EMON_MQTT_CLIENT_ID": settings.mqtt_client_id,
                "EMON_HTTP_PORT": settings.http_port,
            }.items()
        },
    }
    try:
        started = time.monotonic()
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", SERVE_WITH_A_DYING_TASK],
            env=env,
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == 1, proc.stderr.decode()[-2000:]
        assert b"background task doomed ended" in proc.stderr
        assert time.monotonic() - started < 30
    finally:
        await cleanup(settings)
