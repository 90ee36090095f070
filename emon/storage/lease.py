"""Leases in PostgreSQL: who may act, until when, and under which epoch.

A lease is one row (name, owner, epoch, expires_at). Taking it over — only once it has expired, or when
it is ours — adds one to its epoch; renewing keeps the epoch. PostgreSQL's clock is the only clock that
counts, so instances need no synchronised clocks. A :class:`Fence` re-checks (owner, epoch, not
expired) inside the transaction of every write the holder makes and locks the row ``FOR SHARE``: a
takeover waits for that transaction (at most a lease's length: a transaction left idle by a frozen
process is ended by PostgreSQL), and a holder frozen past its lease has every write refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import psycopg

from emon import metrics
from emon.errors import StorageError
from emon.storage.postgres import Database

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[tuple[Any, ...]]

EVALUATION = "evaluation"


class Fenced(StorageError):
    """A write was refused: this instance does not hold (or no longer holds) the lease it needs."""


class Lease:
    """One named lease as seen by instance ``owner`` (``ttl_s`` seconds, PostgreSQL's clock)."""

    def __init__(self, db: Database, name: str, owner: str, ttl_s: float) -> None:
        self.db = db
        self.name = name
        self.owner = owner
        self.ttl_s = ttl_s
        self.epoch: int | None = None  # the epoch we hold, None when we do not hold it

    async def try_hold(self) -> bool:
        """Take the lease (when free, expired or ours) or renew it; True while we hold it. A failure
        to reach PostgreSQL counts as not holding it: our writes would be refused anyway."""
        try:
            async with self.db.pool.connection() as conn:
                cur = await conn.execute(
                    "INSERT INTO cluster_leases AS l (name, owner, epoch, expires_at) "
                    "VALUES (%(name)s, %(owner)s, 1, clock_timestamp() + make_interval(secs => %(ttl)s)) "
                    "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, "
                    "epoch = CASE WHEN l.owner = excluded.owner AND l.epoch = %(held)s "
                    "AND l.expires_at > clock_timestamp() THEN l.epoch ELSE l.epoch + 1 END "
                    "WHERE l.expires_at <= clock_timestamp() OR l.owner = excluded.owner "
                    "RETURNING epoch",
                    {"name": self.name, "owner": self.owner, "ttl": self.ttl_s, "held": self.epoch or 0},
                )
                row = await cur.fetchone()
                await conn.commit()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("lease %s: cannot reach PostgreSQL (%s); not holding it", self.name, exc)
            self._set(None)
            return False
        self._set(None if row is None else int(row[0]))
        return self.epoch is not None

    async def release(self) -> None:
        """Give the lease up at once (a clean shutdown), so another instance need not wait for expiry."""
        epoch, self.epoch = self.epoch, None
        if epoch is None:
            return
        try:
            async with self.db.pool.connection() as conn:
                await conn.execute(
                    "UPDATE cluster_leases SET expires_at = clock_timestamp() WHERE name = %s AND owner = %s "
                    "AND epoch = %s",
                    (self.name, self.owner, epoch),
                )
                await conn.commit()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("lease %s: could not release (%s); it expires on its own", self.name, exc)
        metrics.LEASE_HELD.labels(self.name).set(0)

    def _set(self, epoch: int | None) -> None:
        if epoch != self.epoch:
            log.warning(
                "lease %s: %s", self.name, f"held by us, epoch {epoch}" if epoch else "not held by us"
            )
        self.epoch = epoch
        metrics.LEASE_HELD.labels(self.name).set(0 if epoch is None else 1)
        if epoch is not None:
            metrics.LEASE_EPOCH.labels(self.name).set(epoch)


class Fence:
    """The check every write of the lease holder makes in its own transaction.

    ``expected``: the epoch writes must be made under (a partition's: the epoch its state was restored
    under, so a write computed before the lease was lost and taken back is refused); default the epoch
    we hold. ``layout``: (partitions, protocol) a partition owner runs; its writes are also refused
    unless the cluster's stored layout is that one and no one-owner ``evaluation`` lease is live."""

    def __init__(
        self,
        lease: Lease,
        *,
        expected: Callable[[], int | None] | None = None,
        layout: tuple[int, int] | None = None,
    ) -> None:
        self.lease = lease
        self.expected = expected
        self.layout = layout

    async def check(self, conn: Conn, epoch: int | None = None) -> None:
        """Raise :class:`Fenced` unless we hold the lease under ``epoch`` (default: :attr:`expected`, or
        the epoch we believe we hold) right now; lock the lease row until the transaction ends, so no
        takeover overlaps it."""
        lease = self.lease
        if epoch is None:
            epoch = self.expected() if self.expected is not None else lease.epoch
        guard, args = "", [lease.name, lease.owner, epoch]
        if self.layout is not None:
            guard = (
                " AND EXISTS (SELECT 1 FROM cluster_layout WHERE partitions = %s AND protocol = %s)"
                " AND NOT EXISTS (SELECT 1 FROM cluster_leases WHERE name = %s AND expires_at > clock_timestamp())"
            )
            args += [*self.layout, EVALUATION]
        row = None
        if epoch is not None:
            # Our lock on the lease row holds a takeover back until this transaction ends; if this process
            # is frozen mid-transaction, PostgreSQL ends the session after a lease's length of idleness, so
            # the takeover is delayed by at most that (the frozen writes are rolled back).
            await conn.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', %s, true)",
                (f"{int(lease.ttl_s * 1000)}ms",),
            )
            cur = await conn.execute(
                "SELECT 1 FROM cluster_leases WHERE name = %s AND owner = %s AND epoch = %s "
                f"AND expires_at > clock_timestamp(){guard} FOR SHARE",
                args,
            )
            row = await cur.fetchone()
        if row is None:
            metrics.FENCED_WRITES.labels(lease.name).inc()
            raise Fenced(f"lease {lease.name}: {lease.owner} does not hold epoch {epoch}; write refused")
