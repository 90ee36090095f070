"""The audit log in PostgreSQL: append (one chain across instances), query, verify.

:meth:`AuditLog.record` is the public entry point for every module that consults or changes personal
data (the API, evidence packs, exports). It appends in one transaction that first locks the chain's
head row (``SELECT … FOR UPDATE``), so records appended by several instances at once still form one
chain. Every ``checkpoint_every`` records, or when the last checkpoint is older than ``checkpoint_s``,
the same transaction adds a checkpoint signed with the deployment's key. A failure to append raises
:class:`StorageError`: the caller must not hand out the data it was about to log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from emon.audit import ChainVerifier, Checkpoint, Entry, Record, Verdict, chain, sign_checkpoint
from emon.errors import StorageError
from emon.storage.postgres import Database

log = logging.getLogger(__name__)

_COLUMNS = (
    "seq, at, user_id, user_name, role, action, outcome, purpose, case_id, device_id, alert_id, detail, "
    "prev_hash, hash"
)
MAX_QUERY = 1000
GROUP_MAX = 64  # callers whose entries are appended in one transaction, at most


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of ``GET /audit``; every one given must match. ``after_seq`` pages forward."""

    user: str | None = None  # user id or name
    role: str | None = None
    action: str | None = None
    outcome: str | None = None
    case_id: str | None = None
    device_id: str | None = None
    alert_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int = 0
    limit: int = 100


def _record(r: tuple[Any, ...]) -> Record:
    return Record(
        int(r[0]),
        r[1],
        r[2],
        str(r[3]),
        str(r[4]),
        str(r[5]),
        str(r[6]),
        r[7],
        r[8],
        r[9],
        r[10],
        str(r[11]),
        str(r[12]),
        str(r[13]),
    )


