"""The ``emon`` command: serve, demo, check-ban, simulate, token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from emon.errors import ConfigError
from emon.settings import Settings

EVIDENCE_COMMANDS = {
    "evidence": "write an alert's signed evidence pack (ALERT_ID -o pack.zip), or check one (verify pack.zip)",
    "replay": "re-evaluate an evidence pack and compare with the decisions on record",
    "export": "write a case in the open export format (CASE_ID -o DIR)",
    "import": "import an exported case (DIR) into this emon",
    "retention": "remove the positions of cases closed longer than EMON_RETENTION_DAYS (not legal holds)",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="emon", description="Electronic monitoring and proximity alerts.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service against the servers named by EMON_* variables")
    demo = sub.add_parser(
        "demo", help="run everything embedded (broker, PostgreSQL, Redis) plus a live scenario"
    )
    demo.add_argument("--data-dir", default=".emon", help="where embedded servers keep their data")
    demo.add_argument("--no-simulate", action="store_true", help="start the service only")
    sub.add_parser(
        "check-ban", help="is a proposed order enforceable? (emon check-ban --help)", add_help=False
    )
    sub.add_parser(
        "simulate", help="run scenarios against a running emon (emon simulate --help)", add_help=False
    )
    sub.add_parser("migrate", help="apply database migrations and exit")
    for name, text in EVIDENCE_COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    if args and args[0] in EVIDENCE_COMMANDS:
        from emon.evidence.cli import main as evidence_main

        return evidence_main(args[0], args[1:])
    if args and args[0] in ("check-ban", "simulate"):
        return _delegate(args[0], args[1:])
    ns = parser.parse_args(args)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"emon: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if ns.command == "serve":
        return serve(settings)
    if ns.command == "migrate":
        return asyncio.run(_migrate(settings))
    if ns.command == "demo":
        from emon.demo import run_demo

        return run_demo(settings, data_dir=ns.data_dir, simulate=not ns.no_simulate)
    return 2


def _delegate(command: str, rest: list[str]) -> int:
    if command == "check-ban":
        from emon.feasibility.cli import main as check_ban

        return int(check_ban(rest))
    from simulators.runner import main as simulate

    return int(simulate(rest))


def serve(settings: Settings) -> int:
    import uvicorn

    from emon.api.app import create_app

    app = create_app(settings)
    uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level=settings.log_level.lower(), timeout_graceful_shutdown=5)
    return 0


async def _migrate(settings: Settings) -> int:
    from emon.storage.postgres import Database

    db = Database(settings.database_url, settings.db_schema)
    await db.open()
    try:
        applied = await db.migrate()
        print("applied:", ", ".join(applied) or "nothing (up to date)")
    finally:
        await db.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
