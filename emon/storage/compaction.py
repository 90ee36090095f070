"""Thinning the replay record: dense snapshots for recent days, afterwards only what packs start from.

Evaluation keeps a state snapshot per changed case at most every ``EMON_EVIDENCE_SNAPSHOT_S`` and journals
every step. Once older than ``EMON_EVIDENCE_DENSE_DAYS``, a snapshot is kept only if an alert's pack starts
from it (the latest at or before the alert's episode minus ``EMON_EVIDENCE_BEFORE_S``) or it is the case's
first; a journal step only if it lies in such an alert's window (after its starting snapshot, up to
``EMON_EVIDENCE_AFTER_S`` after the alert ended; open alerts keep everything after their start).
Limit: an alert opened later than the dense period after its episode began (a very late upload) finds no
snapshot of its own; its pack starts from an earlier kept one and its replay may differ (the pack says so).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from emon.storage.postgres import Database, unbounded

_STARTS = """
WITH starts AS (
    SELECT a.alert_id, a.case_id,
           coalesce((SELECT max(s.n) FROM eval_snapshots s WHERE s.case_id = a.case_id AND s.at <= a.episode - %(before)s),
                    (SELECT min(s.n) FROM eval_snapshots s WHERE s.case_id = a.case_id)) AS from_n,
           coalesce(coalesce(a.ended_at, a.resolved_at) + %(after)s, 'infinity'::timestamptz) AS until
      FROM alerts a
)
"""


async def compact(
    db: Database, now: datetime, *, dense_days: float, before_s: float, after_s: float
) -> tuple[int, int]:
    """Remove snapshots and journal steps older than ``now - dense_days`` (UTC) that no pack needs;
    returns (snapshots, steps) removed."""
    params = {
        "cutoff": now - timedelta(days=dense_days),
        "before": timedelta(seconds=before_s),
        "after": timedelta(seconds=after_s),
    }
    async with db.pool.connection() as conn, conn.transaction():
        await unbounded(conn)
        # Journal first: the windows are computed from the snapshots as they are before thinning.
        cur = await conn.execute(
            (
                _STARTS
                + """
            DELETE FROM eval_journal j WHERE j.now < %(cutoff)s AND NOT EXISTS (
                SELECT 1 FROM starts w WHERE w.from_n IS NOT NULL AND j.n > w.from_n AND j.now <= w.until)
            """
            ).encode(),
            params,
        )
        steps = max(cur.rowcount, 0)
        cur = await conn.execute(
            (
                _STARTS
                + """
            DELETE FROM eval_snapshots s WHERE s.at < %(cutoff)s
               AND NOT EXISTS (SELECT 1 FROM starts w WHERE w.case_id = s.case_id AND w.from_n = s.n)
               AND s.n <> (SELECT min(f.n) FROM eval_snapshots f WHERE f.case_id = s.case_id)
            """
            ).encode(),
            params,
        )
        snapshots = max(cur.rowcount, 0)
    return snapshots, steps


async def run_compaction(
    db: Database, *, dense_days: float, before_s: float, after_s: float, interval_s: float
) -> None:
    """Compact every ``interval_s`` seconds while the service runs (a background loop)."""
    import asyncio
    import logging
    from datetime import UTC

    log = logging.getLogger(__name__)
    while True:
        try:
            snapshots, steps = await compact(
                db, datetime.now(UTC), dense_days=dense_days, before_s=before_s, after_s=after_s
            )
            if snapshots or steps:
                log.info("evidence compaction: %d snapshots, %d journal steps removed", snapshots, steps)
        except Exception:
            log.exception("evidence compaction failed; trying again later")
        await asyncio.sleep(interval_s)
