"""Alerts, history, outbox and suppressions in PostgreSQL: functions over a connection the caller
holds a transaction on, so an alert change and its outbox rows commit together or not at all."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from psycopg import AsyncConnection, AsyncCursor, pq
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from emon.alerts.model import Alert, Change, Sighting
from emon.alerts.types import AlertState, AlertType, Priority, Recipient
from emon.case import Risk

Conn = AsyncConnection[tuple[object, ...]]
Sent = AsyncCursor[tuple[object, ...]]
"""A statement sent (in pipeline mode: queued, its result not read yet); read it with the matching function."""

# Every column of a row, with its type as a JSON document row carries it (:func:`jsonb_to_recordset`).
_TYPES = {
    "alert_id": "uuid",
    "case_id": "text",
    "type": "text",
    "rule": "text",
    "episode": "timestamptz",
    "state": "text",
    "priority": "text",
    "recipients": "text[]",
    "risk": "text",
    "device_id": "text",
    "opened_at": "timestamptz",
    "updated_at": "timestamptz",
    "acknowledged_at": "timestamptz",
    "acknowledged_by": "text",
    "resolved_at": "timestamptz",
    "resolved_by": "text",
    "outcome": "text",
    "late": "boolean",
    "live": "boolean",
    "escalated": "boolean",
    "suppressed": "boolean",
    "distance_m": "float8",
    "closest_m": "float8",
    "offender_position": "jsonb",
    "victim_position": "jsonb",
    "explanation": "jsonb",
    "ended_at": "timestamptz",
    "notify_seq": "integer",
    "notified_closest_m": "float8",
    "delivery_failing": "boolean",
    "events": "integer",
    "victim_acked_at": "timestamptz",
}
ALERT_COLUMNS = tuple(_TYPES)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: one notification to one recipient, sent until delivered (or acknowledged)."""

    delivery_id: str
    alert_id: str | None  # None: a device command that no alert asked for
    channel: str  # "victim" | "dispatch" | "command"
    target: str  # victim device id, webhook URL, or (command) the topic without prefix
    msg_type: str
    body: bytes
    state: str = "pending"
    requires_ack: bool = False
    attempts: int = 0
    created_at: datetime | None = None
    next_attempt_at: datetime | None = None
    first_sent_at: datetime | None = None
    failing: bool = False
    case_id: str | None = None
    reason: str | None = None


async def end_failed(conn: Conn) -> None:
    """After a transaction failed in pipeline mode (its COMMIT, queued behind the failing statement, was
    skipped): roll back whatever the server may still hold open, so the connection can be used again."""
    if conn.info.transaction_status is not pq.TransactionStatus.IDLE:
        await conn.rollback()


def _alert_fields(a: Alert) -> dict[str, Any]:
    """An alert's columns as Python values (positions as their JSON objects)."""
    return {
        "alert_id": a.alert_id,
        "case_id": a.case_id,
        "type": a.type.value,
        "rule": a.rule,
        "episode": a.episode,
        "state": a.state.value,
        "priority": a.priority.value,
        "recipients": sorted(r.value for r in a.recipients),
        "risk": a.risk.value,
        "device_id": a.device_id,
        "opened_at": a.opened_at,
        "updated_at": a.updated_at,
        "acknowledged_at": a.acknowledged_at,
        "acknowledged_by": a.acknowledged_by,
        "resolved_at": a.resolved_at,
        "resolved_by": a.resolved_by,
        "outcome": a.outcome,
        "late": a.late,
        "live": a.live,
        "escalated": a.escalated,
        "suppressed": a.suppressed,
        "distance_m": a.distance_m,
        "closest_m": a.closest_m,
        "offender_position": None if a.offender_position is None else a.offender_position.to_json(),
        "victim_position": None if a.victim_position is None else a.victim_position.to_json(),
        "explanation": a.explanation,
        "ended_at": a.ended_at,
        "notify_seq": a.notify_seq,
        "notified_closest_m": a.notified_closest_m,
        "delivery_failing": a.delivery_failing,
        "events": a.events,
        "victim_acked_at": a.victim_acked_at,
    }


