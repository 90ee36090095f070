"""Live state in Redis: the latest fix of every device, for the API and for other workers.

One pipelined round trip per batch. A late fix never replaces a newer latest: the compare is done in
Redis (a Lua script), so several ingest processes cannot race each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import redis.asyncio as aioredis

from emon.fix import Fix

# KEYS[1] = hash key; ARGV = (device id, fix time in epoch s, json) x n. One script call per chunk of
# devices rather than one EVALSHA per device: the Python client's per-command cost (13-16 us) was
# most of a batch's Redis time.
_SET_IF_NEWER = """
local n = 0
for i = 1, #ARGV, 3 do
  local cur = redis.call('HGET', KEYS[1] .. ':ts', ARGV[i])
  if (not cur) or tonumber(cur) <= tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1] .. ':ts', ARGV[i], ARGV[i + 1])
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    n = n + 1
  end
end
return n
"""
_SCRIPT_CHUNK = 1000  # devices per script call: one call never blocks Redis for long


def fix_to_json(fix: Fix) -> dict[str, Any]:
    return {
        "device_id": fix.device_id,
        "ts": fix.ts.isoformat(),
        "lat": fix.lat,
        "lon": fix.lon,
        "acc_m": fix.acc_m,
        "seq": fix.seq,
        "batt": fix.batt,
        "src": None if fix.src is None else fix.src.value,
        "speed_mps": fix.speed_mps,
        "heading_deg": fix.heading_deg,
    }


class LiveState:
    """Latest fix per device, and last-seen time per device (any message), in Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.latest_key = f"{prefix}:latest"
        self.seen_key = f"{prefix}:seen"
        self._script = client.register_script(_SET_IF_NEWER)

    @classmethod
    def from_url(cls, url: str, prefix: str) -> LiveState:
        return cls(aioredis.Redis.from_url(url), prefix)

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def set_latest(self, fixes: Sequence[Fix]) -> None:
        """Keep, per device, the fix with the latest fix time (one round trip)."""
        newest: dict[str, Fix] = {}
        for f in fixes:
            cur = newest.get(f.device_id)
            if cur is None or f.ts >= cur.ts:
                newest[f.device_id] = f
        if not newest:
            return
        args: list[str | float | bytes] = []
        for f in newest.values():
            args += (f.device_id, f.ts.timestamp(), msgspec.json.encode(fix_to_json(f)))
        step = 3 * _SCRIPT_CHUNK
        async with self.client.pipeline(transaction=False) as pipe:
            for i in range(0, len(args), step):
                await self._script(keys=[self.latest_key], args=args[i : i + step], client=pipe)
            await pipe.execute()

    async def latest(self, device_id: str) -> dict[str, Any] | None:
        raw = await self.client.hget(self.latest_key, device_id)
        return None if raw is None else dict(msgspec.json.decode(raw))

    async def mark_seen(self, seen: dict[str, datetime]) -> None:
        """Record when each device was last heard from (any message)."""
        if seen:
            await self.client.hset(self.seen_key, mapping={k: v.timestamp() for k, v in seen.items()})

    async def mark_seen_if_absent(self, seen: dict[str, datetime]) -> None:
        """Like :meth:`mark_seen`, but never over a time already there (a rebuild racing live ingest)."""
        if seen:
            async with self.client.pipeline(transaction=False) as pipe:
                for k, v in seen.items():
                    pipe.hsetnx(self.seen_key, k, v.timestamp())
                await pipe.execute()

    async def last_seen(self) -> dict[str, datetime]:
        raw = await self.client.hgetall(self.seen_key)
        return {_text(k): datetime.fromtimestamp(float(v), UTC) for k, v in raw.items()}

    async def latest_times(self) -> dict[str, datetime]:
        """Fix time of the latest fix of every device."""
        raw = await self.client.hgetall(self.latest_key + ":ts")
        return {_text(k): datetime.fromtimestamp(float(v), UTC) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
