"""The ``emon`` command: serve, demo, check-ban, simulate, migrate, keygen, audit verify."""

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
    sub.add_parser("user", help="people: emon user add|list (emon user --help)", add_help=False)
    sub.add_parser(
        "token", help="API tokens: emon token issue|list|revoke (emon token --help)", add_help=False
    )
    keygen = sub.add_parser("keygen", help="write a new Ed25519 signing key (for EMON_SIGNING_KEY_FILE)")
    keygen.add_argument(
        "-o", "--output", required=True, help="where to write the private key (not overwritten)"
    )
    audit = sub.add_parser("audit", help="the audit log (emon audit verify)")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify", help="check the hash chain and signed checkpoints; exit 1 if broken"
    )
    verify.add_argument(
        "--public-key",
        action="append",
        default=[],
        help="a trusted public (or private) key PEM; repeatable; default: EMON_SIGNING_KEY_FILE",
    )
    sub.add_parser(
        "mqtt-credentials",
        help="issue a device's MQTT password (emon mqtt-credentials --help)",
        add_help=False,
    )
    for name, text in EVIDENCE_COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    if args and args[0] in EVIDENCE_COMMANDS:
        from emon.evidence.cli import main as evidence_main

        return evidence_main(args[0], args[1:])
    if args and args[0] in ("check-ban", "simulate"):
        return _delegate(args[0], args[1:])
    if args and args[0] == "mqtt-credentials":
        return mqtt_credentials(args[1:])
    if args and args[0] in ("user", "token"):
        from emon.access_cli import main as access_main

        return access_main(args)
    ns = parser.parse_args(args)
    if ns.command == "keygen":
        return _keygen(ns.output)
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
    if ns.command == "audit":
        return asyncio.run(_audit_verify(settings, ns.public_key))
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
    print(
        f"{ns.username}: {action} in {ns.password_file}; now reload the broker, e.g. "
        "`systemctl reload mosquitto` or `kill -HUP $(pidof mosquitto)`",
        file=sys.stderr,
    )
    return 0


def serve(settings: Settings) -> int:
    import uvicorn

    from emon.api.app import create_app

    try:
        app = create_app(settings)
    except ConfigError as exc:  # e.g. EMON_MQTT_CA_FILE readable but not a certificate
        print(f"emon: configuration error: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
    )
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


def _keygen(output: str) -> int:
    from pathlib import Path

    from emon.signing import generate_key_file, key_id, public_pem

    try:
        public = generate_key_file(Path(output))
    except FileExistsError:
        print(f"emon: {output} exists; not overwritten", file=sys.stderr)
        return 2
    print(f"wrote {output} (mode 0600, key id {key_id(public)}); set EMON_SIGNING_KEY_FILE={output}")
    print("public key (keep a copy outside the deployment, to verify with):")
    print(public_pem(public), end="")
    return 0


async def _audit_verify(settings: Settings, key_files: list[str]) -> int:
    """Exit 0 when the chain and every signed checkpoint hold; 1 naming the first broken record."""
    from emon.errors import StorageError
    from emon.signing import key_id, load_private_key, load_public_key
    from emon.storage.audit import AuditLog
    from emon.storage.postgres import DRIVER_ERRORS, Database

    try:
        keys = [load_public_key(f) for f in key_files]
        if not keys and settings.signing_key_file is not None:
            keys = [load_private_key(settings.signing_key_file).public_key()]
    except ConfigError as exc:
        print(f"emon: {exc}", file=sys.stderr)
        return 2
    db = Database(settings.database_url, settings.db_schema)
    try:
        await db.open()
        verdict = await AuditLog(db).verify({key_id(k): k for k in keys})
    except StorageError as exc:
        print(f"emon: cannot read the audit log: {exc}", file=sys.stderr)
        return 2
    except DRIVER_ERRORS as exc:
        print(f"emon: cannot read the audit log: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.close()
    for note in verdict.notes:
        print(f"note: {note}")
    if not verdict.ok:
        print(f"BROKEN at record {verdict.first_broken}: {verdict.problem}")
        return 1
    print(f"ok: {verdict.records} records, {verdict.checkpoints} signed checkpoints verified")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