def _alert_params(a: Alert) -> dict[str, Any]:
    p = _alert_fields(a)
    for key in ("offender_position", "victim_position", "explanation"):
        if p[key] is not None:
            p[key] = Jsonb(p[key])
    return p


def row_to_alert(r: dict[str, Any]) -> Alert:
    return Alert(
        alert_id=str(r["alert_id"]),
        case_id=r["case_id"],
        type=AlertType(r["type"]),
        rule=r["rule"],
        episode=r["episode"],
        state=AlertState(r["state"]),
        priority=Priority(r["priority"]),
        recipients=frozenset(Recipient(x) for x in r["recipients"]),
        risk=Risk(r["risk"]),
        device_id=r["device_id"],
        opened_at=r["opened_at"],
        updated_at=r["updated_at"],
        acknowledged_at=r["acknowledged_at"],
        acknowledged_by=r["acknowledged_by"],
        resolved_at=r["resolved_at"],
        resolved_by=r["resolved_by"],
        outcome=r["outcome"],
        late=r["late"],
        live=r["live"],
        escalated=r["escalated"],
        suppressed=r["suppressed"],
        distance_m=r["distance_m"],
        closest_m=r["closest_m"],
        offender_position=Sighting.from_json(r["offender_position"]),
        victim_position=Sighting.from_json(r["victim_position"]),
        explanation=r["explanation"],
        ended_at=r["ended_at"],
        notify_seq=r["notify_seq"],
        notified_closest_m=r["notified_closest_m"],
        delivery_failing=r["delivery_failing"],
        events=r["events"],
        victim_acked_at=r["victim_acked_at"],
        order_version=r.get("order_version"),
    )


async def _alerts(conn: Conn, where: str, params: Sequence[Any], tail: str = "") -> list[Alert]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT * FROM alerts WHERE {where} {tail}".encode(), params)
        return [row_to_alert(r) for r in await cur.fetchall()]


async def get(conn: Conn, alert_id: str, *, lock: bool = False) -> Alert | None:
    found = await _alerts(conn, "alert_id = %s", [alert_id], "FOR UPDATE" if lock else "")
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class BatchReads:
    """What a batch of decisions reads before deciding (:func:`batch_reads`)."""

    alerts: dict[str, Alert]  # the stored ones, locked
    suppressions: dict[str, list[frozenset[str] | None]]  # per case with any in force
    dispatch: dict[str, list[tuple[str, datetime]]]  # per alert with CAP messages queued


async def batch_reads(
    conn: Conn, alert_ids: Sequence[str], case_ids: Sequence[str], now: datetime
) -> BatchReads:
    """:func:`get_many` of ``alert_ids`` (locked, id order), :func:`active_suppressions` of ``case_ids``
    at ``now`` and :func:`dispatch_histories` of the alerts, as one round trip in pipeline mode: the
    three statements are sent before any result is read (and run in that order: the histories are
    read with the alerts locked; an absent alert has no outbox rows, their foreign key says so)."""
    rows = conn.cursor(row_factory=dict_row)
    await rows.execute(
        b"SELECT * FROM alerts WHERE alert_id = ANY (%s::uuid[]) ORDER BY alert_id FOR UPDATE", [alert_ids]
    )
    held = await _send_suppressions(conn, case_ids, now)
    dispatch = await _send_dispatch_histories(conn, alert_ids)
    alerts = {a.alert_id: a for a in (row_to_alert(r) for r in await rows.fetchall())}
    return BatchReads(alerts, await _suppressions_of(held), await _dispatch_histories_of(dispatch))


async def open_for_rule(conn: Conn, case_id: str, rule: str, *, lock: bool = False) -> Alert | None:
    """The newest unresolved alert of (case, rule): where merged types (battery, panic, silence) go."""
    found = await _alerts(
        conn,
        "case_id = %s AND rule = %s AND state <> 'resolved'",
        [case_id, rule],
        "ORDER BY opened_at DESC LIMIT 1" + (" FOR UPDATE" if lock else ""),
    )
    return found[0] if found else None