class AuditLog:
    def __init__(
        self,
        db: Database,
        key: Ed25519PrivateKey | None = None,
        *,
        checkpoint_every: int = 100,
        checkpoint_s: float = 60.0,
    ) -> None:
        self.db = db
        self.key = key
        self.checkpoint_every = checkpoint_every
        self.checkpoint_s = checkpoint_s
        self._waiting: list[tuple[tuple[Entry, ...], asyncio.Future[list[Record]]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, *entries: Entry) -> list[Record]:
        """Append ``entries`` to the chain; return them as stored (or raise :class:`StorageError`).

        Group commit: appends that arrive while another transaction is being written wait and are then
        written together, in arrival order, under one lock of the head and one commit."""
        if not entries:
            return []
        done: asyncio.Future[list[Record]] = asyncio.get_running_loop().create_future()
        self._waiting.append((entries, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name="audit-append")
        return await done

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:GROUP_MAX], self._waiting[GROUP_MAX:]
            try:
                records = await self._append([e for entries, _ in batch for e in entries])
            except Exception as exc:  # every waiting caller gets the failure, none is left hanging
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            i = 0
            for entries, done in batch:
                if not done.done():  # a caller that went away does not stop the others
                    done.set_result(records[i : i + len(entries)])
                i += len(entries)

    async def _append(self, entries: Sequence[Entry]) -> list[Record]:
        """Append ``entries`` to the chain in one transaction."""
        try:
            async with self.db.pool.connection() as conn, conn.transaction():
                return await self.append_in(conn, entries)
        except psycopg.Error as exc:
            raise StorageError(f"appending to the audit log failed: {exc}") from exc

    async def append_in(self, conn: psycopg.AsyncConnection[Any], entries: Sequence[Entry]) -> list[Record]:
        """Append ``entries`` inside the caller's open transaction on ``conn``: the records commit (or roll
        back) with the change they describe (e.g. a retention removal). Locks the chain's head until then,
        so call it last in the transaction."""
        if not entries:
            return []
        try:
            cur = await conn.execute(
                "SELECT seq, hash, checkpoint_seq, checkpoint_at FROM audit_head WHERE id = 1 FOR UPDATE"
            )
            head = await cur.fetchone()
            if head is None:
                raise StorageError("the audit log has no chain head (migration 030 not applied?)")
            seq, digest, cp_seq, cp_at = int(head[0]), str(head[1]), int(head[2]), head[3]
            records = []
            for entry in entries:
                seq += 1
                rec = chain(entry, seq, digest)
                digest = rec.hash
                records.append(rec)
            await conn.cursor().executemany(
                f"INSERT INTO audit_log ({_COLUMNS}) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        r.seq,
                        r.at,
                        r.user_id,
                        r.user_name,
                        r.role,
                        r.action,
                        r.outcome,
                        r.purpose,
                        r.case_id,
                        r.device_id,
                        r.alert_id,
                        r.detail,
                        r.prev_hash,
                        r.hash,
                    )
                    for r in records
                ],
            )
            await conn.execute("UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1", (seq, digest))
            now = records[-1].at
            due = (
                cp_at is None
                or seq - cp_seq >= self.checkpoint_every
                or ((now - cp_at).total_seconds() >= self.checkpoint_s)
            )
            if self.key is not None and due:
                cp = sign_checkpoint(self.key, seq, digest, now)
                await conn.execute(
                    "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES (%s, %s, %s, %s, %s)",
                    (cp.seq, cp.hash, cp.at, cp.key_id, cp.signature),
                )
                await conn.execute(
                    "UPDATE audit_head SET checkpoint_seq = %s, checkpoint_at = %s WHERE id = 1", (seq, cp.at)
                )
            return records
        except psycopg.Error as exc:
            raise StorageError(f"appending to the audit log failed: {exc}") from exc

    async def checkpoint(self, now: datetime) -> Checkpoint | None:
        """Sign the current head now (e.g. at shutdown, or before an export); None without a key or records."""
        if self.key is None:
            return None
        async with self.db.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT seq, hash, checkpoint_seq FROM audit_head WHERE id = 1 FOR UPDATE"
            )
            head = await cur.fetchone()
            if head is None or int(head[0]) == 0 or int(head[0]) == int(head[2]):
                return None
            cp = sign_checkpoint(self.key, int(head[0]), str(head[1]), now)
            await conn.execute(
                "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES (%s, %s, %s, %s, %s)",
                (cp.seq, cp.hash, cp.at, cp.key_id, cp.signature),
            )
            await conn.execute(
                "UPDATE audit_head SET checkpoint_seq = %s, checkpoint_at = %s WHERE id = 1", (cp.seq, cp.at)
            )
            return cp

    async def query(self, q: AuditQuery) -> list[Record]:
        """Records matching ``q``, oldest first, at most ``min(q.limit, 1000)``."""
        where: list[str] = ["seq > %s"]
        args: list[Any] = [q.after_seq]
        if q.user is not None:
            where.append("(user_id = %s OR user_name = %s)")
            args += [q.user, q.user]
        for column, value in (
            ("role", q.role),
            ("action", q.action),
            ("outcome", q.outcome),
            ("case_id", q.case_id),
            ("device_id", q.device_id),
            ("alert_id", q.alert_id),
        ):
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        if q.since is not None:
            where.append("at >= %s")
            args.append(q.since)
        if q.until is not None:
            where.append("at <= %s")
            args.append(q.until)
        args.append(max(1, min(q.limit, MAX_QUERY)))
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM audit_log WHERE {' AND '.join(where)} ORDER BY seq LIMIT %s", args
            )
            return [_record(r) for r in await cur.fetchall()]

    async def verify(self, keys: Mapping[str, Ed25519PublicKey]) -> Verdict:
        """Check the whole chain, every signed checkpoint and the head; name the first broken record."""
        verifier = ChainVerifier(keys)
        async with self.db.pool.connection() as conn, conn.transaction():
            # One snapshot: records appended while verifying are neither half-read nor ahead of the head.
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur = conn.cursor(name="audit_verify")
            await cur.execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY seq")
            async for row in cur:
                if not verifier.feed(_record(row)):
                    break
            await cur.close()
            plain = conn.cursor()
            await plain.execute("SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq")
            checkpoints = [
                Checkpoint(int(r[0]), str(r[1]), r[2], str(r[3]), bytes(r[4])) for r in await plain.fetchall()
            ]
            await plain.execute("SELECT seq, hash FROM audit_head WHERE id = 1")
            head_row = await plain.fetchone()
        head = None if head_row is None else (int(head_row[0]), str(head_row[1]))
        return verifier.finish(checkpoints, head)
