"""``emon evidence``, ``emon replay``, ``emon export``, ``emon import`` and ``emon retention``.

Exit codes: 0 done (pack intact, replay identical); 1 the check failed (a damaged pack names the file, a
replay shows the differences); 2 bad usage, configuration or input.

What leaves the database (a pack, an export) and what retention removes is recorded in the audit log as
done by ``cli:<login name>`` before the file is written.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from emon.access import ALL_UNITS, Principal, Role
from emon.audit import Entry, Outcome
from emon.errors import ConfigError, InvalidInput, NotFound, StorageError
from emon.evidence.errors import EvidenceError, PackDamaged
from emon.settings import Settings
from emon.signing import load_private_key
from emon.storage.audit import AuditLog
from emon.storage.postgres import DRIVER_ERRORS, Database
from emon.storage.retention import Removed

T = TypeVar("T")


def main(command: str, argv: list[str]) -> int:
    """Run one of the commands (``command`` as typed after ``emon``)."""
    try:
        if command == "evidence" and argv[:1] == ["verify"]:
            return _verify(argv[1:])
        if command == "replay":
            return _replay(argv)
        settings = Settings.from_env()
        if command == "evidence":
            return _pack(settings, argv)
        if command == "export":
            return _export(settings, argv)
        if command == "import":
            return _import(settings, argv)
        if command == "retention":
            return _retention(settings, argv)
    except ConfigError as exc:
        print(f"emon: configuration error: {exc}", file=sys.stderr)
        return 2
    except (EvidenceError, NotFound, StorageError, OSError) as exc:
        print(f"emon {command}: {exc}", file=sys.stderr)
        return 2
    except DRIVER_ERRORS as exc:
        print(
            f"emon {command}: database error ({exc}); is EMON_DB_SCHEMA right, and migrated (emon migrate)?",
            file=sys.stderr,
        )
        return 2
    print(f"emon: unknown command {command}", file=sys.stderr)
    return 2


def _verify(argv: list[str]) -> int:
    from emon.evidence.verify import verify_pack

    p = argparse.ArgumentParser(prog="emon evidence verify", description="check a pack's signature and files")
    p.add_argument("pack")
    p.add_argument(
        "--public-key", help="the deployment's published public key (PEM); default: the pack's own"
    )
    ns = p.parse_args(argv)
    trusted = Path(ns.public_key).read_bytes() if ns.public_key else None
    try:
        files = verify_pack(Path(ns.pack).read_bytes(), trusted)
    except PackDamaged as exc:
        print(f"DAMAGED {exc.file}: {exc.problem}")
        return 1
    print(f"OK: signature and {len(files) - 2} files intact")
    return 0


def _replay(argv: list[str]) -> int:
    from emon.evidence.replay import describe, replay
    from emon.evidence.verify import verify_pack
    from emon.storage.evidence import engine_fingerprint

    p = argparse.ArgumentParser(
        prog="emon replay", description="re-evaluate a pack and compare its decisions"
    )
    p.add_argument("pack")
    ns = p.parse_args(argv)
    try:
        files = verify_pack(Path(ns.pack).read_bytes())
    except PackDamaged as exc:
        print(f"DAMAGED {exc.file}: {exc.problem} (not replayed)")
        return 1
    import json

    recorded_engine = json.loads(files["engine.json"])
    if recorded_engine != engine_fingerprint():
        print(f"note: the pack was decided by engine {recorded_engine}, this is {engine_fingerprint()}")
    result = replay(files)
    print(describe(result))
    return 0 if result.same else 1


def _pack(settings: Settings, argv: list[str]) -> int:
    from emon.storage.evidence import evidence_pack

    p = argparse.ArgumentParser(
        prog="emon evidence", description="write the signed evidence pack of an alert"
    )
    p.add_argument("alert_id")
    p.add_argument("-o", "--output", required=True)
    ns = p.parse_args(argv)
    if not settings.signing_key_file:
        raise EvidenceError("EMON_SIGNING_KEY_FILE is not set: evidence packs cannot be signed")

    async def run(db: Database) -> bytes:
        now = datetime.now(UTC)
        blob = await evidence_pack(
            db,
            ns.alert_id,
            now,
            key_file=settings.signing_key_file,
            before_s=settings.evidence_before_s,
            after_s=settings.evidence_after_s,
        )
        from emon.evidence.pack import MANIFEST
        from emon.evidence.verify import read_pack

        case_id = json.loads(read_pack(blob)[MANIFEST]).get("case_id")
        await _audit(settings, db).record(
            Entry.of(
                _cli(),
                now,
                "evidence.pack",
                Outcome.ALLOWED,
                case_id=case_id,
                alert_id=ns.alert_id,
                detail={"bytes": len(blob), "via": "cli"},
            )
        )
        return blob

    blob = asyncio.run(_with_db(settings, run))
    Path(ns.output).write_bytes(blob)
    print(f"wrote {ns.output} ({len(blob)} bytes)")
    return 0


def _export(settings: Settings, argv: list[str]) -> int:
    from emon.storage.case_export import export_files, write_export

    p = argparse.ArgumentParser(prog="emon export", description="write a case in the open export format")
    p.add_argument("case_id")
    p.add_argument("-o", "--output", required=True, help="directory (created)")
    ns = p.parse_args(argv)

    async def run(db: Database) -> dict[str, bytes]:
        files = await export_files(db, ns.case_id)
        await _audit(settings, db).record(
            Entry.of(
                _cli(),
                datetime.now(UTC),
                "case.export",
                Outcome.ALLOWED,
                case_id=ns.case_id,
                detail={"files": len(files), "via": "cli"},
            )
        )
        return files

    written = write_export(Path(ns.output), asyncio.run(_with_db(settings, run)))
    print(f"wrote {len(written)} files to {ns.output}")
    return 0


def _import(settings: Settings, argv: list[str]) -> int:
    from emon.storage.case_export import import_files, read_export

    p = argparse.ArgumentParser(prog="emon import", description="import an exported case into this emon")
    p.add_argument("directory")
    ns = p.parse_args(argv)
    source = str(Path(ns.directory).resolve())
    try:
        files: dict[str, bytes] | InvalidInput = read_export(Path(ns.directory))
    except InvalidInput as exc:
        files = exc

    async def run(db: Database) -> str | InvalidInput:
        # What enters the database is recorded as what leaves it is: who imported which case, or what was refused.
        await db.migrate()
        detail: dict[str, object] = {"via": "cli", "from": source}
        try:
            if isinstance(files, InvalidInput):
                raise files
            detail["files"] = len(files)
            case_id = await import_files(db, files)
        except InvalidInput as exc:
            refused = Entry.of(
                _cli(),
                datetime.now(UTC),
                "case.import",
                Outcome.REFUSED,
                detail={**detail, "reason": str(exc)},
            )
            await _audit(settings, db).record(refused)
            return exc
        entry = Entry.of(
            _cli(), datetime.now(UTC), "case.import", Outcome.ALLOWED, case_id=case_id, detail=detail
        )
        await _audit(settings, db).record(entry)
        return case_id

    result = asyncio.run(_with_db(settings, run))
    if isinstance(result, InvalidInput):
        print(f"emon import: {result}", file=sys.stderr)
        return 2
    print(f"imported case {result}")
    return 0


def _cli() -> Principal:
    return Principal(f"cli:{getpass.getuser()}", Role.ADMIN, frozenset({ALL_UNITS}))


def _audit(settings: Settings, db: Database) -> AuditLog:
    key = None if settings.signing_key_file is None else load_private_key(settings.signing_key_file)
    return AuditLog(
        db, key, checkpoint_every=settings.audit_checkpoint_every, checkpoint_s=settings.audit_checkpoint_s
    )


async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    db = Database(settings.database_url, settings.db_schema)
    await db.open()
    try:
        return await work(db)
    finally:
        await db.close()


def _retention(settings: Settings, argv: list[str]) -> int:
    from emon.storage.retention import apply_retention

    p = argparse.ArgumentParser(prog="emon retention", description="remove positions of long-closed cases")
    p.add_argument(
        "--days",
        type=float,
        default=settings.retention_days,
        help="closed longer than this (default EMON_RETENTION_DAYS)",
    )
    ns = p.parse_args(argv)
    if ns.days <= 0:
        print(
            "emon retention: no period set (EMON_RETENTION_DAYS or --days): nothing removed", file=sys.stderr
        )
        return 2

    async def run(db: Database) -> list[Removed]:
        return await apply_retention(db, datetime.now(UTC), ns.days, _audit(settings, db), _cli())

    removed = asyncio.run(_with_db(settings, run))
    for r in removed:
        print(f"case {r.case_id}: {r.fixes} fixes, {r.snapshots} state snapshots removed")
    print(f"{len(removed)} cases past retention")
    return 0