async def last_for_rule(conn: Conn, case_id: str, rule: str) -> Alert | None:
    """The newest alert of (case, rule) in any state."""
    found = await _alerts(
        conn, "case_id = %s AND rule = %s", [case_id, rule], "ORDER BY opened_at DESC LIMIT 1"
    )
    return found[0] if found else None


async def battery_above_since(
    conn: Conn, device_id: str, since: datetime, pct: float, until: datetime
) -> bool:
    """True when a fix of ``device_id`` after ``since`` and before ``until`` reported a battery above ``pct``
    percent (recharged in between). A fix after ``until`` — stored in the same batch, say — does not count."""
    cur = await conn.execute(
        "SELECT 1 FROM fixes WHERE device_id = %s AND ts > %s AND ts < %s AND batt > %s LIMIT 1",
        (device_id, since, until, pct),
    )
    return await cur.fetchone() is not None


async def open_by_rule(conn: Conn, types: Collection[AlertType]) -> dict[tuple[str, str], Alert]:
    """The newest unresolved alert of each (case, rule) among alerts of ``types``, in one query (unlocked:
    re-read with :func:`get` and ``lock=True`` before changing one)."""
    found = await _alerts(
        conn, "state <> 'resolved' AND type = ANY (%s)", [[t.value for t in types]], "ORDER BY opened_at"
    )
    return {(a.case_id, a.rule): a for a in found}  # oldest first: the newest of a (case, rule) wins


async def escalation_candidates(conn: Conn, opened_by: dict[Priority, datetime]) -> list[Alert]:
    """Open, unescalated, unsuppressed alerts of each listed priority opened at or before its time, oldest
    first, unlocked: the only alerts whose acknowledgement deadline may have passed (the partial index of
    migration 112 finds them without reading every open alert)."""
    if not opened_by:
        return []
    ors = " OR ".join("(priority = %s AND opened_at <= %s)" for _ in opened_by)
    params: list[Any] = [v for p, at in opened_by.items() for v in (p.value, at)]
    return await _alerts(
        conn, f"state = 'open' AND NOT escalated AND NOT suppressed AND ({ors})", params, "ORDER BY opened_at"
    )


async def open_alerts(conn: Conn, case_id: str | None = None) -> list[Alert]:
    if case_id is None:
        return await _alerts(conn, "state <> 'resolved'", [], "ORDER BY opened_at")
    return await _alerts(conn, "state <> 'resolved' AND case_id = %s", [case_id], "ORDER BY opened_at")


async def open_alerts_of(conn: Conn, case_ids: Sequence[str]) -> list[Alert]:
    """The unresolved alerts of these cases, in one query, oldest first."""
    return await _alerts(
        conn, "state <> 'resolved' AND case_id = ANY(%s)", [list(case_ids)], "ORDER BY opened_at"
    )


