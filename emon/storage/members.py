"""Live instances in PostgreSQL: each announces itself with a heartbeat row that expires.

The balancer of partitions (:mod:`emon.cluster.owner`) counts the live rows to know its fair share; the
clock is PostgreSQL's, so instances need no synchronised clocks. A row not renewed within ``ttl_s``
seconds no longer counts: a dead instance stops counting at the same time as its leases expire.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from emon.partitioning import PARTITION_LEASE_PREFIX
from emon.storage.cases import seed_partition_watermarks
from emon.storage.lease import EVALUATION
from emon.storage.postgres import DRIVER_ERRORS, Database

log = logging.getLogger(__name__)


class Members:
    """Instance ``instance_id``'s heartbeat, and the view of who else is alive."""

    def __init__(self, db: Database, instance_id: str, ttl_s: float, partitions: int, protocol: int) -> None:
        self.db = db
        self.instance_id = instance_id
        self.ttl_s = ttl_s
        self.partitions = partitions
        self.protocol = protocol

    async def heartbeat(self) -> int:
        """Announce ourselves (and the layout we run) for ``ttl_s`` seconds more; return how many live
        instances run that layout (us included)."""
        async with self.db.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO cluster_members AS m (instance_id, seen_at, expires_at, partitions, protocol) "
                "VALUES (%(id)s, clock_timestamp(), clock_timestamp() + make_interval(secs => %(ttl)s), %(p)s, %(v)s) "
                "ON CONFLICT (instance_id) DO UPDATE SET seen_at = excluded.seen_at, "
                "expires_at = excluded.expires_at, partitions = excluded.partitions, protocol = excluded.protocol",
                {"id": self.instance_id, "ttl": self.ttl_s, "p": self.partitions, "v": self.protocol},
            )
            # Only instances that run our layout share the partitions (one that runs another evaluates nothing).
            cur = await conn.execute(
                "SELECT count(*) FROM cluster_members WHERE expires_at > clock_timestamp() "
                "AND partitions = %s AND protocol = %s",
                (self.partitions, self.protocol),
            )
            row = await cur.fetchone()
            await conn.commit()
        return 1 if row is None else max(1, int(row[0]))

    async def layout(self) -> str | None:
        """Check this instance's partition count and protocol against the cluster's (``cluster_layout``);
        None when they agree, else why this instance must not evaluate. The stored layout is set by the
        first instance, and changed to ours only once no other instance runs the stored one (no live
        heartbeat announcing it, no live partition lease of another instance); on a change of the
        partition count the new partitions start from the oldest watermark of the old ones
        (:func:`emon.storage.cases.seed_partition_watermarks`). A live ``evaluation`` lease (an instance
        of protocol 1, one owner of every case) blocks every partition owner."""
        ours = (self.partitions, self.protocol)
        async with self.db.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT owner FROM cluster_leases WHERE name = %s AND expires_at > clock_timestamp()",
                (EVALUATION,),
            )
            if (row := await cur.fetchone()) is not None:
                return f"instance {row[0]} holds the one-owner {EVALUATION!r} lease (protocol 1)"
            cur = await conn.execute(
                "SELECT partitions, protocol FROM cluster_layout WHERE id = 1 FOR UPDATE"
            )
            stored = await cur.fetchone()
            if stored is not None and (int(stored[0]), int(stored[1])) == ours:
                return None
            if stored is not None:
                cur = await conn.execute(
                    "SELECT (SELECT count(*) FROM cluster_members WHERE instance_id <> %(id)s "
                    "AND expires_at > clock_timestamp() AND partitions = %(p)s AND protocol = %(v)s) "
                    "+ (SELECT count(*) FROM cluster_leases WHERE name LIKE %(prefix)s AND owner <> %(id)s "
                    "AND expires_at > clock_timestamp())",
                    {
                        "id": self.instance_id,
                        "p": stored[0],
                        "v": stored[1],
                        "prefix": f"{PARTITION_LEASE_PREFIX}%",
                    },
                )
                busy = await cur.fetchone()
                if busy is not None and int(busy[0]) > 0:
                    return (
                        f"the cluster runs {stored[0]} partitions under protocol {stored[1]}; "
                        f"this instance runs {ours[0]} under protocol {ours[1]}"
                    )
            await conn.execute(
                "INSERT INTO cluster_layout (id, partitions, protocol) VALUES (1, %s, %s) ON CONFLICT (id) "
                "DO UPDATE SET partitions = excluded.partitions, protocol = excluded.protocol, changed_at = now()",
                ours,
            )
            await seed_partition_watermarks(conn, None if stored is None else int(stored[0]), self.partitions)
        log.warning("cluster layout: %d partitions, protocol %d (was %s)", *ours, stored)
        return None

    async def leave(self) -> None:
        """A clean stop: stop counting at once, so the others' fair share grows without waiting."""
        try:
            async with self.db.pool.connection() as conn:
                await conn.execute("DELETE FROM cluster_members WHERE instance_id = %s", (self.instance_id,))
                await conn.commit()
        except DRIVER_ERRORS as exc:
            log.warning("could not leave the cluster cleanly (%s); our heartbeat expires on its own", exc)

    async def free(self, names: Sequence[str]) -> list[str]:
        """Those of lease ``names`` nobody holds now (never taken, released or expired)."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT n FROM unnest(%s::text[]) AS n WHERE NOT EXISTS (SELECT 1 FROM cluster_leases l "
                "WHERE l.name = n AND l.expires_at > clock_timestamp())",
                (list(names),),
            )
            return [str(r[0]) for r in await cur.fetchall()]
