"""Collecting an alert's evidence from PostgreSQL (the I/O edge of evidence packs).

The window: from the last state snapshot at least ``before_s`` before the episode began (else the
earliest snapshot of the case) to ``after_s`` after the alert's episode ended (or was resolved; or the
time of the pack while it goes on). Everything the pack holds is what the record holds for that window.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import hashlib
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.rows import dict_row

from emon import __version__
from emon.errors import ConfigError, NotFound
from emon.evidence.errors import EvidenceError
from emon.evidence.pack import PackData, StoredFix, build_pack, jsonable, pack_files
from emon.evidence.replay import describe, replay
from emon.fix import Fix, FixSource
from emon.partitioning import partition_of
from emon.signing import load_private_key
from emon.storage.postgres import Database

_FIX_SELECT = (
    "SELECT f.device_id, f.ts, f.seq, f.lat, f.lon, f.acc_m, f.batt, f.src, f.speed_mps, f.heading_deg, f.received_at "
    "FROM fixes f JOIN unnest(%s::text[], %s::timestamptz[], %s::bigint[]) AS k(d, t, q) "
    "ON f.device_id = k.d AND f.ts = k.t AND f.seq = k.q ORDER BY f.ts, f.device_id, f.seq"
)


def engine_fingerprint() -> dict[str, str]:
    """emon's version and the SHA-256 over the geofence engine's source files (what decided)."""
    digest = hashlib.sha256()
    folder = resources.files("emon.geofence")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".py"):
            digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return {"emon_version": __version__, "geofence_sha256": digest.hexdigest()}


async def collect(db: Database, alert_id: str, now: datetime, *, before_s: float, after_s: float) -> PackData:
    """The evidence of ``alert_id`` as of UTC ``now``; :class:`NotFound` for an unknown alert."""
    try:
        uuid.UUID(alert_id)
    except ValueError as exc:
        raise NotFound(f"no alert {alert_id[:80]!r}") from exc
    async with db.pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        # One snapshot of the record: a step and its decisions are both in the pack, or neither.
        await cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        await cur.execute("SELECT * FROM alerts WHERE alert_id = %s", (alert_id,))
        alert = await cur.fetchone()
        if alert is None:
            raise NotFound(f"no alert {alert_id}")
        case_id = alert["case_id"]
        await cur.execute("SELECT offender_device, victim_device FROM cases WHERE case_id = %s", (case_id,))
        devices = await cur.fetchone() or {"offender_device": None, "victim_device": None}
        roles = {
            d: r
            for r, d in (("offender", devices["offender_device"]), ("victim", devices["victim_device"]))
            if d
        }
        await cur.execute(
            "SELECT at, actor, action, state, detail FROM alert_history WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        )
        history = [jsonable(r) for r in await cur.fetchall()]
        deliveries = await _deliveries(cur, alert_id)

        end = alert["ended_at"] or alert["resolved_at"] or now
        window_end = min(now, end + timedelta(seconds=after_s))
        want = alert["episode"] - timedelta(seconds=before_s)
        await cur.execute(
            "SELECT n, at, order_version, config, state FROM eval_snapshots WHERE case_id = %s AND at <= %s "
            "ORDER BY n DESC LIMIT 1",
            (case_id, want),
        )
        snap = await cur.fetchone()
        notes: list[str] = []
        if snap is None:
            await cur.execute(
                "SELECT n, at, order_version, config, state FROM eval_snapshots WHERE case_id = %s AND at <= %s "
                "ORDER BY n LIMIT 1",
                (case_id, window_end),
            )
            snap = await cur.fetchone()
            if snap is not None:
                notes.append(
                    f"the earliest evaluation state on record ({snap['at'].isoformat()}) starts the window"
                )
        if snap is None:
            notes.append(
                "no evaluation state on record before the incident: the decisions cannot be replayed"
            )
            start: dict[str, Any] = {}
            window_start, after_n = want, None
        else:
            start = {
                "n": snap["n"],
                "at": snap["at"].isoformat(),
                "order_version": snap["order_version"],
                "config": snap["config"],
                "state": snap["state"],
            }
            window_start, after_n = snap["at"], snap["n"]

        journal: list[dict[str, Any]] = []
        last_n = after_n
        if after_n is not None:
            # Steps are in execution order (n); their decision times are nearly but not strictly ordered (a
            # batch is stamped when decoded, a tick when it runs), so the window ends at the last step whose
            # time is within it, and takes every step before that one.
            await cur.execute(
                "SELECT n, kind, now, fixes, detail FROM eval_journal WHERE n > %s AND now <= %s "
                "AND (case_ids = '{}' OR %s = ANY (case_ids)) ORDER BY n",
                (after_n, window_end + timedelta(minutes=1), case_id),
            )
            rows = [r for r in await cur.fetchall() if _of_partition(r["detail"], case_id)]
            last_n = max((r["n"] for r in rows if r["now"] <= window_end), default=after_n)
            rows = [r for r in rows if r["n"] <= last_n]
            ranged = await _stored_keys(
                cur, list(roles), [r["detail"] for r in rows if "stored_through" in r["detail"]]
            )
            for r in rows:
                keys = [k for k in r["fixes"] if k[0] in roles]
                if "stored_through" in r["detail"]:
                    keys = ranged.get(r["detail"]["stored_through"], [])
                if r["kind"] == "batch" and not keys:
                    continue
                journal.append(
                    {
                        "n": r["n"],
                        "kind": r["kind"],
                        "now": r["now"].isoformat(),
                        "fixes": keys,
                        "detail": r["detail"],
                    }
                )
        keys = [k for step in journal for k in step["fixes"]]
        await cur.execute(
            _FIX_SELECT,
            ([k[0] for k in keys], [datetime.fromisoformat(k[1]) for k in keys], [int(k[2]) for k in keys]),
        )
        fixes = [_stored(r, roles) for r in await cur.fetchall()]
        await cur.execute(
            "SELECT device_id, ts, type, data, received_at FROM device_events WHERE device_id = ANY (%s) "
            "AND ts >= %s AND ts <= %s ORDER BY ts, device_id, type",
            (list(roles), window_start, window_end),
        )
        events = [{**jsonable(r), "role": roles[r["device_id"]]} for r in await cur.fetchall()]
        decisions: list[dict[str, Any]] = []
        if after_n is not None:
            await cur.execute(
                "SELECT id, order_version, explanation FROM eval_events WHERE case_id = %s AND journal_n > %s "
                "AND journal_n <= %s ORDER BY id",
                (case_id, after_n, last_n),
            )
            decisions = [dict(r) for r in await cur.fetchall()]
        wanted = {start.get("order_version")} | {
            s["detail"].get("version") for s in journal if s["kind"] == "case"
        }
        await cur.execute(
            "SELECT case_id, version, changed_at, changed_by, action, reason, document FROM case_history "
            "WHERE case_id = %s AND version = ANY (%s) ORDER BY version",
            (case_id, [v for v in wanted if v is not None]),
        )
        versions = [jsonable(r) for r in await cur.fetchall()]

    if start and devices["victim_device"]:
        start = _without_old_victim_positions(start, devices["victim_device"], window_start)
    return PackData(
        alert=jsonable(dict(alert)),
        alert_history=history,
        deliveries=deliveries,
        case_id=case_id,
        window_start=window_start,
        window_end=window_end,
        start=start,
        order_versions=versions,
        journal=journal,
        fixes=fixes,
        events=events,
        decisions=decisions,
        engine=engine_fingerprint(),
        notes=notes,
    )


def finish_pack(data: PackData, key: Ed25519PrivateKey, now: datetime) -> bytes:
    """Replay ``data`` once — so the pack says whether its own decisions can be reached again — and build
    the signed zip (pure CPU work: the API runs it in a worker thread, off the event loop)."""
    if data.start:
        data = replace(data, notes=[*data.notes, "at packing: " + describe(replay(pack_files(data, now)))])
    return build_pack(data, key, now)


def _of_partition(detail: dict[str, Any], case_id: str) -> bool:
    """Whether a journal step concerns ``case_id``'s partition: several instances journal each
    partition's ticks and batches apart (``partition`` of ``partitions`` in the detail); one instance's
    steps name no partition and concern every case."""
    if "partition" not in detail:
        return True
    return partition_of(case_id, int(detail["partitions"])) == int(detail["partition"])


async def _stored_keys(
    cur: Any, devices: list[str], ranges: list[dict[str, Any]]
) -> dict[str, list[list[Any]]]:
    """The (device, ts, seq) keys of batches journaled as ranges of receiving times (``stored_after``,
    ``stored_through``], by ``stored_through``: every fix of ``devices`` received in the range, in the
    engine's batch order. One query for the whole window (fixes have no index on receiving time)."""
    if not ranges:
        return {}
    bounds = sorted(
        (
            (datetime.fromisoformat(r["stored_after"]), datetime.fromisoformat(r["stored_through"]), r)
            for r in ranges
        ),
        key=lambda b: (b[0], b[1]),
    )
    await cur.execute(
        "SELECT device_id, ts, seq, received_at FROM fixes WHERE device_id = ANY (%s) AND received_at > %s "
        "AND received_at <= %s ORDER BY ts, device_id, seq",
        (devices, bounds[0][0], max(b[1] for b in bounds)),
    )
    out: dict[str, list[list[Any]]] = {}
    ends = [b[1] for b in bounds]
    for f in await cur.fetchall():
        i = bisect.bisect_left(ends, f["received_at"])  # the first range ending at or after it
        if i < len(bounds) and bounds[i][0] < f["received_at"]:
            key = [f["device_id"], f["ts"].isoformat(), int(f["seq"])]
            out.setdefault(bounds[i][2]["stored_through"], []).append(key)
    return out


