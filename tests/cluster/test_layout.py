"""One partition count and one protocol per cluster, stored in PostgreSQL and checked (real PostgreSQL,
real Runtime objects driven renew period by renew period); and writes fenced by the restored epoch."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from emon.runtime import Runtime
from emon.storage.lease import Fenced
from tests.cluster.test_partitions import count, instances, owner, rounds

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def cluster(**partitions: int) -> contextlib.AbstractAsyncContextManager[list[Runtime]]:
    """Instances named as the keywords, each with its own partition count, on one database schema."""
    return instances(**partitions)


async def test_an_instance_with_another_partition_count_evaluates_nothing() -> None:
    async with cluster(a=8, b=16) as (a, b):
        oa, ob = owner(a), owner(b)
        await rounds([oa], 1)
        assert oa.owned() == list(range(8))
        # b would take partition-8..15 (cases a evaluates too): it must refuse, loudly, and stay refused.
        for _ in range(4):
            await ob.balance()
            assert ob.owned() == [] and ob.held == {}
            assert REGISTRY.get_sample_value("emon_cluster_layout_mismatch") == 1.0  # (one process here)
            await oa.balance()
        assert oa.owned() == list(range(8))
        assert ob.refused is not None and "8 partitions" in ob.refused


async def test_a_live_one_owner_evaluation_lease_blocks_the_partition_owners() -> None:
    async with cluster(a=8) as (a,):
        oa = owner(a)
        await rounds([oa], 1)
        p = oa.held[0]
        async with a.db.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO cluster_leases (name, owner, epoch, expires_at) "
                "VALUES ('evaluation', 'old-code', 1, clock_timestamp() + interval '1 minute')"
            )
            await conn.commit()
        # A partition write is refused at once, before the next renew period notices.
        with pytest.raises(Fenced):
            await p.cases.save_evaluation({}, [], watermark=T0)
        await oa.balance()
        assert oa.owned() == [] and oa.refused is not None and "evaluation" in oa.refused
        async with a.db.pool.connection() as conn:
            await conn.execute("DELETE FROM cluster_leases WHERE name = 'evaluation'")
            await conn.commit()
        await oa.balance()
        assert oa.owned() == list(range(8)) and oa.refused is None


async def test_a_new_partition_count_starts_from_the_oldest_watermark_of_the_old_partitions() -> None:
    async with cluster(a=8, b=16, c=8) as (a, b, c):
        oa, ob, oc = owner(a), owner(b), owner(c)
        await rounds([oa], 1)
        await oa.release_all()  # every instance with 8 partitions stops; b starts with 16
        async with a.db.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO eval_watermark (id, through) VALUES (1, %s) ON CONFLICT (id) DO UPDATE "
                "SET through = excluded.through",
                (T0 - timedelta(days=1),),  # the one-owner watermark: long stale
            )
            await conn.execute("DELETE FROM eval_partition_watermarks")
            await conn.cursor().executemany(  # where the old partitions stopped: T0 + k minutes
                "INSERT INTO eval_partition_watermarks (partitions, partition, through) VALUES (8, %s, %s)",
                [(k, T0 + timedelta(minutes=k)) for k in range(8)],
            )
            await conn.commit()
        await ob.balance()
        assert ob.owned() == list(range(16))
        assert {p.evaluated_through for p in ob.held.values()} == {T0}
        assert ob.refused is None
        assert await count(b, "SELECT partitions FROM cluster_layout") == 16
        # an instance still configured with the old count, started now, evaluates nothing
        await oc.balance()
        assert oc.owned() == [] and oc.refused is not None


async def test_a_write_is_fenced_by_the_epoch_the_partition_was_restored_under() -> None:
    async with cluster(a=8) as (a,):
        oa = owner(a)
        await rounds([oa], 1)
        p = oa.held[0]
        restored = p.lease.epoch
        await p.cases.save_evaluation({}, [], watermark=T0)  # under the restored epoch: stored
        # The lease lapses and the same Partition takes it back (a new epoch) while a step computed
        # from the old state is still in flight: that step's write must be refused.
        async with a.db.pool.connection() as conn:
            await conn.execute(
                "UPDATE cluster_leases SET expires_at = clock_timestamp() WHERE name = 'partition-0'"
            )
            await conn.commit()
        assert await p.lease.try_hold() and p.lease.epoch == (restored or 0) + 1
        with pytest.raises(Fenced):
            await p.cases.save_evaluation({}, [], watermark=T0 + timedelta(minutes=1))
        await oa.balance()  # restored anew under the new epoch: writes pass again
        await p.cases.save_evaluation({}, [], watermark=T0 + timedelta(minutes=1))