async def search(
    conn: Conn, *, case_id: str | None, state: str | None, type_: str | None, limit: int = 500
) -> list[Alert]:
    where, params = ["TRUE"], []
    for column, value in (("case_id", case_id), ("state", state), ("type", type_)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    return await _alerts(conn, " AND ".join(where), params, f"ORDER BY opened_at DESC LIMIT {int(limit)}")


def _save_sql(notes: int) -> bytes:
    rows = ["(%(alert_id)s, %(h_at)s, %(h_actor)s, %(h_action)s, %(state)s, %(h_detail)s)"]
    rows += [
        f"(%(alert_id)s, %(h_at)s, 'system', %(n{i}_action)s, %(state)s, %(n{i}_detail)s)"
        for i in range(notes)
    ]
    cols = ", ".join(ALERT_COLUMNS)
    vals = ", ".join(f"%({c})s" for c in ALERT_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in ALERT_COLUMNS if c != "alert_id")
    return (
        f"WITH saved AS (INSERT INTO alerts ({cols}) VALUES ({vals}) ON CONFLICT (alert_id) DO UPDATE SET {updates}"
        " RETURNING order_version), logged AS (INSERT INTO alert_history (alert_id, at, actor, action, state, detail)"
        f" VALUES {', '.join(rows)}) SELECT order_version FROM saved"
    ).encode()


_SAVE = [_save_sql(n) for n in range(3)]  # with 0, 1 or 2 notes (victim and police not reachable)


async def save(
    conn: Conn, change: Change, now: datetime, notes: Sequence[tuple[str, dict[str, Any]]] = ()
) -> int | None:
    """Upsert the alert and append its history row, then its ``notes`` ((action, detail) by "system",
    in order), in the caller's transaction (that of the outbox rows); returns the alert's order version
    (stamped by the database on first insert, never changed by an update). One statement, not one per
    row: a round trip is most of what a decision costs (the history rows' foreign key is checked at the
    statement's end, after the upsert; VALUES rows take their ids in order)."""
    p = _alert_params(change.alert)
    p.update(h_at=now, h_actor=change.actor, h_action=change.action, h_detail=Jsonb(change.detail))
    for i, (action, note) in enumerate(notes):
        p.update({f"n{i}_action": action, f"n{i}_detail": Jsonb(note)})
    query = _SAVE[len(notes)] if len(notes) < len(_SAVE) else _save_sql(len(notes))
    cur = await conn.execute(query, p)
    row = await cur.fetchone()
    version = None if row is None else row[0]
    return version if isinstance(version, int) else None


_ROW_TYPES = ", ".join(f"{c} {t}" for c, t in _TYPES.items())
_UPDATES = ", ".join(f"{c} = EXCLUDED.{c}" for c in ALERT_COLUMNS if c != "alert_id")
# :func:`save` of many changes of distinct alerts in one statement of fixed text: the rows travel as one
# JSON document (serialised in C, where psycopg would adapt some forty parameters a change in Python);
# history rows, each change's then its notes', are inserted in the given order.
_SAVE_MANY = (
    f"WITH r AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r ({_ROW_TYPES}, h_at timestamptz,"
    " h_actor text, h_action text, h_detail jsonb, notes jsonb, n integer)),"
    f" saved AS (INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) SELECT {', '.join(ALERT_COLUMNS)} FROM r"
    f" ORDER BY n ON CONFLICT (alert_id) DO UPDATE SET {_UPDATES} RETURNING alert_id, order_version),"
    " logged AS (INSERT INTO alert_history (alert_id, at, actor, action, state, detail)"
    " SELECT alert_id, at, actor, action, state, detail FROM ("
    "SELECT alert_id, h_at AS at, h_actor AS actor, h_action AS action, state, h_detail AS detail, n, 0::bigint AS k"
    " FROM r UNION ALL SELECT r.alert_id, r.h_at, 'system', x.note ->> 0, r.state, x.note -> 1, r.n, x.k"
    " FROM r, jsonb_array_elements(r.notes) WITH ORDINALITY AS x (note, k)) h ORDER BY n, k)"
    " SELECT alert_id::text, order_version FROM saved"
).encode()


def _save_row(
    change: Change, now: datetime, notes: Sequence[tuple[str, dict[str, Any]]], n: int
) -> dict[str, Any]:
    """One change as a row of :data:`_SAVE_MANY`'s document: the values :func:`_alert_params` gives, in
    JSON (times in ISO 8601 with their offset, positions and explanation as objects)."""
    row = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in _alert_fields(change.alert).items()}
    row.update(
        h_at=now.isoformat(),
        h_actor=change.actor,
        h_action=change.action,
        h_detail=change.detail,
        notes=[[action, detail] for action, detail in notes],
        n=n,
    )
    return row


Save = tuple[Change, datetime, Sequence[tuple[str, dict[str, Any]]]]
"""A change to store at ``now`` with its notes: what :func:`save` takes."""


