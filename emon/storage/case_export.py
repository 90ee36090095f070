"""Export and import of one case in an open format: JSON, CSV and GeoJSON files in a directory.

Layout (``docs/evidence.md``): ``case.json``, ``devices.json``, ``order_versions.json``, ``fixes.csv``,
``track.geojson``, ``events.csv``, ``alerts.json`` (each with its history and deliveries), ``decisions.json``
and ``manifest.json`` (format and the SHA-256 of each file). The files hold no export time, so exporting
an imported case gives the same files.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from emon.errors import InvalidInput, NotFound
from emon.evidence.pack import FIX_COLUMNS as PACK_FIX_COLUMNS
from emon.evidence.pack import dumps, jsonable
from emon.storage.alerts import ALERT_COLUMNS as STORED_ALERT_COLUMNS
from emon.storage.postgres import Database

FORMAT = "emon-case-export/1"
# The stored fix row (an evidence pack adds each fix's role in the case; an export lists devices).
FIX_COLUMNS = tuple(c for c in PACK_FIX_COLUMNS if c != "role")
EVENT_COLUMNS = ("device_id", "ts", "type", "data", "received_at")
CASE_COLUMNS = (
    "case_id",
    "risk",
    "offender_device",
    "victim_device",
    "document",
    "status",
    "created_at",
    "updated_at",
    "closed_at",
    "closed_by",
    "version",
    "legal_hold",
    "legal_hold_reason",
    "legal_hold_by",
    "legal_hold_at",
)
DEVICE_COLUMNS = ("device_id", "kind", "owntracks_topic", "report_interval_s", "created_at")
VERSION_COLUMNS = ("version", "changed_at", "changed_by", "action", "reason", "document")
# The alert row as stored, and the order version it was decided under (the export names it).
ALERT_COLUMNS = (*STORED_ALERT_COLUMNS, "order_version")
HISTORY_COLUMNS = ("at", "actor", "action", "state", "detail")
DELIVERY_COLUMNS = (
    "delivery_id",
    "channel",
    "target",
    "msg_type",
    "body",
    "state",
    "requires_ack",
    "attempts",
    "created_at",
    "first_sent_at",
    "delivered_at",
    "acked_at",
    "last_error",
    "failing",
    "escalated",
)
ATTEMPT_COLUMNS = ("at", "ok", "latency_s", "detail")
DECISION_COLUMNS = ("type", "rule", "at", "episode", "decided_at", "live", "explanation", "order_version")
JSONB = frozenset({"document", "data", "offender_position", "victim_position", "explanation", "detail"})

Cur = AsyncCursor[DictRow]


async def _rows(cur: Cur, columns: Sequence[str], sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    await cur.execute(f"SELECT {', '.join(columns)} {sql}".encode(), params)
    return [jsonable(dict(r)) for r in await cur.fetchall()]


def _csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r[c]) for c in columns])
    return out.getvalue().encode()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


async def export_files(db: Database, case_id: str) -> dict[str, bytes]:
    """The export of ``case_id`` as {file name: bytes}; :class:`NotFound` for an unknown case."""
    async with db.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        found = await _rows(cur, CASE_COLUMNS, "FROM cases WHERE case_id = %s", (case_id,))
        if not found:
            raise NotFound(f"no case {case_id[:80]!r}")
        case = found[0]
        devices = [d for d in (case["offender_device"], case["victim_device"]) if d]
        device_rows = await _rows(
            cur, DEVICE_COLUMNS, "FROM devices WHERE device_id = ANY (%s) ORDER BY device_id", (devices,)
        )
        versions = await _rows(
            cur, VERSION_COLUMNS, "FROM case_history WHERE case_id = %s ORDER BY version", (case_id,)
        )
        fixes = await _rows(
            cur, FIX_COLUMNS, "FROM fixes WHERE device_id = ANY (%s) ORDER BY device_id, ts, seq", (devices,)
        )
        events = await _rows(
            cur,
            EVENT_COLUMNS,
            "FROM device_events WHERE device_id = ANY (%s) ORDER BY device_id, ts, type",
            (devices,),
        )
        alerts = await _rows(
            cur, ALERT_COLUMNS, "FROM alerts WHERE case_id = %s ORDER BY opened_at, alert_id", (case_id,)
        )
        for a in alerts:
            a["history"] = await _rows(
                cur, HISTORY_COLUMNS, "FROM alert_history WHERE alert_id = %s ORDER BY id", (a["alert_id"],)
            )
            await cur.execute(
                f"SELECT {', '.join(DELIVERY_COLUMNS)} FROM alert_outbox WHERE alert_id = %s "
                "ORDER BY created_at, delivery_id".encode(),
                (a["alert_id"],),
            )
            deliveries = []
            for r in await cur.fetchall():
                d = jsonable({k: v for k, v in r.items() if k != "body"})
                d["body_base64"] = base64.b64encode(bytes(r["body"])).decode()
                d["attempts_log"] = await _rows(
                    cur,
                    ATTEMPT_COLUMNS,
                    "FROM alert_delivery_attempts WHERE delivery_id = %s ORDER BY id",
                    (d["delivery_id"],),
                )
                deliveries.append(d)
            a["deliveries"] = deliveries
        decisions = await _rows(
            cur, DECISION_COLUMNS, "FROM eval_events WHERE case_id = %s ORDER BY at, id", (case_id,)
        )
    files = {
        "case.json": dumps(case),
        "devices.json": dumps(device_rows),
        "order_versions.json": dumps(versions),
        "fixes.csv": _csv(FIX_COLUMNS, fixes),
        "track.geojson": dumps(_track(fixes)),
        "events.csv": _csv(EVENT_COLUMNS, events),
        "alerts.json": dumps(alerts),
        "decisions.json": dumps(decisions),
    }
    files["manifest.json"] = dumps(
        {
            "format": FORMAT,
            "case_id": case_id,
            "files": {n: hashlib.sha256(b).hexdigest() for n, b in sorted(files.items())},
        }
    )
    return files


def _track(fixes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [f["lon"], f["lat"]]},
                "properties": {"device_id": f["device_id"], "ts": f["ts"], "acc_m": f["acc_m"]},
            }
            for f in fixes
        ],
    }


def write_export(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """Write an export's files into ``folder`` (created); returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, body in sorted(files.items()):
        (folder / name).write_bytes(body)
        written.append(folder / name)
    return written


