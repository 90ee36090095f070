"""A batch of decisions decided all at once (reads prefetched, no savepoints, one NOTIFY) stores exactly the
rows the isolating item-by-item path stores, and falls back to that path when anything in it fails."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from emon.alerts.batch import Batch
from emon.alerts.model import Alert
from emon.alerts.service import AlertService
from emon.casebook import CaseBook
from emon.geofence.events import Classification, EvalEvent
from emon.geofence.events import EvalEventType as E
from emon.storage.postgres import Database, drop_schema
from emon.tasks.model import Task
from tests.alerts.conftest import DB_URL, World
from tests.alerts.helpers import make_case, prox

pytestmark = pytest.mark.integration
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FALLBACK = "deciding it again item by item"

# Which columns identify a row across two schemas: serial ids differ (a redone batch consumed some).
TABLES = {
    "alerts": ("SELECT * FROM alerts ORDER BY alert_id", ()),
    "alert_history": ("SELECT * FROM alert_history ORDER BY id", ("id",)),
    "alert_outbox": ("SELECT * FROM alert_outbox ORDER BY delivery_id", ()),
    "room_tasks": ("SELECT * FROM room_tasks ORDER BY task_id", ()),
    "room_task_history": ("SELECT * FROM room_task_history ORDER BY id", ("id",)),
    "alert_suppressions": ("SELECT * FROM alert_suppressions ORDER BY id", ("id",)),
}


def _locate(case_id: str, at: datetime, devices: Any) -> EvalEvent:
    detail = {"devices": devices, "reason": "stale", "every_s": 30}
    return EvalEvent(
        E.LOCATE_REQUEST, case_id, "proximity", at, at, at, Classification.POSSIBLE, None, (), detail=detail
    )


def _script() -> list[tuple[datetime, list[EvalEvent]]]:
    """Batches that open, worsen, update twice in one batch, end, suppress and ask for fixes."""
    e1, e2, e3, e4, e5 = (T - timedelta(minutes=k) for k in (4, 3, 2, 1, 5))
    t0, t1, t2 = T, T + timedelta(seconds=5), T + timedelta(seconds=20)
    return [
        (
            t0,
            [
                prox(E.PROXIMITY_PRE_ALERT, t0, 900.0, episode=e1),
                prox(
                    E.POSSIBLE_BREACH,
                    t0,
                    480.0,
                    episode=e2,
                    case_id="case-2",
                    classification=Classification.POSSIBLE,
                ),
                prox(E.PROXIMITY_BREACH, t0, 300.0, episode=e3),
                prox(E.PROXIMITY_BREACH, t0, 250.0, episode=e1, case_id="case-3"),  # no victim device
                _locate("case-1", t0, ["tag-1", "vic-1"]),
            ],
        ),
        (
            t1,
            [
                prox(E.BREACH_UPDATE, t1, 200.0, episode=e3),
                prox(E.BREACH_UPDATE, t1, 90.0, episode=e3),  # the same alert twice in one batch
                prox(E.PROXIMITY_BREACH, t1, 400.0, episode=e1),
                prox(E.POSSIBLE_BREACH_ENDED, t1, 600.0, episode=e2, case_id="case-2"),
                # a warning queued and cancelled in one batch (auto-resolved): the cancel sees the row
                prox(E.PROXIMITY_PRE_ALERT, t1, 800.0, episode=e5),
                prox(E.PROXIMITY_PRE_ALERT_ENDED, t1, 1200.0, episode=e5),
            ],
        ),
        (
            t2,
            [
                prox(E.PROXIMITY_BREACH, t2, 100.0, episode=e4, case_id="case-2"),  # suppressed
                prox(E.PROXIMITY_BREACH_ENDED, t2, 700.0, episode=e3),
            ],
        ),
    ]


async def _run(service: AlertService) -> None:
    for i, (now, events) in enumerate(_script()):
        if i == 2:
            await service.suppress("case-2", "court hearing", now + timedelta(hours=1), None, "op", now)
        await service.on_evaluation(events, now, time.monotonic())


async def _rows(db: Database) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    async with db.pool.connection() as conn:
        for table, (query, skip) in TABLES.items():
            cur = await conn.execute(query)
            names = [c.name for c in cur.description or ()]
            out[table] = [
                {n: v for n, v in zip(names, row, strict=True) if n not in skip}
                for row in await cur.fetchall()
            ]
    return out


@pytest.fixture
async def other_db() -> AsyncIterator[Database]:
    schema = f"t_alerts_{uuid.uuid4().hex[:10]}"
    database = Database(DB_URL, schema, max_size=4)
    await database.open()
    await database.migrate()
    yield database
    await database.close()
    await drop_schema(DB_URL, schema)


def _service(world: World, db: Database, *, webhook: bool = True) -> AlertService:
    cases = CaseBook(
        [make_case("high"), make_case("high", "case-2"), make_case("high", "case-3", victim=None)]
    )
    settings = world.settings if webhook else world.settings.model_copy(update={"webhook_url": None})
    return AlertService(db, settings, world.hub, cases, world.registry, world.live, config=world.config)


def _published(service: AlertService) -> tuple[list[dict[str, Any]], list[str]]:
    """Records what ``service`` publishes after its commits: the alerts (as the room sees them) and the
    ids of the room tasks created."""
    alerts: list[dict[str, Any]] = []
    tasks: list[str] = []
    room_publish, tasks_published = service.room.publish, service.tasks.published

    def publish(alert: Alert) -> None:
        alerts.append(alert.to_json())
        room_publish(alert)

    def published(created: list[Task]) -> None:
        tasks.extend(t.task_id for t in created)
        tasks_published(created)

    service.room.publish = publish  # type: ignore[method-assign,assignment]
    service.tasks.published = published  # type: ignore[method-assign]
    return alerts, tasks


async def _failing_load(*_: object, **__: object) -> Batch:
    raise RuntimeError("forced: decide item by item")


async def _compare(batched_db: Database, itemwise_db: Database) -> dict[str, list[dict[str, Any]]]:
    """The rows of both schemas, asserted equal table by table; the first's."""
    batched, itemwise = await _rows(batched_db), await _rows(itemwise_db)
    assert {t: len(r) for t, r in batched.items()} == {t: len(r) for t, r in itemwise.items()}
    for table in TABLES:
        for a, b in zip(batched[table], itemwise[table], strict=True):
            assert a == b, table
    return batched