async def send_saves(conn: Conn, saves: Sequence[Save]) -> Sent:
    """:func:`save` of changes of distinct alerts, in order, in one statement, sent; in pipeline mode
    the order versions (:func:`saved_versions`) are read later. A value JSON cannot carry (a NaN
    distance) fails the statement (the caller's batch is then redone change by change, with
    :func:`save`)."""
    rows = [_save_row(change, now, notes, n) for n, (change, now, notes) in enumerate(saves)]
    return await conn.execute(_SAVE_MANY, (json.dumps(rows, allow_nan=False),))


async def saved_versions(cur: Sent) -> dict[str, int | None]:
    """The order version of each alert a sent :func:`send_saves` stored, by alert id."""
    return {str(r[0]): r[1] if isinstance(r[1], int) else None for r in await cur.fetchall()}


async def add_delivery(conn: Conn, d: Delivery, now: datetime, channel_name: str | None) -> bool:
    """Queue a delivery (idempotent on its id) and, if it was added, NOTIFY ``channel_name`` (the
    workers) at commit (None: nobody). It is due at ``d.next_attempt_at`` when set (a pursuit's end),
    else now."""
    return bool(await add_deliveries(conn, [(d, now)], channel_name))


# One statement of fixed text for any number of rows (one JSON document: serialised in C, where psycopg
# would adapt eleven arrays element by element in Python), so it is parsed and planned once per
# connection: rows are inserted in the given order (a later row with the id of an earlier one is
# skipped, as it would have been alone), and the workers are NOTIFYed, at commit, only when a row was
# added (the condition is checked before pg_notify runs: a one-time filter).
_ADD_DELIVERIES = (
    b"WITH r AS (SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS r (delivery_id uuid, alert_id uuid,"
    b" channel text, target text, msg_type text, body text, requires_ack boolean, created_at timestamptz,"
    b" next_attempt_at timestamptz, case_id text, reason text, n integer)),"
    b" added AS (INSERT INTO alert_outbox (delivery_id, alert_id, channel, target, msg_type, body, state,"
    b" requires_ack, created_at, next_attempt_at, case_id, reason) SELECT delivery_id, alert_id, channel, target,"
    b" msg_type, decode(body, 'hex'), 'pending', requires_ack, created_at, next_attempt_at, case_id, reason"
    b" FROM r ORDER BY n ON CONFLICT (delivery_id) DO NOTHING RETURNING 1)"
    b" SELECT (SELECT count(*) FROM added),"
    b" (SELECT count(*) FROM pg_notify(%(notify)s, '') WHERE %(notify)s IS NOT NULL AND EXISTS (SELECT FROM added))"
)


async def add_deliveries(
    conn: Conn, rows: Sequence[tuple[Delivery, datetime]], channel_name: str | None = None
) -> int:
    """:func:`add_delivery` of many (delivery, now) rows in one statement, in order (a later row with
    the id of an earlier one is skipped, as it would have been); returns how many were added. With
    ``channel_name``, NOTIFY it at commit if any was."""
    return await deliveries_added(await send_deliveries(conn, rows, channel_name)) if rows else 0


async def send_deliveries(
    conn: Conn, rows: Sequence[tuple[Delivery, datetime]], channel_name: str | None = None
) -> Sent:
    """:func:`add_deliveries`' statement, sent; in pipeline mode its count (:func:`deliveries_added`) is
    read later."""
    doc = [
        {
            "delivery_id": d.delivery_id,
            "alert_id": d.alert_id,
            "channel": d.channel,
            "target": d.target,
            "msg_type": d.msg_type,
            "body": d.body.hex(),
            "requires_ack": d.requires_ack,
            "created_at": now.isoformat(),
            "next_attempt_at": (d.next_attempt_at or now).isoformat(),
            "case_id": d.case_id,
            "reason": d.reason,
            "n": n,
        }
        for n, (d, now) in enumerate(rows)
    ]
    return await conn.execute(_ADD_DELIVERIES, {"rows": json.dumps(doc), "notify": channel_name})


