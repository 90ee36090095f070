"""``emon evidence``, ``emon replay``, ``emon export``, ``emon import`` and ``emon retention``.

Exit codes: 0 done (pack intact, replay identical); 1 the check failed (a damaged pack names the file, a
replay shows the differences); 2 bad usage, configuration or input.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from emon.errors import ConfigError, EmonError, NotFound
from emon.evidence.errors import EvidenceError, PackDamaged
from emon.settings import Settings


def main(command: str, argv: list[str]) -> int:
    """Run one of the commands (``command`` as typed after ``emon``)."""
    try:
        if command == "evidence" and argv[:1] == ["verify"]:
            return _verify(argv[1:])
        if command == "replay":
            return _replay(argv)
        settings = Settings.from_env()
        if command == "evidence":
            return asyncio.run(_pack(settings, argv))
        if command == "export":
            return asyncio.run(_export(settings, argv))
        if command == "import":
            return asyncio.run(_import(settings, argv))
        if command == "retention":
            return asyncio.run(_retention(settings, argv))
    except ConfigError as exc:
        print(f"emon: configuration error: {exc}", file=sys.stderr)
        return 2
    except (EvidenceError, NotFound, OSError) as exc:
        print(f"emon {command}: {exc}", file=sys.stderr)
        return 2
    print(f"emon: unknown command {command}", file=sys.stderr)
    return 2


def _verify(argv: list[str]) -> int:
    from emon.evidence.verify import verify_pack

    p = argparse.ArgumentParser(prog="emon evidence verify", description="check a pack's signature and files")
    p.add_argument("pack")
    p.add_argument("--public-key", help="the deployment's published public key (PEM); default: the pack's own")
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
    from emon.evidence.collect import engine_fingerprint
    from emon.evidence.replay import describe, replay
    from emon.evidence.verify import verify_pack

    p = argparse.ArgumentParser(prog="emon replay", description="re-evaluate a pack and compare its decisions")
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


async def _pack(settings: Settings, argv: list[str]) -> int:
    from emon.evidence.collect import evidence_pack
    from emon.storage.postgres import Database

    p = argparse.ArgumentParser(prog="emon evidence", description="write the signed evidence pack of an alert")
    p.add_argument("alert_id")
    p.add_argument("-o", "--output", required=True)
    ns = p.parse_args(argv)
    db = Database(settings.database_url, settings.db_schema)
    await db.open()
    try:
        blob = await evidence_pack(db, ns.alert_id, datetime.now(UTC), key_file=settings.signing_key_file,
                                   before_s=settings.evidence_before_s, after_s=settings.evidence_after_s)
    finally:
        await db.close()
    Path(ns.output).write_bytes(blob)
    print(f"wrote {ns.output} ({len(blob)} bytes)")
    return 0


async def _export(settings: Settings, argv: list[str]) -> int:
    from emon.export.case_export import export_case
    from emon.storage.postgres import Database

    p = argparse.ArgumentParser(prog="emon export", description="write a case in the open export format")
    p.add_argument("case_id")
    p.add_argument("-o", "--output", required=True, help="directory (created)")
    ns = p.parse_args(argv)
    db = Database(settings.database_url, settings.db_schema)
    await db.open()
    try:
        written = await export_case(db, ns.case_id, Path(ns.output))
    finally:
        await db.close()
    print(f"wrote {len(written)} files to {ns.output}")
    return 0


async def _import(settings: Settings, argv: list[str]) -> int:
    from emon.export.case_export import import_case
    from emon.storage.postgres import Database

    p = argparse.ArgumentParser(prog="emon import", description="import an exported case into this emon")
    p.add_argument("directory")
    ns = p.parse_args(argv)
    db = Database(settings.database_url, settings.db_schema)
    await db.open()
    try:
        await db.migrate()
        case_id = await import_case(db, Path(ns.directory))
    except EmonError as exc:
        print(f"emon import: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.close()
    print(f"imported case {case_id}")
    return 0


async def _retention(settings: Settings, argv: list[str]) -> int:
    from emon.export.retention import apply_retention
    from emon.storage.postgres import Database

    p = argparse.ArgumentParser(prog="emon retention", description="remove positions of long-closed cases")
    p.add_argument("--days", type=float, default=settings.retention_days,
                   help="closed longer than this (default EMON_RETENTION_DAYS)")
    ns = p.parse_args(argv)
    if ns.days <= 0:
        print("emon retention: no period set (EMON_RETENTION_DAYS or --days): nothing removed", file=sys.stderr)
        return 2
    db = Database(settings.database_url, settings.db_schema)
    await db.open()
    try:
        removed = await apply_retention(db, datetime.now(UTC), ns.days)
    finally:
        await db.close()
    for r in removed:
        print(f"case {r.case_id}: {r.fixes} fixes, {r.snapshots} state snapshots removed")
    print(f"{len(removed)} cases past retention")
    return 0
