"""An evidence pack's files from collected data, and the signed zip (pure: no I/O, time passed in).

Every file is listed in ``manifest.json`` with its SHA-256; ``manifest.sig`` is the Ed25519 signature of
the exact bytes of ``manifest.json``; ``public_key.pem`` is the key that signed it. Members are stored
uncompressed, so a changed byte shows as a changed hash of the file that holds it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from emon import signing
from emon.evidence.summary import geojson, summary_html
from emon.fix import Fix

FORMAT = "emon-evidence/1"
FIX_COLUMNS = (
    "device_id",
    "role",
    "ts",
    "seq",
    "lat",
    "lon",
    "acc_m",
    "batt",
    "src",
    "speed_mps",
    "heading_deg",
    "received_at",
)
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public_key.pem"
# The members a replay needs; the others are for people (and for completeness of the record).
REPLAY_FILES = ("start_state.json", "order_versions.json", "journal.json", "fixes.csv", "decisions.json")


@dataclass(frozen=True, slots=True)
class StoredFix:
    """A fix as stored, with the time PostgreSQL received it (UTC) and the device's role in the case."""

    fix: Fix
    received_at: datetime
    role: str  # offender / victim


@dataclass(frozen=True)
class PackData:
    """Everything a pack holds, as collected from the record.

    ``start`` is the evaluation state at the window start: {"n": journal step, "at": UTC time,
    "order_version", "config": EvalConfig fields, "state": CaseState dict}. ``journal`` holds the
    steps after it up to the window end: {"n", "kind", "now", "fixes": [[device, ts, seq]], "detail"}.
    ``decisions`` are the stored decisions of the window: {"id", "order_version", "explanation"}.
    """

    alert: dict[str, Any]
    alert_history: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    case_id: str
    window_start: datetime
    window_end: datetime
    start: dict[str, Any]
    order_versions: list[dict[str, Any]]
    journal: list[dict[str, Any]]
    fixes: list[StoredFix]
    events: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    engine: dict[str, Any]
    notes: list[str]


def jsonable(value: Any) -> Any:
    """``value`` with datetimes as ISO 8601, UUIDs as strings and bytes as UTF-8 text (JSON-ready)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def dumps(value: Any) -> bytes:
    """Stable JSON: sorted keys, UTF-8, two-space indent, trailing newline."""
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n").encode()


def fixes_csv(fixes: Sequence[StoredFix]) -> bytes:
    """The fixes as stored, one row each; floats in their shortest exact form (``repr``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIX_COLUMNS)
    for s in fixes:
        f = s.fix
        writer.writerow(
            [
                f.device_id,
                s.role,
                f.ts.isoformat(),
                -1 if f.seq is None else f.seq,
                repr(f.lat),
                repr(f.lon),
                repr(f.acc_m),
                _num(f.batt),
                "" if f.src is None else f.src.value,
                _num(f.speed_mps),
                _num(f.heading_deg),
                s.received_at.isoformat(),
            ]
        )
    return out.getvalue().encode()


def _num(value: float | None) -> str:
    return "" if value is None else repr(value)


def pack_files(data: PackData, created_at: datetime) -> dict[str, bytes]:
    """The content files of a pack (without manifest, signature and key)."""
    start_versions = [v for v in data.order_versions if v["version"] == data.start.get("order_version")]
    files = {
        "alert.json": dumps(data.alert),
        "alert_history.json": dumps(data.alert_history),
        "deliveries.json": dumps(data.deliveries),
        "order_versions.json": dumps(data.order_versions),
        "start_state.json": dumps(data.start),
        "settings.json": dumps(data.start.get("config", {})),
        "engine.json": dumps(data.engine),
        "journal.json": dumps(data.journal),
        "fixes.csv": fixes_csv(data.fixes),
        "events.json": dumps(data.events),
        "decisions.json": dumps(data.decisions),
        "map.geojson": dumps(geojson(data.fixes, start_versions[0]["document"] if start_versions else None)),
    }
    files["summary.html"] = summary_html(data, created_at).encode()
    return files


def manifest(
    data: PackData, files: Mapping[str, bytes], public_key_pem: bytes, created_at: datetime
) -> bytes:
    return dumps(
        {
            "format": FORMAT,
            "alert_id": data.alert.get("alert_id"),
            "case_id": data.case_id,
            "created_at": created_at.isoformat(),
            "window": {"start": data.window_start.isoformat(), "end": data.window_end.isoformat()},
            "key_id": signing.key_id(signing.public_key_from_pem(public_key_pem)),
            "notes": data.notes,
            "files": {name: hashlib.sha256(body).hexdigest() for name, body in sorted(files.items())},
        }
    )


def build_pack(data: PackData, key: Ed25519PrivateKey, created_at: datetime) -> bytes:
    """The signed zip of ``data`` (bytes), created at UTC ``created_at``."""
    pub = signing.public_pem(key.public_key()).encode()
    files = pack_files(data, created_at)
    files[PUBLIC_KEY] = pub
    body = manifest(data, files, pub, created_at)
    return zip_bytes({**files, MANIFEST: body, SIGNATURE: signing.sign_b64(key, body) + b"\n"}, created_at)


def zip_bytes(files: Mapping[str, bytes], created_at: datetime) -> bytes:
    out = io.BytesIO()
    stamp = (
        created_at.year,
        created_at.month,
        created_at.day,
        created_at.hour,
        created_at.minute,
        created_at.second,
    )
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for name in sorted(files):
            z.writestr(zipfile.ZipInfo(name, date_time=stamp), files[name])
    return out.getvalue()