async def deliveries_added(cur: Sent) -> int:
    """How many rows a sent :func:`send_deliveries` added."""
    row = await cur.fetchone()
    return 0 if row is None else cast(int, row[0])


def _delivery(r: dict[str, Any]) -> Delivery:
    return Delivery(
        delivery_id=str(r["delivery_id"]),
        alert_id=None if r["alert_id"] is None else str(r["alert_id"]),
        channel=r["channel"],
        target=r["target"],
        msg_type=r["msg_type"],
        body=bytes(r["body"]),
        state=r["state"],
        requires_ack=r["requires_ack"],
        attempts=r["attempts"],
        created_at=r["created_at"],
        next_attempt_at=r["next_attempt_at"],
        first_sent_at=r["first_sent_at"],
        failing=r["failing"],
        case_id=r.get("case_id"),
        reason=r.get("reason"),
    )


async def claim_due(conn: Conn, now: datetime, limit: int) -> list[Delivery]:
    """Due deliveries, locked for this transaction; other workers skip them (``SKIP LOCKED``)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM alert_outbox WHERE state IN ('pending', 'sent') AND next_attempt_at <= %s"
            " ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (now, limit),
        )
        return [_delivery(r) for r in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt's outcome and the outbox row's next state: ``detail`` is "ok" or the error."""

    delivery_id: str
    ok: bool
    latency_s: float
    detail: str
    state: str
    next_attempt_at: datetime
    failing: bool


# One statement for a round of attempts: the attempt rows, in order, and each outbox row's new state.
_RECORD_ATTEMPTS = (
    b"WITH a AS (SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS a (delivery_id uuid, ok boolean,"
    b" latency_s float8, detail text, state text, next_attempt_at timestamptz, failing boolean, n integer)),"
    b" logged AS (INSERT INTO alert_delivery_attempts (delivery_id, at, ok, latency_s, detail)"
    b" SELECT delivery_id, %(now)s, ok, latency_s, detail FROM a ORDER BY n)"
    b" UPDATE alert_outbox o SET attempts = o.attempts + 1, state = a.state, next_attempt_at = a.next_attempt_at,"
    b" first_sent_at = COALESCE(o.first_sent_at, CASE WHEN a.ok THEN %(now)s::timestamptz END),"
    b" delivered_at = CASE WHEN a.state = 'delivered' THEN %(now)s::timestamptz ELSE o.delivered_at END,"
    b" last_error = CASE WHEN a.ok THEN o.last_error ELSE a.detail END, failing = a.failing"
    b" FROM a WHERE o.delivery_id = a.delivery_id"
)


async def record_attempts(conn: Conn, attempts: Sequence[Attempt], now: datetime) -> None:
    """Record a round of delivery attempts made at ``now`` in one statement: an
    ``alert_delivery_attempts`` row each (in order; details cut at 2,000 characters) and each outbox
    row's attempt count, state, next attempt, first send, delivery, last error and failing flag. Each
    delivery appears at most once in a round (its row is locked by the claim)."""
    if not attempts:
        return
    rows = [
        {
            "delivery_id": a.delivery_id,
            "ok": a.ok,
            "latency_s": a.latency_s,
            "detail": a.detail[:2000],
            "state": a.state,
            "next_attempt_at": a.next_attempt_at.isoformat(),
            "failing": a.failing,
            "n": n,
        }
        for n, a in enumerate(attempts)
    ]
    await conn.execute(_RECORD_ATTEMPTS, {"rows": json.dumps(rows), "now": now})


async def mark_acked(
    conn: Conn, device_id: str, notification_id: str | None, alert_id: str | None, now: datetime
) -> list[str]:
    """Mark the victim deliveries an ack names as acknowledged; returns their alert ids."""
    cur = await conn.execute(
        "UPDATE alert_outbox SET state = 'acked', acked_at = %s WHERE channel = 'victim' AND target = %s"
        " AND state IN ('pending', 'sent') AND (delivery_id::text = %s OR alert_id::text = %s)"
        " RETURNING alert_id",
        (now, device_id, notification_id or "", alert_id or ""),
    )
    return sorted({str(r[0]) for r in await cur.fetchall()})