def _without_old_victim_positions(
    start: dict[str, Any], victim: str, window_start: datetime
) -> dict[str, Any]:
    """The starting state with the victim's remembered fixes older than ``window_start - stale_s`` left
    out: the pack holds the victim's positions only for the incident's window (and older ones cannot make
    a fresh counterpart). The replay at packing tells whether this changed any decision."""
    cutoff = window_start - timedelta(seconds=float(start["config"].get("stale_s", 600.0)))
    state = dict(start["state"])
    track = state.get("devices", {}).get(victim)
    if track is None:
        return start

    def keep(rec: list[Any] | None) -> list[Any] | None:
        return rec if rec is not None and datetime.fromisoformat(rec[0]) >= cutoff else None

    pruned = {
        "last": keep(track["last"]),
        "ref": keep(track["ref"]),
        "history": [r for r in track["history"] if keep(r) is not None],
    }
    state["devices"] = {**state["devices"], victim: pruned}
    return {**start, "state": state}


def _stored(r: dict[str, Any], roles: dict[str, str]) -> StoredFix:
    seq = int(r["seq"])
    fix = Fix(
        device_id=r["device_id"],
        ts=r["ts"],
        lat=float(r["lat"]),
        lon=float(r["lon"]),
        acc_m=float(r["acc_m"]),
        seq=None if seq == -1 else seq,
        batt=None if r["batt"] is None else float(r["batt"]),
        src=None if r["src"] is None else FixSource(r["src"]),
        speed_mps=None if r["speed_mps"] is None else float(r["speed_mps"]),
        heading_deg=None if r["heading_deg"] is None else float(r["heading_deg"]),
    )
    return StoredFix(fix, r["received_at"], roles.get(r["device_id"], "other"))


