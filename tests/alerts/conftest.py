"""Fixtures for alert integration tests: own PostgreSQL schema, MQTT prefix and Redis prefix; a local webhook server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from emon.alerts.config import AlertConfig
from emon.alerts.service import AlertService
from emon.casebook import CaseBook
from emon.device import Device, DeviceKind, DeviceRegistry
from emon.hub import Hub
from emon.settings import Secret, Settings
from emon.storage.live import LiveState
from emon.storage.postgres import Database, drop_schema
from tests.alerts.helpers import OFFENDER, VICTIM, make_case

DB_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET = "webhook-test-secret"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookServer:
    """A tiny HTTP/1.1 server on 127.0.0.1: records every POST, answers with ``statuses`` in turn (then 200)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append(Received(headers, body))
                self.arrived.set()
                code = self.statuses.pop(0) if self.statuses else 200
                writer.write(f"HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def wait_for(self, count: int) -> list[Received]:
        async with asyncio.timeout(5.0):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@pytest.fixture
async def webhook() -> AsyncIterator[WebhookServer]:
    server = WebhookServer()
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    server.url = f"http://127.0.0.1:{port}/cap"
    yield server
    srv.close()
    await srv.wait_closed()


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    schema = f"t_alerts_{uuid.uuid4().hex[:10]}"
    database = Database(DB_URL, schema, max_size=6)
    await database.open()
    await database.migrate()
    yield database
    await database.close()
    await drop_schema(DB_URL, schema)


@pytest.fixture
async def live() -> AsyncIterator[LiveState]:
    """The production last-seen source (Redis), on its own key prefix."""
    state = LiveState.from_url(Settings().redis_url, f"t-alerts-{uuid.uuid4().hex[:10]}")
    yield state
    await state.client.delete(state.seen_key, state.latest_key, f"{state.latest_key}:ts")
    await state.close()


@dataclass
class World:
    db: Database
    settings: Settings
    hub: Hub
    casebook: CaseBook
    registry: DeviceRegistry
    live: LiveState
    webhook: WebhookServer
    prefix: str
    config: AlertConfig

    def service(self) -> AlertService:
        return AlertService(
            self.db, self.settings, self.hub, self.casebook, self.registry, self.live, config=self.config
        )


@pytest.fixture
def world(db: Database, webhook: WebhookServer, live: LiveState) -> World:
    prefix = f"t-alerts-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        mqtt_topic_prefix=prefix, webhook_url=webhook.url, webhook_secret=Secret(SECRET), db_schema=db.schema
    )
    registry = DeviceRegistry(
        [
            Device(OFFENDER, DeviceKind.ANKLE_TAG, report_interval_s=60),
            Device(VICTIM, DeviceKind.VICTIM_DEVICE, report_interval_s=60),
        ]
    )
    config = AlertConfig(
        poll_s=0.2, victim_resend_s=30.0, dispatch_backoff_base_s=0.05, dispatch_backoff_max_s=0.2
    )
    return World(db, settings, Hub(), CaseBook([make_case("high")]), registry, live, webhook, prefix, config)