async def cancel_victim_deliveries(
    conn: Conn, now: datetime, *, alert_id: str | None = None, case_id: str | None = None
) -> int:
    """Stop re-sending the victim warnings of one alert (resolved) or of every alert of a case (closed)."""
    return (await send_cancel_victim_deliveries(conn, now, alert_id=alert_id, case_id=case_id)).rowcount


async def send_cancel_victim_deliveries(
    conn: Conn, now: datetime, *, alert_id: str | None = None, case_id: str | None = None
) -> Sent:
    """:func:`cancel_victim_deliveries`' statement, sent (in pipeline mode its count is not read)."""
    if alert_id is not None:
        where, param = "alert_id = %s", alert_id
    else:
        where, param = "alert_id IN (SELECT alert_id FROM alerts WHERE case_id = %s)", str(case_id)
    return await conn.execute(
        f"UPDATE alert_outbox SET state = 'cancelled', cancelled_at = %s WHERE channel = 'victim'"
        f" AND state IN ('pending', 'sent') AND {where}".encode(),
        (now, param),
    )


async def cancel_commands(
    conn: Conn, target: str, msg_type: str, due_before: datetime, now: datetime
) -> Sent:
    """Drop pending commands of one kind on one topic due before ``due_before`` (an earlier pursuit's
    end, superseded by a later one); in pipeline mode the statement is sent, not waited for."""
    return await conn.execute(
        "UPDATE alert_outbox SET state = 'cancelled', cancelled_at = %s WHERE channel = 'command' AND target = %s"
        " AND msg_type = %s AND state = 'pending' AND next_attempt_at < %s",
        (now, target, msg_type, due_before),
    )


async def commands(conn: Conn, case_id: str) -> list[Delivery]:
    """The device commands queued for a case, oldest first (with their state)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM alert_outbox WHERE channel = 'command' AND case_id = %s ORDER BY created_at, next_attempt_at",
            (case_id,),
        )
        return [_delivery(r) for r in await cur.fetchall()]


async def overdue_victim_deliveries(conn: Conn, before: datetime) -> list[Delivery]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM alert_outbox WHERE channel = 'victim' AND state IN ('pending', 'sent')"
            " AND NOT escalated AND created_at <= %s FOR UPDATE SKIP LOCKED",
            (before,),
        )
        return [_delivery(r) for r in await cur.fetchall()]


async def mark_delivery_escalated(conn: Conn, delivery_id: str) -> None:
    await conn.execute("UPDATE alert_outbox SET escalated = true WHERE delivery_id = %s", (delivery_id,))


async def dispatch_history(conn: Conn, alert_id: str) -> list[tuple[str, datetime]]:
    """(delivery id, created at) of the CAP messages already queued for an alert, oldest first."""
    cur = await conn.execute(
        "SELECT delivery_id, created_at FROM alert_outbox WHERE alert_id = %s AND channel = 'dispatch'"
        " ORDER BY created_at, delivery_id",
        (alert_id,),
    )
    return [(str(r[0]), r[1]) for r in await cur.fetchall()]  # type: ignore[misc]


async def _send_dispatch_histories(conn: Conn, alert_ids: Sequence[str]) -> Sent:
    return await conn.execute(
        "SELECT alert_id, delivery_id, created_at FROM alert_outbox WHERE alert_id = ANY (%s::uuid[])"
        " AND channel = 'dispatch' ORDER BY created_at, delivery_id",
        (alert_ids,),
    )


async def _dispatch_histories_of(cur: Sent) -> dict[str, list[tuple[str, datetime]]]:
    out: dict[str, list[tuple[str, datetime]]] = {}
    for alert_id, delivery_id, created_at in await cur.fetchall():
        out.setdefault(str(alert_id), []).append((str(delivery_id), cast(datetime, created_at)))
    return out


async def _send_suppressions(conn: Conn, case_ids: Sequence[str], now: datetime) -> Sent:
    return await conn.execute(
        "SELECT case_id, types FROM alert_suppressions WHERE case_id = ANY (%s) AND starts_at <= %s AND until > %s",
        (case_ids, now, now),
    )


async def _suppressions_of(cur: Sent) -> dict[str, list[frozenset[str] | None]]:
    out: dict[str, list[frozenset[str] | None]] = {}
    for case_id, types in await cur.fetchall():
        held = None if types is None else frozenset(str(t) for t in cast(list[object], types))
        out.setdefault(str(case_id), []).append(held)
    return out


def suppresses(held: Sequence[frozenset[str] | None], alert_type: AlertType) -> bool:
    """True when one of a case's suppressions in force (:func:`batch_reads`) holds ``alert_type``."""
    return any(types is None or alert_type.value in types for types in held)


