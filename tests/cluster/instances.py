"""Real ``emon serve`` processes on the shared servers, one schema / topic prefix / Redis prefix per test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import IO

import httpx

from emon.demo import free_port
from emon.settings import Secret, Settings
from tests.harness import ADMIN_TOKEN, PG_URL, cleanup


@dataclass
class Instance:
    name: str
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        )

    def start(self) -> None:
        """Start ``emon serve``; its log goes to a temporary file (kept for a failing test to read)."""
        self.log = tempfile.NamedTemporaryFile(prefix=f"emon-{self.name}-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from emon.cli import main; sys.exit(main(['serve']))"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    async def ready(self, within_s: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + within_s
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as c:
            while True:
                assert self.proc is not None and self.proc.poll() is None, f"{self.name} exited"
                with contextlib.suppress(httpx.HTTPError):
                    if (await c.get("/readyz")).status_code == 200:
                        return
                assert asyncio.get_running_loop().time() < deadline, f"{self.name} not ready"
                await asyncio.sleep(0.1)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.log is not None:
            self.log.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class Cluster:
    settings: Settings
    instances: list[Instance] = field(default_factory=list)

    def topic(self, suffix: str) -> str:
        return self.settings.topic(suffix)


def _env(settings: Settings, name: str, port: int, lease_s: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMON_")}
    env.update(
        {
            "EMON_DATABASE_URL": settings.database_url,
            "EMON_DB_SCHEMA": settings.db_schema,
            "EMON_REDIS_PREFIX": settings.redis_prefix,
            "EMON_MQTT_TOPIC_PREFIX": settings.mqtt_topic_prefix,
            "EMON_ADMIN_TOKEN": ADMIN_TOKEN,
            "EMON_HTTP_PORT": str(port),
            "EMON_BATCH_WAIT_MS": "5",
            "EMON_TICK_S": "0.5",
            "EMON_INSTANCE_ID": name,
            "EMON_MQTT_CLIENT_ID": f"{settings.mqtt_client_id}-{name}",
            "EMON_LEASE_S": str(lease_s),
            "EMON_LEASE_RENEW_S": str(lease_s / 3),
            "EMON_LOG_LEVEL": "WARNING",
        }
    )
    return env


@contextlib.contextmanager
def _stopping(instances: list[Instance]) -> Iterator[None]:
    try:
        yield
    finally:
        for i in instances:
            i.stop()


@contextlib.asynccontextmanager
async def cluster(names: tuple[str, ...] = ("a", "b"), lease_s: float = 3.0) -> AsyncIterator[Cluster]:
    """Instances named ``names`` (not started; start them in the order the test needs)."""
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        database_url=PG_URL,
        db_schema=f"t_{tag}",
        redis_prefix=f"t-{tag}",
        mqtt_topic_prefix=f"t/{tag}",
        mqtt_client_id=f"emon-test-{tag}",
        admin_token=Secret(ADMIN_TOKEN),
    )
    c = Cluster(settings, [Instance(n, p := free_port(), _env(settings, n, p, lease_s)) for n in names])
    try:
        with _stopping(c.instances):
            yield c
    finally:
        await cleanup(settings)
        for i in c.instances:
            await cleanup(
                Settings(
                    mqtt_client_id=f"{settings.mqtt_client_id}-{i.name}",
                    db_schema=settings.db_schema,
                    redis_prefix=settings.redis_prefix,
                )
            )
