"""Cases spread over two ``emon serve`` processes; one is killed -9 and never restarted.

Each instance evaluates its share of the partitions (seen in /readyz); a breach in a case that was on the
killed instance, starting after the kill, is alerted by the survivor within the documented bound
(lease + renew + restore and evaluation), exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import aiomqtt
import pytest

from emon.partitioning import partition_of
from emon.settings import Settings
from tests.cluster.instances import cluster
from tests.cluster.test_failover import (
    BOUND_S,
    LEASE_S,
    _balanced,
    approach,
    devices,
    owned,
    proximity_alerts,
    register,
    victim_fix,
)
from tests.harness import eventually

pytestmark = pytest.mark.integration
P = Settings().partitions


def case_in(partitions: list[int]) -> str:
    """The first case id ``case-<n>`` whose partition is one of ``partitions``."""
    return next(f"case-{n}" for n in range(1, 1000) if partition_of(f"case-{n}", P) in partitions)


@pytest.mark.timeout(120)
async def test_a_breach_in_a_case_of_the_killed_instance_is_alerted_by_the_survivor_within_the_bound() -> (
    None
):
    async with cluster(lease_s=LEASE_S) as c:
        a, b = c.instances
        a.start()
        await a.ready()
        b.start()
        await b.ready()
        await eventually(lambda: _balanced(a, b), within=40, interval=0.2)
        on_a, on_b = await owned(a), await owned(b)
        assert set(on_a).isdisjoint(on_b) and len(on_a) == len(on_b) == P // 2
        case_a, case_b = case_in(on_a), case_in(on_b)
        await register(a, case_a)
        await register(a, case_b)
        async with aiomqtt.Client("127.0.0.1", 1883) as pub:
            # While both live, the case on b's partitions is evaluated and alerted there.
            await approach(pub, c, 0, case_b)
            assert len(await eventually(lambda: proximity_alerts(a, case_b), within=5)) == 1
            for case in (case_a, case_b):
                await pub.publish(c.topic(f"emon/v1/fix/{devices(case)[1]}"), victim_fix(), qos=1)
            a.signal(signal.SIGKILL)
            breach_at = time.monotonic()  # the breach in a's case starts after the kill
            await approach(pub, c, 100, case_a)
        alerts = await eventually(lambda: proximity_alerts(b, case_a), within=BOUND_S + 5, interval=0.1)
        took = time.monotonic() - breach_at
        assert took <= BOUND_S, f"breach alerted {took:.1f}s after it started (bound {BOUND_S}s)"
        # The survivor took every partition within the bound too (leases expire a few ms apart, so the
        # last may be taken one renew period after the first).
        await eventually(lambda: _all(owned(b)), within=max(0.1, breach_at + BOUND_S - time.monotonic()))
        await asyncio.sleep(1)
        assert len(await proximity_alerts(b, case_a)) == len(alerts) == 1
        assert len(await proximity_alerts(b, case_b)) == 1


async def _all(partitions: Any) -> bool:
    return len(await partitions) == P
