"""Users and their API tokens in PostgreSQL; resolving a token's SHA-256 to a :class:`Principal`.

A token is stored only as its SHA-256. :meth:`UserRecords.principal_for` is the one lookup every
credential goes through (bearer tokens, and browser sessions that keep a token's hash): it answers
None for an unknown, revoked or expired token and for a disabled user, so revoking ends every use at
the next request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from emon.access import ALL_UNITS, Principal, Role
from emon.errors import StorageError
from emon.storage.postgres import Database


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str
    role: Role
    units: tuple[str, ...]
    created_at: datetime | None = None
    created_by: str | None = None
    disabled_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "role": self.role.value,
            "units": list(self.units),
            "created_at": None if self.created_at is None else self.created_at.isoformat(),
            "created_by": self.created_by,
            "disabled_at": None if self.disabled_at is None else self.disabled_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What may be listed of a token (never its hash)."""

    token_id: str | None
    user_id: str | None
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str | None
    revoked_by: str | None

    def to_json(self) -> dict[str, Any]:
        def t(v: datetime | None) -> str | None:
            return None if v is None else v.isoformat()

        return {
            "token_id": self.token_id,
            "user_id": self.user_id,
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at.isoformat(),
            "expires_at": t(self.expires_at),
            "revoked_at": t(self.revoked_at),
            "created_by": self.created_by,
            "revoked_by": self.revoked_by,
        }


def new_token_id() -> str:
    return "tok_" + secrets.token_hex(8)


_USER_COLUMNS = "user_id, name, role, units, created_at, created_by, disabled_at"
_TOKEN_COLUMNS = "token_id, user_id, name, role, created_at, expires_at, revoked_at, created_by, revoked_by"


def _user(r: tuple[Any, ...]) -> User:
    return User(str(r[0]), str(r[1]), Role(str(r[2])), tuple(r[3]), r[4], r[5], r[6])


class UserRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_user(self, user: User, who: str) -> bool:
        """Create a user; False if the id is taken."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO users (user_id, name, role, units, created_by) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING RETURNING 1",
                (user.user_id, user.name, user.role.value, list(user.units), who),
            )
            return await cur.fetchone() is not None

    async def users(self) -> list[User]:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY user_id")
            return [_user(r) for r in await cur.fetchall()]

    async def get_user(self, user_id: str) -> User | None:
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = %s", (user_id,))
            row = await cur.fetchone()
            return None if row is None else _user(row)

    async def disable_user(self, user_id: str) -> bool:
        """Disable a user: every token of theirs stops working at once. False if there is no such user."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE user_id = %s RETURNING 1",
                (user_id,),
            )
            return await cur.fetchone() is not None

    async def issue_token(self, user: User, token_sha256: str, expires_at: datetime, who: str) -> TokenInfo:
        """Store a new token of ``user`` (by its hash) valid until ``expires_at`` (UTC)."""
        token_id = new_token_id()
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO api_tokens (token_sha256, token_id, user_id, name, role, expires_at, created_by) "
                f"VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_TOKEN_COLUMNS}",
                (token_sha256, token_id, user.user_id, user.name, user.role.value, expires_at, who),
            )
            row = await cur.fetchone()
            assert row is not None
            return _token(row)

    async def tokens(self, user_id: str | None = None) -> list[TokenInfo]:
        async with self.db.pool.connection() as conn:
            if user_id is None:
                cur = await conn.execute(
                    f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, token_id"
                )
            else:
                cur = await conn.execute(
                    f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE user_id = %s ORDER BY created_at, token_id",
                    (user_id,),
                )
            return [_token(r) for r in await cur.fetchall()]

    async def revoke(self, token_id: str, who: str) -> TokenInfo | None:
        """Revoke a token (idempotent; the first revocation's time and actor stay); None if unknown."""
        async with self.db.pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()), "
                "revoked_by = coalesce(revoked_by, %s) WHERE token_id = %s "
                f"RETURNING {_TOKEN_COLUMNS}",
                (who, token_id),
            )
            row = await cur.fetchone()
            return None if row is None else _token(row)

    async def principal_for(self, token_sha256: str) -> Principal | None:
        """Lookup by token hash: the principal of a valid token, or None (unknown, revoked, expired,
        or its user disabled). Tokens made before users existed keep their name and role, unscoped."""
        try:
            async with self.db.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT t.token_id, t.name, t.role, u.user_id, u.name, u.role, u.units FROM api_tokens t "
                    "LEFT JOIN users u ON u.user_id = t.user_id "
                    "WHERE t.token_sha256 = %s AND t.revoked_at IS NULL "
                    "AND (t.expires_at IS NULL OR t.expires_at > now()) "
                    "AND (t.user_id IS NULL OR u.disabled_at IS NULL)",
                    (token_sha256,),
                )
                row = await cur.fetchone()
        except psycopg.Error as exc:
            raise StorageError(f"token lookup failed: {exc}") from exc
        if row is None:
            return None
        token_id = None if row[0] is None else str(row[0])
        if row[3] is None:
            return Principal(str(row[1]), Role(str(row[2])), frozenset({ALL_UNITS}), None, token_id)
        return Principal(str(row[4]), Role(str(row[5])), frozenset(row[6]), str(row[3]), token_id)


def _token(r: tuple[Any, ...]) -> TokenInfo:
    return TokenInfo(
        None if r[0] is None else str(r[0]),
        None if r[1] is None else str(r[1]),
        str(r[2]),
        Role(str(r[3])),
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
    )
