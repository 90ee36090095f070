"""A real PostgreSQL schema and Redis prefix, with a pipeline over them (no MQTT)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis

from emon.device import Device, DeviceKind, DeviceRegistry
from emon.ingest.pipeline import Pipeline, RawMessage
from emon.storage.live import LiveState
from emon.storage.postgres import Database, drop_schema
from emon.storage.records import Records
from tests.harness import PG_URL

REDIS_URL = "redis://127.0.0.1:6379/0"


class CountingRecords(Records):
    """The real records, counting the transactions the pipeline asks for."""

    calls = 0

    async def store_batch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.calls += 1
        return await super().store_batch(*args, **kwargs)


@dataclass
class Store:
    db: Database
    records: CountingRecords
    live: LiveState
    registry: DeviceRegistry

    def pipeline(self, **kwargs: object) -> Pipeline:
        return Pipeline(self.records, self.live, self.registry, **kwargs)  # type: ignore[arg-type]

    async def scalar(self, query: str, *params: object) -> object:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(query.encode(), params or None)
            row = await cur.fetchone()
            return None if row is None else row[0]

    async def execute(self, query: str) -> None:
        async with self.db.pool.connection() as conn:
            await conn.execute(query.encode())
            await conn.commit()


@contextlib.asynccontextmanager
async def open_store() -> AsyncIterator[Store]:
    tag = uuid.uuid4().hex[:10]
    schema, prefix = f"t_st_{tag}", f"t-st-{tag}"
    db = Database(PG_URL, schema)
    await db.open()
    live = LiveState.from_url(REDIS_URL, prefix)
    try:
        await db.migrate()
        registry = DeviceRegistry(
            [Device("tag-1", DeviceKind.ANKLE_TAG), Device("tag-2", DeviceKind.ANKLE_TAG)]
        )
        yield Store(db, CountingRecords(db), live, registry)
    finally:
        await live.close()
        await db.close()
        await drop_schema(PG_URL, schema)
        r = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in r.scan_iter(match=f"{prefix}:*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()


def message(topic: str, payload: bytes) -> RawMessage:
    return RawMessage(topic, payload, time.time(), time.monotonic())
