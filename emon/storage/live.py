"""Live state in Redis: the latest fix of every device, for the API and for other workers.

One script call (one round trip) per batch through :meth:`LiveState.update`. A late fix never replaces a
newer latest, and a late last-heard time never a later one: the compare is done in Redis (a Lua script),
so several ingest processes (or a write kept while Redis was skipped, sent later) cannot move either back.

Redis is a cache, and a dead one must not slow ingest or alerting. Every command is bounded
(``REDIS_TIMEOUT_S`` to connect and to answer, no client-side retries), and after a failure Redis is
skipped for a short pause (:class:`Breaker`: 0.5 s, doubling to at most 5 s) instead of being tried
again by every batch and every read. While it is skipped, reads raise :class:`CacheUnavailable` (the
caller reads PostgreSQL instead and merges in what is kept here, see ``emon.storage.recall``) and
writes are kept in memory (the newest fix and last-heard time per device: bounded by the number of
devices) and written first thing once Redis answers again, so a Redis that comes back with old
contents does not report devices as silent that were heard from all along.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from emon import metrics
from emon.errors import StorageError
from emon.fix import Fix

log = logging.getLogger(__name__)
T = TypeVar("T")
# Connect and answer timeout of every Redis command (s). The client's defaults (5 s socket timeout,
# 10 retries with backoff) held every batch for seconds, or for a minute with a frozen Redis.
REDIS_TIMEOUT_S = 0.5

# KEYS = (latest fix JSON, latest fix time, last-heard time) hashes, by device id. ARGV[1] = msgpack
# [[device id, ...], [fix time in epoch s, ...], [fix JSON, ...]], ARGV[2] = msgpack [[device id, ...],
# [last-heard time in epoch s, ...]] ('' for none). One script call for a batch's fixes and last-heard
# times, its devices packed in one argument each: redis-py packed every argument of every command in
# Python (about 1 us each, 5 per fix), which was most of emon's CPU for Redis. A column per field, not
# a row per device: no tuple per device to build in Python or table to unpack in Lua. A fix replaces one
# with the same or an earlier fix time, a last-heard time only an earlier one; a time is stored with 17
# significant digits, which read back as the same double.
_UPDATE = """
local function newer(key, ids, times, strict)
  local cur = redis.call('HMGET', key, unpack(ids))
  local out = {}
  for j = 1, #ids do
    local c = cur[j] and tonumber(cur[j])
    if (not c) or c < times[j] or ((not strict) and c == times[j]) then out[#out + 1] = j end
  end
  return out
end
local n = 0
if ARGV[1] ~= '' then
  local ids, times, docs = unpack(cmsgpack.unpack(ARGV[1]))
  local new = newer(KEYS[2], ids, times, false)
  if #new > 0 then
    local ts, js = {}, {}
    for k = 1, #new do
      local j = new[k]
      ts[2 * k - 1], ts[2 * k] = ids[j], string.format('%.17g', times[j])
      js[2 * k - 1], js[2 * k] = ids[j], docs[j]
    end
    redis.call('HSET', KEYS[2], unpack(ts))
    redis.call('HSET', KEYS[1], unpack(js))
    n = #new
  end
end
if ARGV[2] ~= '' then
  local ids, times = unpack(cmsgpack.unpack(ARGV[2]))
  local new = newer(KEYS[3], ids, times, true)
  if #new > 0 then
    local seen = {}
    for k = 1, #new do
      local j = new[k]
      seen[2 * k - 1], seen[2 * k] = ids[j], string.format('%.17g', times[j])
    end
    redis.call('HSET', KEYS[3], unpack(seen))
  end
end
return n
"""
_SCRIPT_CHUNK = 1000  # devices per script call: one call never blocks Redis for long


class CacheUnavailable(StorageError):
    """Redis failed just now or is being skipped after a failure: read PostgreSQL instead."""


class Breaker:
    """When to skip Redis after a failure: a pause of ``first_s`` doubling per failure in a row, at
    most ``max_s``; the first success resets it. Times are monotonic seconds, passed in."""

    def __init__(self, first_s: float = 0.5, max_s: float = 5.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._pause_s = first_s
        self._until = 0.0
        self.open = False  # the last attempt failed

    def allows(self, now: float) -> bool:
        """True if Redis may be tried at ``now``."""
        return now >= self._until

    def failed(self, now: float) -> None:
        self._until = now + self._pause_s
        self._pause_s = min(self.max_s, self._pause_s * 2)
        self.open = True

    def succeeded(self) -> None:
        self._pause_s = self.first_s
        self._until = 0.0
        self.open = False


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


class _LatestJson(msgspec.Struct, gc=False):
    """:func:`fix_to_json`'s object as a struct: the same JSON (fields in the same order), encoded
    without building a dict per fix. Never tracked by the garbage collector: nothing it holds (strs,
    numbers, a datetime, an enum member) can refer back to it, so it is in no cycle."""

    device_id: str
    ts: datetime  # encoded by msgspec, its zero offset then written as isoformat writes it (below)
    lat: float
    lon: float
    acc_m: float
    seq: int | None
    batt: float | None
    src: str | None
    speed_mps: float | None
    heading_deg: float | None


_encode_json = msgspec.json.Encoder().encode
_encode_msgpack = msgspec.msgpack.Encoder().encode
# msgspec writes a time as ``isoformat`` does (the same digits, microseconds only when not 0), but a zero
# offset as "Z": ``isoformat`` itself cost 1.5 µs of the 3 a fix took here. The time is the only value
# before "lat" that can end in Z, and a quote inside a device id is escaped, so this is the time's end.
_ZULU = b'Z","lat":'
_ZERO_OFFSET = b'+00:00","lat":'


def _latest_json(fixes: Sequence[Fix]) -> list[str]:
    """The fixes' JSON as the update script stores it: :func:`fix_to_json`'s object, byte for byte."""
    # f.src as is: a FixSource is a str, encoded as its value. A str, not bytes: Redis' cmsgpack does
    # not read msgpack's bin type.
    return [
        _encode_json(
            _LatestJson(
                f.device_id, f.ts, f.lat, f.lon, f.acc_m, f.seq, f.batt, f.src, f.speed_mps, f.heading_deg
            )
        )
        .replace(_ZULU, _ZERO_OFFSET, 1)
        .decode()
        for f in fixes
    ]


class LiveState:
    """Latest fix per device, and last-seen time per device (any message), in Redis."""

    def __init__(
        self, client: aioredis.Redis, prefix: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.latest_key = f"{prefix}:latest"
        self.seen_key = f"{prefix}:seen"
        self._script = client.register_script(_UPDATE)
        self.breaker = Breaker()
        self._clock = clock
        # Written while Redis was skipped or failing; written to Redis before anything else.
        self._unsent_latest: dict[str, Fix] = {}
        self._unsent_seen: dict[str, datetime] = {}

    @classmethod
    def from_url(cls, url: str, prefix: str) -> LiveState:
        return cls(client_for(url), prefix)

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def _redis(self, op: Callable[[], Awaitable[T]]) -> T:
        """Run ``op`` against Redis, unless the breaker says to skip it; writes kept while Redis was
        skipped go first. Raises :class:`CacheUnavailable` (at most ``REDIS_TIMEOUT_S`` later)."""
        if not self.breaker.allows(self._clock()):
            raise CacheUnavailable("Redis skipped after a failure")
        try:
            if self._unsent_latest or self._unsent_seen:
                await self._write_unsent()
            result = await op()
        except (RedisError, OSError) as exc:
            if not self.breaker.open:
                log.warning("Redis failed, skipping it for short pauses until it answers: %s", exc)
            self.breaker.failed(self._clock())
            metrics.STORAGE_ERRORS.labels("redis").inc()
            raise CacheUnavailable(f"Redis failed: {exc}") from exc
        if self.breaker.open:
            log.warning("Redis answers again")
        self.breaker.succeeded()
        return result

    async def _write_unsent(self) -> None:
        latest, seen = self._unsent_latest, self._unsent_seen
        self._unsent_latest, self._unsent_seen = {}, {}
        try:
            await self._write(list(latest.values()), seen)
        except BaseException:
            self._keep(latest.values(), seen)  # with what was kept meanwhile
            raise

    async def _write(self, newest: Sequence[Fix], seen: Mapping[str, datetime]) -> None:
        """Write fixes (at most one per device) and last-heard times, never over a newer fix or a later
        time: one script call per ``_SCRIPT_CHUNK`` devices of each (one round trip for most batches;
        no pipeline, whose every use also asked Redis whether the script was loaded)."""
        fix_ids = [f.device_id for f in newest]
        fix_times = [f.ts.timestamp() for f in newest]
        docs = _latest_json(newest)
        # A batch's last-heard times are mostly one and the same: each distinct one converted once.
        stamps = {v: v.timestamp() for v in set(seen.values())}
        heard_ids, heard_times = list(seen), list(map(stamps.__getitem__, seen.values()))
        keys = [self.latest_key, self.latest_key + ":ts", self.seen_key]
        for i in range(0, max(len(fix_ids), len(heard_ids)), _SCRIPT_CHUNK):
            chunk = slice(i, i + _SCRIPT_CHUNK)
            fixes, heard = (
                [fix_ids[chunk], fix_times[chunk], docs[chunk]],
                [heard_ids[chunk], heard_times[chunk]],
            )
            args = [_encode_msgpack(fixes) if fixes[0] else b"", _encode_msgpack(heard) if heard[0] else b""]
            await self._script(keys=keys, args=args)

    def _keep(self, fixes: Collection[Fix], seen: Mapping[str, datetime]) -> None:
        """Keep writes for when Redis answers again: the newest fix and last-heard time per device."""
        _put_newest(self._unsent_latest, fixes)  # in place: O(batch), not O(devices), per batch
        put_later(self._unsent_seen, seen)

    async def update(self, fixes: Collection[Fix], seen: Mapping[str, datetime]) -> None:
        """A batch's live state in one round trip: keep, per device, the fix with the latest fix time
        (of ``fixes``, and of what Redis holds), and the later last-heard time (``seen``, UTC). While
        Redis is unavailable both are kept here and written once it answers again."""
        newest: dict[str, Fix] = {}
        _put_newest(newest, fixes)
        if not newest and not seen:
            return
        try:
            await self._redis(lambda: self._write(list(newest.values()), seen))
        except CacheUnavailable:
            self._keep(newest.values(), seen)

    async def set_latest(self, fixes: Collection[Fix]) -> None:
        """:meth:`update` with fixes only."""
        await self.update(fixes, {})

    async def latest(self, device_id: str) -> dict[str, Any] | None:
        raw = await self._redis(lambda: self.client.hget(self.latest_key, device_id))
        return None if raw is None else dict(msgspec.json.decode(raw))

    async def mark_seen(self, seen: Mapping[str, datetime]) -> None:
        """:meth:`update` with last-heard times only (when each device was last heard from: any
        message)."""
        await self.update((), seen)

    async def mark_seen_if_absent(self, seen: dict[str, datetime]) -> None:
        """Like :meth:`mark_seen`, but never over a time already there (a rebuild racing live ingest).
        Raises :class:`CacheUnavailable` (nothing kept: it is a copy of PostgreSQL)."""
        if not seen:
            return

        async def write() -> None:
            async with self.client.pipeline(transaction=False) as pipe:
                for k, v in seen.items():
                    pipe.hsetnx(self.seen_key, k, v.timestamp())
                await pipe.execute()

        await self._redis(write)

    async def last_seen(self, device_ids: Sequence[str] | None = None) -> dict[str, datetime]:
        """When each device (each of ``device_ids``, when given) was last heard from."""
        return await self._times_of(self.seen_key, device_ids)

    async def latest_times(self, device_ids: Sequence[str] | None = None) -> dict[str, datetime]:
        """Fix time of the latest fix of every device (of each of ``device_ids``, when given)."""
        return await self._times_of(self.latest_key + ":ts", device_ids)

    async def _times_of(self, key: str, device_ids: Sequence[str] | None) -> dict[str, datetime]:
        if device_ids is None:
            return _times(await self._redis(lambda: self.client.hgetall(key)))
        if not device_ids:
            return {}
        ids = list(device_ids)
        values = await self._redis(lambda: self.client.hmget(key, ids))
        return _times({d: v for d, v in zip(ids, values, strict=True) if v is not None})


def client_for(url: str) -> aioredis.Redis:
    """A Redis client whose every command answers or fails within ``REDIS_TIMEOUT_S`` (twice that at
    worst): one immediate retry on a connection error (a pooled connection Redis closed while it
    restarted), none on a timeout (the :class:`Breaker` decides when to try again)."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )


def _put_newest(newest: dict[str, Fix], fixes: Collection[Fix]) -> None:
    """Keep in ``newest``, per device, the fix with the latest fix time."""
    for f in fixes:
        cur = newest.get(f.device_id)
        if cur is None or f.ts >= cur.ts:
            newest[f.device_id] = f


def put_later(into: dict[str, datetime], times: Mapping[str, datetime]) -> None:
    """Keep in ``into``, per device, the later of its time there and in ``times``."""
    for k, v in times.items():
        cur = into.get(k)
        into[k] = v if cur is None else max(cur, v)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _times(raw: Mapping[bytes | str, bytes | str]) -> dict[str, datetime]:
    """A hash of epoch-second times by device → UTC datetimes by device. Every device's time, read on
    every alerting tick: mapped in C, with no Python call per device (a client answers in bytes, or in
    str throughout when it decodes responses)."""
    if not raw:
        return {}
    ids = map(_text, raw) if isinstance(next(iter(raw)), str) else map(bytes.decode, raw)  # type: ignore[arg-type]
    at = map(datetime.fromtimestamp, map(float, raw.values()), itertools.repeat(UTC))
    return dict(zip(ids, at, strict=True))