@pytest.mark.parametrize("police_url", [True, False], ids=["police-webhook", "no-webhook"])
async def test_the_batch_path_writes_exactly_the_rows_of_the_item_by_item_path(
    world: World,
    other_db: Database,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    police_url: bool,
) -> None:
    at_once = _service(world, world.db, webhook=police_url)
    each = _service(world, other_db, webhook=police_url)
    published = {"at_once": _published(at_once), "each": _published(each)}
    for db in (world.db, other_db):  # the database stamps each alert with its case's order version
        async with db.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO cases (case_id, risk, offender_device, document, version) "
                "SELECT c, 'high', 'tag-' || c, '{}', 4 FROM unnest(%s::text[]) AS c",
                (["case-1", "case-2", "case-3"],),
            )
    try:
        with caplog.at_level(logging.WARNING, "emon.alerts.service"):
            await _run(at_once)
            assert FALLBACK not in caplog.text
            with monkeypatch.context() as m:
                m.setattr(Batch, "load", _failing_load)
                await _run(each)
            assert caplog.text.count(FALLBACK) == len(_script())
        batched = await _compare(world.db, other_db)
        assert len(batched["alerts"]) == 6 and len(batched["alert_outbox"]) >= 5 and batched["room_tasks"]
        assert "cancelled" in {r["state"] for r in batched["alert_outbox"]}
        # What the room is shown after commit is the same too: the alerts with the order version the
        # database stamped (read after the COMMIT on the batch path), and the tasks created, once each.
        assert published["at_once"] == published["each"]
        alerts, tasks = published["at_once"]
        assert alerts and tasks and {a["order_version"] for a in alerts} == {4}
    finally:
        await at_once.close()
        await each.close()


