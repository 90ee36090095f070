"""The partitions this instance evaluates: taken, renewed, balanced and fed from PostgreSQL.

Cases are split into ``partitions`` by a stable hash of their id (:mod:`emon.partitioning`); each
partition has its own lease (:mod:`emon.storage.lease`). Every renew period an instance announces itself
(:class:`emon.storage.members.Members`) and renews the partitions it holds — in a loop of its own, so a
slow restore or hand-over never delays a renewal; the balancing loop checks the cluster's layout (one
partition count and protocol, :meth:`Members.layout`), takes free or expired partitions up to its fair
share ceil(partitions / live instances), and when above that share (an instance joined) hands one
partition over — after a last fenced persist — so partitions move one at a time. A dead instance's
partitions are free once their leases expire, and taken within ``ttl_s + renew_s`` seconds.

The feed reads what every instance stored once per poll (fixes and events stored after the partitions'
cursor, up to a cut-off at which no storing transaction is open) and hands each held partition the
fixes and events of its cases' devices, so both devices of a case meet at that case's owner.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from emon import metrics
from emon.alerts.service import AlertService
from emon.backoff import Backoff
from emon.case import Case
from emon.casebook import CaseBook
from emon.cluster.partition import MakeEvaluation, Partition
from emon.errors import StorageError
from emon.fix import DeviceEvent, Fix
from emon.partitioning import PARTITION_LEASE_PREFIX, PROTOCOL, fair_share, lease_name, partition_of, plan
from emon.storage.lease import Fenced
from emon.storage.members import Members
from emon.storage.postgres import DRIVER_ERRORS, Database
from emon.storage.records import Records
from emon.waiting import woken

log = logging.getLogger(__name__)

_DOWN: tuple[type[Exception], ...] = (StorageError, *DRIVER_ERRORS)


class PartitionOwner:
    """Holds this instance's fair share of the ``partitions`` partition leases and evaluates them.

    ``renew_s`` must be well under ``ttl_s`` (default 2 s and 6 s).
    """

    def __init__(
        self,
        db: Database,
        records: Records,
        casebook: CaseBook,
        alerts: AlertService,
        make_evaluation: MakeEvaluation,
        *,
        instance_id: str,
        partitions: int,
        ttl_s: float,
        renew_s: float,
        tick_s: float,
        poll_s: float = 0.2,
    ) -> None:
        self.db = db
        self.records = records
        self.casebook = casebook
        self.alerts = alerts
        self.make_evaluation = make_evaluation
        self.instance_id = instance_id
        self.partitions = partitions
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.tick_s = tick_s
        self.poll_s = poll_s
        self.members = Members(db, instance_id, ttl_s, partitions, PROTOCOL)
        self.refused: str | None = None  # why this instance may not evaluate now (cluster layout), if so
        self.held: dict[int, Partition] = {}
        self.live = 1  # live instances at the last heartbeat
        self.renewed = asyncio.Event()
        self._leases = asyncio.Lock()  # a renewal never overlaps giving a lease up (it would take it back)
        self.wake = asyncio.Event()
        # Where this instance starts looking for free partitions: instances do not all race for the same.
        self._start = zlib.crc32(instance_id.encode())

    def owned(self) -> list[int]:
        """The partitions this instance holds and has restored (evaluates now)."""
        return sorted(k for k, p in self.held.items() if p.ready)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._renewing(), name="partition-renew")
            tg.create_task(self._balancing(), name="partition-leases")
            tg.create_task(self._feeding(), name="partition-feed")
            tg.create_task(self._ticking(), name="partition-tick")

    async def consume(
        self,
        fixes: Sequence[Fix],
        events: Sequence[DeviceEvent],
        now: datetime,
        received_mono: float,
        stored_at: datetime | None = None,
    ) -> None:
        """A pipeline consumer that only wakes the feed: the batch is read back from PostgreSQL."""
        self.wake.set()

    async def case_changed(self, case: Case, version: int | None) -> None:
        """A case changed (through this instance's API or seen by sync): its partition's owner evaluates it anew."""
        p = self.held.get(partition_of(case.case_id, self.partitions))
        if p is None:
            return
        try:
            await p.case_changed(case, version)
        except Fenced as exc:
            log.warning("%s", exc)
            p.lost()

    # -- leases -----------------------------------------------------------------------------------

    async def balance(self) -> None:
        """One renew period, in one go (tests drive it): renew, then take, restore and hand over."""
        await self.renew()
        await self.rebalance()

    async def renew(self) -> None:
        """Heartbeat and renew every lease we hold. Runs in a loop of its own, never behind a restore or a
        hand-over, and renews even when the heartbeat fails: a lease let lapse costs a takeover."""
        try:
            self.live = await self.members.heartbeat()
        except _DOWN as exc:
            log.warning("partition leases: heartbeat failed (%s); renewing the leases anyway", exc)
        async with self._leases:
            for k, p in list(self.held.items()):
                if self.held.get(k) is p and not await p.lease.try_hold():
                    p.lost()
                    del self.held[k]

    async def rebalance(self) -> None:
        """Check the cluster's layout; restore what we hold but have not restored, take up to our share,
        hand one over if above it."""
        if await self._refused():
            return
        share = fair_share(self.partitions, self.live)
        for p in list(self.held.values()):
            if p.lease.epoch is not None and not p.ready:
                await self._restore(p)
        names = [lease_name(k) for k in range(self.partitions) if k not in self.held]
        free = [int(n.removeprefix(PARTITION_LEASE_PREFIX)) for n in await self.members.free(names)]
        step = plan(self.held.keys(), free, share, self._start)
        for k in step.take:
            p = Partition(
                k,
                self.partitions,
                self.db,
                self.instance_id,
                self.ttl_s,
                self.casebook,
                self.alerts,
                self.make_evaluation,
            )
            if await p.lease.try_hold():
                self.held[k] = p
                await self._restore(p)
        if step.release is not None and (q := self.held.get(step.release)) is not None:
            await self.hand_over(q)  # still renewed while it persists, removed from held just before release
        metrics.OWNED_PARTITIONS.set(len(self.owned()))

    async def _refused(self) -> bool:
        """True (and every partition given up) while this instance's partition count or protocol is not
        the cluster's, or a one-owner instance (protocol 1) holds the ``evaluation`` lease."""
        refused = await self.members.layout()
        if refused != self.refused:
            if refused is None:
                log.warning(
                    "cluster layout agreed (%d partitions, protocol %d): evaluating",
                    self.partitions,
                    PROTOCOL,
                )
            else:
                log.error("NOT EVALUATING: %s", refused)
        self.refused = refused
        metrics.LAYOUT_MISMATCH.set(0 if refused is None else 1)
        if refused is None:
            return False
        async with self._leases:
            for k in list(self.held):
                await self._release(self.held.pop(k))
        metrics.OWNED_PARTITIONS.set(0)
        return True

    async def hand_over(self, p: Partition) -> None:
        """Give partition ``p`` up: evaluate what was stored so far, persist the watermark (fenced), then
        release the lease at once, so the next owner restores exactly where we stopped."""
        try:
            await self._feed([p], await self.records.cutoff())
            await p.stop()
        except _DOWN as exc:  # Fenced is a StorageError
            log.warning("partition %d: last persist before handing over failed (%s)", p.index, exc)
        async with self._leases:
            if self.held.get(p.index) is p:
                del self.held[p.index]
            await self._release(p)
        log.warning("partition %d handed over", p.index)

    async def release_all(self) -> None:
        """A clean stop: persist where each partition stands, hand it over and leave, so the others take
        them without waiting."""
        for k in list(self.held):
            p = self.held.pop(k)
            try:
                await p.stop()
            except _DOWN as exc:
                log.warning("partition %d: could not persist its watermark at stop (%s)", p.index, exc)
            await self._release(p)
        await self.members.leave()
        metrics.OWNED_PARTITIONS.set(0)

    @staticmethod
    async def _release(p: Partition) -> None:
        p.lost()
        await p.lease.release()

    async def _restore(self, p: Partition) -> None:
        try:
            await p.restore()
        except Fenced as exc:
            log.warning("%s", exc)
            p.lost()
        except _DOWN as exc:
            log.warning("restoring partition %d failed (%s); retrying", p.index, exc)
        self.wake.set()

    async def _renewing(self) -> None:
        while True:
            await self.renew()
            self.renewed.set()
            await asyncio.sleep(self.renew_s)

    async def _balancing(self) -> None:
        while True:
            await self.renewed.wait()  # the first heartbeat counted the live instances
            try:
                await self.rebalance()
            except _DOWN as exc:
                log.warning("partition leases: PostgreSQL unreachable (%s)", exc)
            await asyncio.sleep(self.renew_s)

    # -- feed and ticks ---------------------------------------------------------------------------

    async def feed(self) -> None:
        """Evaluate, in every partition we own, what was stored since it last evaluated."""
        ready = [p for p in self.held.values() if p.ready]
        if ready:
            await self._feed(ready, await self.records.cutoff())

    async def _feed(self, parts: Collection[Partition], cutoff: datetime) -> None:
        # Partitions that have evaluated up to the same time share one read (all of them but a partition
        # just restored, which catches up with a read of its own).
        groups: dict[datetime, list[Partition]] = {}
        for p in parts:
            since = p.evaluated_through
            if since is not None and since < cutoff:
                groups.setdefault(since, []).append(p)
        for since, group in groups.items():
            fixes, events = await self.records.received_between(since, cutoff)
            # One pass over the read: each partition gets the fixes and events of its cases' devices (a
            # device in cases of two partitions goes to both), rather than every partition scanning it all.
            where: dict[str, tuple[int, ...]] = {}
            own_fixes: dict[int, list[Fix]] = {p.index: [] for p in group}
            own_events: dict[int, list[DeviceEvent]] = {p.index: [] for p in group}
            for f in fixes:
                for k in self._partitions_of(f.device_id, where):
                    if k in own_fixes:
                        own_fixes[k].append(f)
            for e in events:
                for k in self._partitions_of(e.device_id, where):
                    if k in own_events:
                        own_events[k].append(e)
            for p in group:
                try:
                    await p.consume(own_fixes[p.index], own_events[p.index], since, cutoff)
                except Fenced as exc:
                    log.warning("%s", exc)
                    p.lost()

    def _partitions_of(self, device_id: str, seen: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
        """The partitions of the open cases ``device_id`` belongs to (remembered in ``seen`` for one read)."""
        ks = seen.get(device_id)
        if ks is None:
            cases = self.casebook.cases_for_device(device_id)
            ks = seen[device_id] = tuple({partition_of(c.case_id, self.partitions) for c in cases})
        return ks

    async def _feeding(self) -> None:
        backoff = Backoff(0.1, 2.0)
        while True:
            await woken(self.wake, self.poll_s)
            self.wake.clear()
            try:
                await self.feed()
                backoff.reset()
            except _DOWN as exc:
                log.warning("partition feed: PostgreSQL unreachable (%s)", exc)
                await asyncio.sleep(backoff.next_wait())

    async def tick(self, now: datetime) -> None:
        """Advance time in every partition we own (silence of a victim fix, curfews)."""
        for p in [p for p in self.held.values() if p.ready]:
            try:
                await p.tick(now)
            except Fenced as exc:
                log.warning("%s", exc)
                p.lost()
            except _DOWN as exc:
                log.warning("partition %d tick: PostgreSQL unreachable (%s)", p.index, exc)

    async def _ticking(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            await self.tick(datetime.now(UTC))
