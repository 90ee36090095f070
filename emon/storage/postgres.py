"""PostgreSQL through psycopg 3: a connection pool bound to one schema, and migrations at start."""

from __future__ import annotations

import logging
import select
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from psycopg_pool.base import AttemptWithBackoff

from emon.errors import StorageError

log = logging.getLogger(__name__)

Migration = Callable[[AsyncConnection[tuple[Any, ...]]], Awaitable[None]]
_LOCK_ID = 0x656D6F6E  # "emon": one migrator at a time


async def check_on_checkout(conn: AsyncConnection[Any]) -> None:
    """The pool's checkout check, without a round trip for a connection that is evidently alive.

    A round trip on every checkout cost every transaction one more wait on the event loop (each a few
    ms under load, on the alert path too). An idle connection the server has ended is readable: the
    server's goodbye (``FATAL``, e.g. at shutdown or ``pg_terminate_backend``) or the end of the stream
    is waiting on its socket. Only then — or when the connection is not idle, or already known closed —
    is the round trip made (and fails, so the pool discards it). A connection whose peer vanished
    without a word is not readable either way: the old check would have waited on it just the same."""
    if conn.closed or conn.info.transaction_status is not TransactionStatus.IDLE or _readable(conn):
        await AsyncConnectionPool.check_connection(conn)


def _readable(conn: AsyncConnection[Any]) -> bool:
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return True  # no usable socket: let the real check decide
    return bool(readable)


class ContentRefused(StorageError):
    """PostgreSQL (or the driver, adapting a value) refused what was to be stored, not the connection:
    retrying the same rows cannot help; the message that brought them must be isolated."""


DRIVER_ERRORS: tuple[type[Exception], ...] = (psycopg.Error, OSError)
"""Anything a database call may raise from the driver or the network; code outside ``emon.storage``
catches these names instead of importing the driver."""
CONNECTION_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, PoolTimeout, OSError)
"""The subset that means "PostgreSQL is unreachable": worth waiting and retrying; other errors are bugs."""


def translate(exc: Exception, what: str) -> StorageError:
    """The one map from driver errors to emon's: content refusals (SQLSTATE classes 22 data exception
    and 23 integrity violation, or text the driver cannot encode) versus everything else, which is
    treated as infrastructure (connection lost, timeout, server shutting down) and retried — as is a
    bug, which then shows as a stalled pipeline rather than as valid messages dead-lettered."""
    content = isinstance(exc, psycopg.DataError | psycopg.IntegrityError | UnicodeError)
    message = f"{what}: {type(exc).__name__}: {exc}"
    return ContentRefused(message) if content else StorageError(message)


# The pool retries a lost server with a doubling delay and no cap (1, 2, 4, 8, 16 s …): storing resumed
# ~16 s after a 30 s outage, a request waiting all along. A constant ~1 s delay (±10 % jitter, the pool's
# own) resumes within about a second of PostgreSQL's return. The pool reads the factor from its attempt
# class; there is no constructor argument for it.
AttemptWithBackoff.DELAY_BACKOFF = 1.0


class Database:
    """A pool of connections whose ``search_path`` is the emon schema (tests use their own).

    ``statement_timeout_s`` bounds every statement on the pool's connections (None: no bound): a query
    wedged on a lock or a plan gone wrong then fails, is retried like any storage error, and does not hold
    ingest or delivery for good. Maintenance that may legitimately run long lifts it for its own
    transaction (:func:`unbounded`); migrations run without it."""

    def __init__(
        self,
        url: str,
        schema: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        application: str = "emon",
        statement_timeout_s: float | None = None,
    ) -> None:
        self.url = url
        self.schema = schema
        options = f"-c search_path={schema},public -c timezone=UTC"
        if statement_timeout_s:
            options += f" -c statement_timeout={max(1, round(statement_timeout_s * 1000))}"
        self.pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={
                "options": options,
                "autocommit": False,
                "application_name": application,
            },
            # A connection that died with the server is found on checkout, not handed out.
            check=check_on_checkout,
        )

    async def open(self) -> None:
        try:
            await _ensure_schema(self.url, self.schema)
            await self.pool.open(wait=True, timeout=15)
        except (psycopg.Error, TimeoutError) as exc:
            raise StorageError(f"cannot connect to PostgreSQL: {exc}") from exc

    async def close(self) -> None:
        await self.pool.close()

    async def ping(self, timeout_s: float = 2.0) -> bool:
        """True when a connection answers ``SELECT 1`` within ``timeout_s`` seconds."""
        try:
            async with self.pool.connection(timeout=timeout_s) as conn:
                await conn.execute("SELECT 1")
        except DRIVER_ERRORS:
            return False
        return True

    async def notifications(self, channel: str) -> AsyncIterator[str | None]:
        """``None`` as soon as ``LISTEN channel`` holds (so a caller also catches up on what it missed
        while it was not listening), then each ``NOTIFY``'s payload, on a dedicated connection; raises a
        :data:`DRIVER_ERRORS` error when the connection is lost, and the caller reconnects."""
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            yield None
            async for note in conn.notifies():
                yield note.payload

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order; return the versions applied now."""
        from emon.storage.fixes_table import create_fixes_table

        steps: list[tuple[str, str | Migration]] = [(n, s) for n, s in _sql_migrations()]
        steps.append(("002_fixes", create_fixes_table))
        steps.sort(key=lambda step: step[0])
        applied: list[str] = []
        async with self.pool.connection() as conn:
            # Waiting for another instance's migrations, or building an index, is not a wedged query.
            await conn.execute("SET statement_timeout = 0")
            await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                await conn.commit()
                cur = await conn.execute("SELECT version FROM schema_migrations")
                done = {str(row[0]) for row in await cur.fetchall()}
                await conn.commit()
                for version, step in steps:
                    if version in done:
                        continue
                    async with conn.transaction():
                        if isinstance(step, str):
                            await conn.execute(step.encode())
                        else:
                            await step(conn)
                        await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                    applied.append(version)
                    log.info("applied migration %s", version)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
                await conn.execute("RESET statement_timeout")
                await conn.commit()
        return applied


async def unbounded(conn: AsyncConnection[Any]) -> None:
    """Lift the pool's statement timeout for the rest of this transaction (long maintenance: retention,
    evidence compaction), which must not be cut off half way every time it runs."""
    await conn.execute("SET LOCAL statement_timeout = 0")


def _sql_migrations() -> list[tuple[str, str]]:
    folder = resources.files("emon.storage") / "migrations"
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            out.append((entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8")))
    return out


async def _ensure_schema(url: str, schema: str) -> None:
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


async def drop_schema(url: str, schema: str) -> None:
    """Remove a schema and everything in it (tests clean up their own schema)."""
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


async def maintain_partitions(db: Database, interval_s: float = 6 * 3600) -> None:
    """Keep monthly fix partitions prepared three months ahead while the service runs (a no-op on a
    TimescaleDB hypertable). Fixes outside prepared months land in the default partition, never lost."""
    import asyncio
    from datetime import UTC, datetime

    from emon.storage.fixes_table import ensure_partitions

    while True:
        try:
            async with db.pool.connection() as conn, conn.transaction():
                await ensure_partitions(conn, datetime.now(UTC), months_back=0, months_ahead=3)
        except psycopg.Error as exc:
            log.error("preparing fix partitions failed (fixes still go to the default partition): %s", exc)
        await asyncio.sleep(interval_s)