async def is_suppressed(conn: Conn, case_id: str, alert_type: AlertType, now: datetime) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM alert_suppressions WHERE case_id = %s AND starts_at <= %s AND until > %s"
        " AND (types IS NULL OR %s = ANY (types)) LIMIT 1",
        (case_id, now, now, alert_type.value),
    )
    return await cur.fetchone() is not None


async def add_suppression(
    conn: Conn, case_id: str, types: list[str] | None, reason: str, until: datetime, who: str, now: datetime
) -> int:
    cur = await conn.execute(
        "INSERT INTO alert_suppressions (case_id, types, reason, starts_at, until, created_by, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (case_id, types, reason, now, until, who, now),
    )
    row = await cur.fetchone()
    assert row is not None
    return cast(int, row[0])


async def history(conn: Conn, alert_id: str) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT at, actor, action, state, detail FROM alert_history WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        )
        return [{**r, "at": r["at"].isoformat()} for r in await cur.fetchall()]


async def deliveries(conn: Conn, alert_id: str) -> list[dict[str, Any]]:
    """Each delivery of an alert with its attempts (bodies left out; they are in the outbox)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT delivery_id, channel, target, msg_type, state, attempts, created_at, first_sent_at, delivered_at,"
            " acked_at, last_error, failing, escalated FROM alert_outbox WHERE alert_id = %s ORDER BY created_at",
            (alert_id,),
        )
        rows = await cur.fetchall()
        await cur.execute(
            "SELECT a.delivery_id, a.at, a.ok, a.latency_s, a.detail FROM alert_delivery_attempts a"
            " JOIN alert_outbox o USING (delivery_id) WHERE o.alert_id = %s ORDER BY a.id",
            (alert_id,),
        )
        attempts = await cur.fetchall()
    out = []
    for r in rows:
        item = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
        item["delivery_id"] = str(r["delivery_id"])
        if item["channel"] == "dispatch":
            item["target"] = "webhook"  # the URL may carry a token
        item["attempts_log"] = [
            {"at": a["at"].isoformat(), "ok": a["ok"], "latency_s": a["latency_s"], "detail": a["detail"]}
            for a in attempts
            if a["delivery_id"] == r["delivery_id"]
        ]
        out.append(item)
    return out


async def outbox_depth(conn: Conn) -> dict[str, int]:
    cur = await conn.execute(
        "SELECT channel, count(*) FROM alert_outbox WHERE state IN ('pending', 'sent') GROUP BY channel"
    )
    return {str(r[0]): int(r[1]) for r in await cur.fetchall()}  # type: ignore[call-overload]


async def open_counts(conn: Conn) -> dict[tuple[str, str], int]:
    """Unresolved alerts counted by (type, state)."""
    cur = await conn.execute(
        "SELECT type, state, count(*) FROM alerts WHERE state <> 'resolved' GROUP BY type, state"
    )
    return {(str(r[0]), str(r[1])): int(r[2]) for r in await cur.fetchall()}  # type: ignore[call-overload]
