"""In-process fan-out of live messages (alert changes, positions) to monitoring-room streams.

Each subscriber gets a bounded queue; a subscriber that cannot keep up loses its oldest messages
and is told so (a ``gap`` message) — it never slows ingest or alerting down. The durable truth is
in PostgreSQL; a client that sees a gap reloads from the REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from emon.privacy import LiveMessage


class Hub:
    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._subscribers: set[asyncio.Queue[LiveMessage]] = set()

    def publish(self, kind: str, body: dict[str, Any]) -> None:
        """Never blocks, never raises."""
        for q in list(self._subscribers):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
                q.put_nowait(("gap", {}))
                if q.full():
                    continue
            q.put_nowait((kind, body))

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[LiveMessage]]:
        q: asyncio.Queue[LiveMessage] = asyncio.Queue(self.queue_size)
        self._subscribers.add(q)
        try:
            yield q
        finally:
            self._subscribers.discard(q)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
