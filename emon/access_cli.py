"""``emon user …`` and ``emon token …``: manage people and tokens from the host, without the bootstrap token.

    emon user add USER_ID --name NAME --role ROLE [--unit UNIT]…
    emon user list
    emon token issue USER_ID [--ttl-days 30]      # prints the token once
    emon token list [--user USER_ID]
    emon token revoke TOKEN_ID

Runs against the database named by ``EMON_*``; every change is recorded in the audit log as done by
``cli:<login name>`` (an admin). Exit 0 on success, 1 when refused (exists, unknown), 2 on bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from datetime import UTC, datetime, timedelta

from emon.access import ALL_UNITS, Principal, Role, check_units
from emon.api.auth import new_token, token_hash
from emon.audit import Entry, Outcome
from emon.errors import ConfigError, InvalidInput
from emon.settings import Settings
from emon.signing import load_private_key
from emon.storage.audit import AuditLog
from emon.storage.postgres import Database
from emon.storage.users import User, UserRecords


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emon", description="people and their API tokens")
    sub = p.add_subparsers(dest="what", required=True)
    user = sub.add_parser("user").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create a user")
    add.add_argument("user_id")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--unit", action="append", default=[], help="a unit the user belongs to; repeatable")
    user.add_parser("list", help="every user")
    token = sub.add_parser("token").add_subparsers(dest="action", required=True)
    issue = token.add_parser("issue", help="a new token for a user (printed once)")
    issue.add_argument("user_id")
    issue.add_argument("--ttl-days", type=float, default=30.0)
    listing = token.add_parser("list", help="tokens (never the token itself)")
    listing.add_argument("--user")
    revoke = token.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("token_id")
    return p


def main(argv: list[str]) -> int:
    ns = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if ns.what == "user" and ns.action == "add":
            check_units(ns.unit)
        if ns.what == "token" and ns.action == "issue" and not 0 < ns.ttl_days <= 366:
            raise InvalidInput("--ttl-days must be in (0, 366]")
    except (ConfigError, InvalidInput) as exc:
        print(f"emon: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(settings, ns))


async def _run(settings: Settings, ns: argparse.Namespace) -> int:
    db = Database(settings.database_url, settings.db_schema)
    await db.open()
    try:
        await db.migrate()
        users = UserRecords(db)
        key = None if settings.signing_key_file is None else load_private_key(settings.signing_key_file)
        audit = AuditLog(
            db,
            key,
            checkpoint_every=settings.audit_checkpoint_every,
            checkpoint_s=settings.audit_checkpoint_s,
        )
        who = Principal(f"cli:{getpass.getuser()}", Role.ADMIN, frozenset({ALL_UNITS}))
        now = datetime.now(UTC)
        if ns.what == "user" and ns.action == "add":
            user = User(ns.user_id, ns.name, Role(ns.role), check_units(ns.unit))
            if not await users.add_user(user, who.name):
                print(f"emon: user {ns.user_id} exists", file=sys.stderr)
                return 1
            await audit.record(
                Entry.of(
                    who,
                    now,
                    "user.create",
                    Outcome.ALLOWED,
                    detail={"user_id": user.user_id, "role": user.role.value, "units": list(user.units)},
                )
            )
            stored = await users.get_user(user.user_id)
            assert stored is not None
            print(json.dumps(stored.to_json()))
        elif ns.what == "user":
            for u in await users.users():
                print(json.dumps(u.to_json()))
        elif ns.action == "issue":
            found = await users.get_user(ns.user_id)
            if found is None or found.disabled_at is not None:
                print(f"emon: no (enabled) user {ns.user_id}", file=sys.stderr)
                return 1
            token = new_token()
            info = await users.issue_token(
                found, token_hash(token), now + timedelta(days=ns.ttl_days), who.name
            )
            await audit.record(
                Entry.of(
                    who,
                    now,
                    "token.issue",
                    Outcome.ALLOWED,
                    detail={"user_id": ns.user_id, "token_id": info.token_id},
                )
            )
            print(json.dumps({**info.to_json(), "token": token}))
        elif ns.action == "list":
            for t in await users.tokens(ns.user):
                print(json.dumps(t.to_json()))
        else:
            revoked = await users.revoke(ns.token_id, who.name)
            if revoked is None:
                print(f"emon: no token {ns.token_id}", file=sys.stderr)
                return 1
            await audit.record(
                Entry.of(
                    who,
                    now,
                    "token.revoke",
                    Outcome.ALLOWED,
                    detail={"token_id": ns.token_id, "user_id": revoked.user_id},
                )
            )
            print(json.dumps(revoked.to_json()))
        return 0
    finally:
        await db.close()
