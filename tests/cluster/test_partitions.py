"""Partitions of the cases over several instances, on the real PostgreSQL (no subprocesses).

Each "instance" is a real :class:`~emon.runtime.Runtime` (not started): the test drives its partition
owner's renew periods itself, so who holds what is checked after every period, deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from emon.cluster.owner import PartitionOwner
from emon.partitioning import fair_share, lease_name, partition_of, plan
from emon.runtime import Runtime
from emon.storage.postgres import drop_schema
from tests.harness import PG_URL, isolated_settings

pytestmark = pytest.mark.integration
P = 8
TTL_S = 0.6
RENEW_S = 0.2


@contextlib.asynccontextmanager
async def instances(*names: str, **counts: int) -> AsyncIterator[list[Runtime]]:
    """Runtimes (not started) on one schema: ``names`` with P partitions, and ``counts``' keys with the
    partition count given for each (a cluster that disagrees)."""
    base = isolated_settings(partitions=P, lease_s=TTL_S, lease_renew_s=RENEW_S)
    wanted = {**dict.fromkeys(names, P), **counts}
    runtimes = [
        Runtime(base.model_copy(update={"instance_id": n, "partitions": k})) for n, k in wanted.items()
    ]
    try:
        for rt in runtimes:
            await rt.db.open()
            await rt.db.migrate()
        yield runtimes
    finally:
        for rt in runtimes:
            await rt.live.close()
            await rt.db.close()
        await drop_schema(PG_URL, base.db_schema)


def owner(rt: Runtime) -> PartitionOwner:
    assert rt.owner is not None
    return rt.owner


async def rounds(owners: Sequence[PartitionOwner], n: int) -> list[list[list[int]]]:
    """``n`` renew periods of every owner in turn; what each owned after each one. At no moment may two
    instances both own (hold and have restored) the same partition."""
    seen = []
    for _ in range(n):
        for o in owners:
            await o.balance()
            owned = [x.owned() for x in owners]
            flat = [k for ks in owned for k in ks]
            assert len(flat) == len(set(flat)), f"a partition owned twice: {owned}"
        seen.append([o.owned() for o in owners])
    return seen


def test_the_plan_takes_up_to_the_share_and_releases_one_at_a_time() -> None:
    assert fair_share(16, 1) == 16 and fair_share(16, 3) == 6 and fair_share(16, 0) == 16
    assert plan([], range(8), 3).take == (0, 1, 2)
    assert plan([0], [1, 2, 3], 3, start=1).take == (2, 3)
    assert plan(range(8), [], 4) == plan(range(8), [], 4)  # deterministic
    assert plan(range(8), [], 4).release == 7 and plan(range(8), [], 4).take == ()
    assert plan([1, 2], [3], 2).take == ()
    assert all(0 <= partition_of(f"case-{i}", 16) < 16 for i in range(100))
    assert partition_of("case-1", 16) == partition_of("case-1", 16)


async def test_instances_share_the_partitions_fairly_and_a_joiner_gets_its_share() -> None:
    async with instances("a", "b", "c") as (a, b, c):
        oa, ob, oc = owner(a), owner(b), owner(c)
        await rounds([oa], 1)
        assert oa.owned() == list(range(P))  # alone: every partition
        seen = await rounds([oa, ob], P)
        assert sorted(len(x) for x in seen[-1]) == [4, 4]
        assert sorted(seen[-1][0] + seen[-1][1]) == list(range(P))
        # One partition moves per renew period: in the first period after b announced itself, a gave up one.
        assert [len(x[0]) for x in seen[:3]] == [P, P - 1, P - 2]
        seen = await rounds([oa, ob, oc], P)
        assert sorted(len(x) for x in seen[-1]) == [2, 3, 3]
        assert sorted(k for ks in seen[-1] for k in ks) == list(range(P))
        assert await rounds([oa, ob, oc], 3) == [seen[-1]] * 3  # stable: no thrashing


async def test_a_dead_instances_partitions_are_taken_within_lease_plus_renew() -> None:
    async with instances("a", "b") as (a, b):
        oa, ob = owner(a), owner(b)
        await rounds([oa, ob], P)
        lost = oa.owned()
        assert len(lost) == P // 2
        died = time.monotonic()  # a stops renewing (killed)
        while set(ob.owned()) != set(range(P)):
            assert time.monotonic() - died <= TTL_S + RENEW_S + 0.3, f"b owns {ob.owned()}"
            await asyncio.sleep(RENEW_S)
            await ob.balance()


async def test_a_handed_over_partition_is_restored_where_its_last_owner_stopped() -> None:
    async with instances("a", "b") as (a, b):
        oa, ob = owner(a), owner(b)
        await rounds([oa], 1)
        await oa.feed()
        await ob.balance()  # b is live: a is above its share and hands one partition over
        await oa.balance()
        (moved,) = set(range(P)) - set(oa.owned())
        await ob.balance()
        assert ob.owned() == [moved]
        epochs = {o: o.held[moved].lease.epoch for o in (ob,)}
        assert epochs[ob] == 2  # taken over: the epoch went up, so a's epoch can no longer write
        restored = ob.held[moved].evaluated_through
        async with a.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT through FROM eval_partition_watermarks WHERE partitions = %s AND partition = %s",
                (P, moved),
            )
            row = await cur.fetchone()
        assert row is not None and restored == row[0]  # a persisted its last watermark before releasing


async def test_a_frozen_owner_has_every_write_for_a_lost_partition_refused() -> None:
    async with instances("a", "b") as (a, b):
        oa, ob = owner(a), owner(b)
        await rounds([oa, ob], P)
        frozen = oa.owned()
        await asyncio.sleep(TTL_S + 0.1)  # a is frozen past its leases; b takes them over
        await ob.balance()
        assert set(ob.owned()) == set(range(P))
        journal = await count(b, "SELECT count(*) FROM eval_journal")
        fenced = refused(frozen)
        # a thaws believing it still holds its partitions: every tick it tries is refused, nothing stored.
        assert all(oa.held[k].ready for k in frozen)
        await oa.tick(datetime.now(UTC))
        assert oa.owned() == []
        assert await count(b, "SELECT count(*) FROM eval_journal") == journal
        assert refused(frozen) - fenced == len(frozen)
        await oa.balance()  # and it does not take them back: they are held
        assert oa.owned() == []


def refused(partitions: Sequence[int]) -> float:
    """Writes refused (``emon_fenced_writes_total``) for the leases of ``partitions``, in this process."""
    return sum(
        REGISTRY.get_sample_value("emon_fenced_writes_total", {"lease": lease_name(k)}) or 0.0
        for k in partitions
    )


async def count(rt: Runtime, query: str) -> int:
    async with rt.db.pool.connection() as conn:
        cur = await conn.execute(query.encode())
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])
