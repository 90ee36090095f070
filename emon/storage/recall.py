"""Live state that survives losing Redis: what Redis no longer holds is read back from PostgreSQL.

Redis is a cache (the latest fix and last-heard time of every device). When it is flushed, restarted
empty or unreachable, silence detection must still see when each device was last heard from, and
``/devices/{id}/latest`` must still answer: both fall back to PostgreSQL for the devices Redis does not
know, and put what they read back into Redis (never over a newer value written meanwhile). While
Redis is failing or skipped (``emon.storage.live.Breaker``), every read comes from PostgreSQL at no
extra cost of waiting for Redis, merged with what this process holds for Redis but has not sent yet
(the later time, the newer fix wins): PostgreSQL has no record of a device heard only through acks,
duplicate fixes or dead letters, which must not be reported silent because Redis is down.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from emon.storage.live import CacheUnavailable, LiveState, client_for, fix_to_json, put_later
from emon.storage.records import Records


class RecallingLive(LiveState):
    """:class:`LiveState` whose reads fall back to PostgreSQL (``records``) for the devices named by
    ``devices()`` that Redis does not hold (or for all of them while Redis is unreachable)."""

    def __init__(
        self, client: aioredis.Redis, prefix: str, records: Records, devices: Callable[[], Collection[str]]
    ) -> None:
        super().__init__(client, prefix)
        self.records = records
        self.devices = devices

    @classmethod
    def connect(
        cls, url: str, prefix: str, records: Records, devices: Callable[[], Collection[str]]
    ) -> RecallingLive:
        """One over a new Redis client for ``url``."""
        return cls(client_for(url), prefix, records, devices)

    async def latest(self, device_id: str) -> dict[str, Any] | None:
        try:
            cached = await super().latest(device_id)
        except CacheUnavailable:
            cached = None
        if cached is not None:
            return cached
        held = self._unsent_latest.get(device_id)
        found = await self.records.latest_fixes([device_id])
        if device_id in found and (held is None or found[device_id][0].ts > held.ts):
            fix = found[device_id][0]
            await self.set_latest([fix])  # kept for later if Redis is unavailable
            return fix_to_json(fix)
        return None if held is None else fix_to_json(held)

    async def last_seen(self, device_ids: Sequence[str] | None = None) -> dict[str, datetime]:
        try:
            seen = await super().last_seen(device_ids)
        except CacheUnavailable:
            seen = {}
        missing = [d for d in (self.devices() if device_ids is None else device_ids) if d not in seen]
        if missing:
            recalled = await self.records.last_received(missing)
            seen.update(recalled)
            with contextlib.suppress(CacheUnavailable):  # a copy of PostgreSQL: refilled next time
                await self.mark_seen_if_absent(recalled)
        put_later(seen, self._unsent_seen)
        return seen

    async def latest_times(self, device_ids: Sequence[str] | None = None) -> dict[str, datetime]:
        try:
            times = await super().latest_times(device_ids)
        except CacheUnavailable:
            times = {}
        missing = [d for d in (self.devices() if device_ids is None else device_ids) if d not in times]
        if missing:
            found = await self.records.latest_fixes(missing)
            times.update({d: fix.ts for d, (fix, _) in found.items()})
            await self.set_latest([fix for fix, _ in found.values()])
        put_later(times, {d: fix.ts for d, fix in self._unsent_latest.items()})
        return times
