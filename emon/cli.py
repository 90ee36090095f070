"""The ``emon`` command: serve, demo, check-ban, simulate, token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from emon.errors import ConfigError
from emon.settings import Settings

if TYPE_CHECKING:
    import uvicorn

    from emon.runtime import Runtime


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
    config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_level=settings.log_level.lower(), timeout_graceful_shutdown=5)
    return run_server(uvicorn.Server(config), app.state.rt)


def run_server(server: uvicorn.Server, rt: Runtime) -> int:
    """Run until stopped; exit 1 if a background task died (so a supervisor restarts emon)."""
    rt.on_fatal = lambda _name: setattr(server, "should_exit", True)
    server.run()
    return 1 if rt.fatal is not None else 0


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