async def test_a_batch_whose_writes_fail_in_the_pipeline_is_redone_item_by_item(
    world: World, other_db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every write of the batch is sent (saves, outbox rows, tasks), then one more fails on the server:
    the error arrives with the COMMIT's results, nothing of the batch stays, and the batch is decided
    again item by item — storing exactly what the item-by-item path stores, once."""
    finish = Batch.finish

    async def finish_then_fail(self: Batch, conn: Any, now: datetime) -> None:
        await finish(self, conn, now)
        await conn.execute("SELECT 1 / 0")  # division_by_zero, raised by PostgreSQL, not by Python

    failing, each = _service(world, world.db), _service(world, other_db)
    try:
        with caplog.at_level(logging.WARNING, "emon.alerts.service"):
            with monkeypatch.context() as m:
                m.setattr(Batch, "finish", finish_then_fail)
                await _run(failing)
            assert caplog.text.count(FALLBACK) == len(_script())
            assert "alerting failed for one" not in caplog.text  # the batch failed; no single item did
            with monkeypatch.context() as m:
                m.setattr(Batch, "load", _failing_load)
                await _run(each)
        batched = await _compare(world.db, other_db)
        assert len(batched["alerts"]) == 6 and batched["room_tasks"] and batched["alert_outbox"]
    finally:
        await failing.close()
        await each.close()


def _errors() -> float:
    return REGISTRY.get_sample_value("emon_alert_handler_errors_total", {"stage": "evaluation"}) or 0.0


async def test_one_bad_input_does_not_sink_the_batch(world: World, caplog: pytest.LogCaptureFixture) -> None:
    service = _service(world, world.db)
    now = T
    good = [prox(E.PROXIMITY_BREACH, now, 150.0, episode=now - timedelta(minutes=k)) for k in (1, 2)]
    bad = _locate("case-1", now, "tag-1")  # devices must be a list: rejected
    before = _errors()
    try:
        with caplog.at_level(logging.WARNING, "emon.alerts.service"):
            await service.on_evaluation([good[0], bad, good[1]], now, time.monotonic())
        assert FALLBACK in caplog.text  # the batch failed as a whole, then went item by item
        assert _errors() - before == 1
        stored = await service.list_alerts(case_id="case-1")
        assert len(stored) == 2
        history = [await service.get_alert(a["alert_id"]) for a in stored]
        assert [[h["action"] for h in a["history"]] for a in history] == [["opened"], ["opened"]]
    finally:
        await service.close()


async def test_the_batch_wakes_the_outbox_workers_at_commit(world: World) -> None:
    """The batch path's single NOTIFY reaches a listener as the per-row ones did."""
    service = _service(world, world.db)
    now = datetime.now(UTC)
    notes = world.db.notifications(service.notifier.notify_channel)
    try:
        assert await anext(notes) is None  # LISTEN holds
        await service.on_evaluation(
            [prox(E.PROXIMITY_BREACH, now, 150.0, episode=now)], now, time.monotonic()
        )
        async with asyncio.timeout(5.0):
            assert await anext(notes) == ""
    finally:
        await notes.aclose()
        await service.close()


async def test_unreachable_recipients_are_noted_right_after_the_change(world: World) -> None:
    """A case without a victim device and no webhook: the notes follow the change's own history row, in
    the order they always had (victim, then police)."""
    service = _service(world, world.db, webhook=False)
    now = T
    try:
        breach = prox(E.PROXIMITY_BREACH, now, 150.0, episode=now, case_id="case-3")
        await service.on_evaluation([breach], now, time.monotonic())
        [alert] = await service.list_alerts(case_id="case-3")
        history = (await service.get_alert(alert["alert_id"]))["history"]
        assert [(h["action"], h["actor"], h["state"], h["detail"]) for h in history] == [
            ("opened", "system", "open", history[0]["detail"]),
            ("victim_not_notified", "system", "open", {"reason": "no victim device"}),
            ("police_not_notified", "system", "open", {"reason": "no EMON_WEBHOOK_URL configured"}),
        ]
    finally:
        await service.close()
