"""Partition leases are renewed in a loop of their own (real PostgreSQL, real Runtime objects): a slow
restore or a failing heartbeat never lets the other leases lapse."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from emon.cluster.owner import PartitionOwner
from emon.runtime import Runtime
from tests.cluster.test_partitions import TTL_S, P, count, instances, owner, rounds

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def running(o: PartitionOwner) -> AsyncIterator[None]:
    """The owner's own loops (renewals, balancing, feed), without ticks."""
    o.tick_s = 3600.0
    task = asyncio.create_task(o.run())
    try:
        yield
    finally:
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=15)
        # A loop that swallowed its cancellation would hang here: fail with where every task stands.
        assert done, "\n".join(f"{t.get_name()}: {t.get_stack(limit=4)}" for t in asyncio.all_tasks())
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def held_by(rt: Runtime, name: str) -> int:
    return await count(
        rt,
        f"SELECT count(*) FROM cluster_leases WHERE name LIKE 'partition-%' AND owner = '{name}' "
        "AND expires_at > clock_timestamp()",
    )


async def test_a_restore_that_hangs_does_not_let_the_other_leases_lapse() -> None:
    async with instances("a") as (a,):
        oa = owner(a)
        await rounds([oa], 1)
        epochs = {k: p.lease.epoch for k, p in oa.held.items()}
        first = next(iter(oa.held))
        oa.held[first].lost()  # must be restored again: the restore will hang on a locked table
        async with a.db.pool.connection() as lock:
            await lock.execute("LOCK TABLE eval_partition_watermarks IN ACCESS EXCLUSIVE MODE")
            async with running(oa):
                await asyncio.sleep(3 * TTL_S)
                assert await held_by(a, "a") == P
            await lock.rollback()
        assert {k: p.lease.epoch for k, p in oa.held.items()} == epochs  # never lost, never retaken


async def test_leases_are_renewed_while_the_heartbeat_fails() -> None:
    async with instances("a") as (a,):
        oa = owner(a)
        await rounds([oa], 1)
        epochs = {k: p.lease.epoch for k, p in oa.held.items()}
        async with a.db.pool.connection() as conn:
            await conn.execute(
                "ALTER TABLE cluster_members ADD CONSTRAINT no_heartbeat CHECK (false) NOT VALID"
            )
            await conn.commit()
        async with running(oa):
            await asyncio.sleep(3 * TTL_S)
            assert await held_by(a, "a") == P
        assert {k: p.lease.epoch for k, p in oa.held.items()} == epochs
        assert oa.owned() == sorted(epochs)