async def _deliveries(cur: Any, alert_id: str) -> list[dict[str, Any]]:
    """Every delivery of the alert with the exact bytes sent (CAP XML, victim notification JSON) and its
    attempts; a webhook URL is shown as "webhook" (it may carry a token)."""
    await cur.execute(
        "SELECT delivery_id, channel, target, msg_type, body, state, requires_ack, attempts, created_at, "
        "first_sent_at, delivered_at, acked_at, last_error, failing, escalated FROM alert_outbox "
        "WHERE alert_id = %s ORDER BY created_at, delivery_id",
        (alert_id,),
    )
    rows = await cur.fetchall()
    await cur.execute(
        "SELECT a.delivery_id, a.at, a.ok, a.latency_s, a.detail FROM alert_delivery_attempts a "
        "JOIN alert_outbox o USING (delivery_id) WHERE o.alert_id = %s ORDER BY a.id",
        (alert_id,),
    )
    attempts = await cur.fetchall()
    out = []
    for r in rows:
        body = bytes(r["body"])
        item = jsonable({k: v for k, v in r.items() if k != "body"})
        try:
            item["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            item["body_base64"] = base64.b64encode(body).decode()
        if r["channel"] == "dispatch":
            item["target"] = "webhook"
        item["attempts_log"] = [
            jsonable({k: v for k, v in a.items() if k != "delivery_id"})
            for a in attempts
            if a["delivery_id"] == r["delivery_id"]
        ]
        out.append(item)
    return out


async def evidence_pack(
    db: Database, alert_id: str, now: datetime, *, key_file: str | None, before_s: float, after_s: float
) -> bytes:
    """The signed pack of ``alert_id`` as of UTC ``now`` (:class:`EvidenceError` without a usable key)."""
    if not key_file:
        raise EvidenceError("EMON_SIGNING_KEY_FILE is not set: evidence packs cannot be signed")
    try:
        key = load_private_key(key_file)
    except ConfigError as exc:
        raise EvidenceError(str(exc)) from exc
    data = await collect(db, alert_id, now, before_s=before_s, after_s=after_s)
    return await asyncio.to_thread(finish_pack, data, key, now)