def read_export(folder: Path) -> dict[str, bytes]:
    """The files of an export, checked against its manifest (:class:`InvalidInput` names a bad file)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{folder}/manifest.json: not a readable export manifest") from exc
    if manifest.get("format") != FORMAT:
        raise InvalidInput(f"{folder}/manifest.json: format {manifest.get('format')!r} is not {FORMAT}")
    files: dict[str, bytes] = {}
    for name, digest in manifest["files"].items():
        try:
            body = (folder / name).read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{name}: missing from the export") from exc
        if hashlib.sha256(body).hexdigest() != digest:
            raise InvalidInput(f"{name}: SHA-256 differs from the manifest")
        files[name] = body
    return files


def _read_csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def _param(column: str, value: Any, jsonb: frozenset[str]) -> Any:
    if value is None or value == "":
        return None
    if column in jsonb:
        return Jsonb(json.loads(value) if isinstance(value, str) else value)
    return value


async def _insert(
    cur: Cur,
    table: str,
    row: dict[str, Any],
    columns: Sequence[str],
    conflict: str = "",
    jsonb: frozenset[str] = JSONB,
) -> None:
    values = [_param(c, row.get(c), jsonb) for c in columns]
    await cur.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) {conflict}".encode(),
        values,
    )


async def import_files(db: Database, files: dict[str, bytes]) -> str:
    """Import an export (as read by :func:`read_export`) into this database, in one transaction; returns
    the case id.

    Devices that already exist are kept as they are; a case id that exists is refused. Deliveries that were
    still pending are imported as never due: the importing emon does not send another's notifications.
    """
    try:
        case = json.loads(files["case.json"])
        devices = json.loads(files["devices.json"])
        versions = json.loads(files["order_versions.json"])
        alerts = json.loads(files["alerts.json"])
        decisions = json.loads(files["decisions.json"])
        fixes = _read_csv(files["fixes.csv"])
        events = _read_csv(files["events.csv"])
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"the export is incomplete or malformed: {exc}") from exc
    case_id = str(case["case_id"])
    try:
        await _write(db, case_id, case, devices, versions, alerts, decisions, fixes, events)
    except (psycopg.DataError, psycopg.IntegrityError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"the export of case {case_id} cannot be imported: {exc}") from exc
    return case_id


async def _write(
    db: Database,
    case_id: str,
    case: dict[str, Any],
    devices: list[dict[str, Any]],
    versions: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    decisions: list[dict[str, Any]],
    fixes: list[dict[str, str]],
    events: list[dict[str, str]],
) -> None:
    async with db.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT 1 FROM cases WHERE case_id = %s", (case_id,))
        if await cur.fetchone() is not None:
            raise InvalidInput(f"case {case_id} already exists here")
        for d in devices:
            await _insert(cur, "devices", d, DEVICE_COLUMNS, "ON CONFLICT DO NOTHING")
        await _insert(cur, "cases", case, CASE_COLUMNS)
        for v in versions:
            await _insert(cur, "case_history", {**v, "case_id": case_id}, ("case_id", *VERSION_COLUMNS))
        for f in fixes:
            await _insert(cur, "fixes", f, FIX_COLUMNS, "ON CONFLICT DO NOTHING")
        for e in events:
            await _insert(cur, "device_events", e, EVENT_COLUMNS, "ON CONFLICT DO NOTHING")
        for a in alerts:
            await _insert(cur, "alerts", a, ALERT_COLUMNS)
            for h in a["history"]:
                await _insert(
                    cur, "alert_history", {**h, "alert_id": a["alert_id"]}, ("alert_id", *HISTORY_COLUMNS)
                )
            for d in a["deliveries"]:
                row = {
                    **d,
                    "alert_id": a["alert_id"],
                    "body": base64.b64decode(d["body_base64"]),
                    "next_attempt_at": "infinity",
                }
                await _insert(cur, "alert_outbox", row, ("alert_id", *DELIVERY_COLUMNS, "next_attempt_at"))
                for t in d["attempts_log"]:
                    await _insert(
                        cur,
                        "alert_delivery_attempts",
                        {**t, "delivery_id": d["delivery_id"]},
                        ("delivery_id", *ATTEMPT_COLUMNS),
                        jsonb=frozenset(),
                    )
        for x in decisions:
            await _insert(
                cur,
                "eval_events",
                {**x, "case_id": case_id},
                ("case_id", *DECISION_COLUMNS),
                "ON CONFLICT DO NOTHING",
            )
