"""Live instances in PostgreSQL: each announces itself with a heartbeat row that expires.

The balancer of partitions (:mod:`emon.cluster.owner`) counts the live rows to know its fair share; the
clock is PostgreSQL's, so instances need no synchronised clocks. A row not renewed within ``ttl_s``
seconds no longer counts: a dead instance stops counting at the same time as its leases expire.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from emon.storage.postgres import DRIVER_ERRORS, Database

log = logging.getLogger(__name__)


class Members:
    """Instance ``instance_id``'s heartbeat, and the view of who else is alive."""

    def __init__(self, db: Database, instance_id: str, ttl_s: float) -> None:
        self.db = db
        self.instance_id = instance_id
        self.ttl_s = ttl_s

    async def heartbeat(self) -> int:
        """Announce ourselves for ``ttl_s`` seconds more; return how many instances are live (us included)."""
        async with self.db.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO cluster_members AS m (instance_id, seen_at, expires_at) "
                "VALUES (%(id)s, clock_timestamp(), clock_timestamp() + make_interval(secs => %(ttl)s)) "
                "ON CONFLICT (instance_id) DO UPDATE SET seen_at = excluded.seen_at, expires_at = excluded.expires_at",
                {"id": self.instance_id, "ttl": self.ttl_s},
            )
            cur = await conn.execute(
                "SELECT count(*) FROM cluster_members WHERE expires_at > clock_timestamp()"
            )
            row = await cur.fetchone()
            await conn.commit()
        return 1 if row is None else max(1, int(row[0]))

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
