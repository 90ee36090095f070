"""Browser sessions in PostgreSQL (table ``web_sessions``, migration 070); see ``emon.api.session``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from emon.storage.postgres import Database


@dataclass(frozen=True, slots=True)
class WebSession:
    token_sha256: str
    csrf: str


class PgSessions:
    """Sessions keyed by the SHA-256 of the cookie; expired ones are swept when a new one opens."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open(self, session_sha256: str, token_sha256: str, csrf: str, expires_at: datetime) -> None:
        async with self.db.pool.connection() as conn:
            await conn.execute("DELETE FROM web_sessions WHERE expires_at < now()")
            await conn.execute(
                "INSERT INTO web_sessions (session_sha256, token_sha256, csrf, expires_at) VALUES (%s, %s, %s, %s)",
                (session_sha256, token_sha256, csrf, expires_at),
            )

    async def find(self, session_sha256: str, now: datetime) -> WebSession | None:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT token_sha256, csrf FROM web_sessions WHERE session_sha256 = %s AND expires_at > %s",
                (session_sha256, now),
            )
            row = await cur.fetchone()
        return None if row is None else WebSession(str(row[0]), str(row[1]))

    async def end_all(self, token_sha256: str) -> int:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM web_sessions WHERE token_sha256 = %s", (token_sha256,))
            return cur.rowcount
