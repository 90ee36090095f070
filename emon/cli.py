"""The ``emon`` command: serve, demo, check-ban, simulate, token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from emon.errors import ConfigError
from emon.settings import Settings


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
    sub.add_parser(
        "mqtt-credentials", help="issue a device's MQTT password (emon mqtt-credentials --help)", add_help=False
    )
    if args and args[0] in ("check-ban", "simulate"):
        return _delegate(args[0], args[1:])
    if args and args[0] == "mqtt-credentials":
        return mqtt_credentials(args[1:])
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


def mqtt_credentials(argv: list[str]) -> int:
    """Issue (or re-issue) one MQTT account in a Mosquitto password file; print the password once."""
    from pathlib import Path

    from emon.errors import InvalidInput
    from emon.mqtt.passwd import new_password, set_credentials

    parser = argparse.ArgumentParser(
        prog="emon mqtt-credentials",
        description="Give a device (username = device id) or an OwnTracks user its own MQTT password. "
        "The password is printed once and only its hash is stored; then reload Mosquitto (SIGHUP).",
    )
    parser.add_argument("username", help="the device id, the OwnTracks user, or emon's own account")
    parser.add_argument("--password-file", required=True, type=Path, help="Mosquitto's password_file")
    ns = parser.parse_args(argv)
    password = new_password()
    try:
        replaced = set_credentials(ns.password_file, ns.username, password)
    except InvalidInput as exc:
        print(f"emon mqtt-credentials: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"emon mqtt-credentials: cannot write {ns.password_file}: {exc}", file=sys.stderr)
        return 1
    print(password)
    action = "replaced (the old password no longer works after the reload)" if replaced else "added"
    print(f"{ns.username}: {action} in {ns.password_file}; now reload the broker, e.g. "
          "`systemctl reload mosquitto` or `kill -HUP $(pidof mosquitto)`", file=sys.stderr)
    return 0


def serve(settings: Settings) -> int:
    import uvicorn

    from emon.api.app import create_app

    try:
        app = create_app(settings)
    except ConfigError as exc:  # e.g. EMON_MQTT_CA_FILE readable but not a certificate
        print(f"emon: configuration error: {exc}", file=sys.stderr)
        return 2
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
