"""Ingest in a process of its own (``EMON_INGEST_PROCESS``): the frames between the two processes, the
metrics merged from both, and — through the real servers and a real second process — fixes received,
stored, evaluated and alerted; devices registered after start; the death of either process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from emon import metrics
from emon.device import Device, DeviceKind, DeviceRegistry
from emon.fix import DeviceEvent, EventType, Fix, FixSource
from emon.ingest import frames
from emon.ingest.process import IngestProcess, stored_of
from tests.harness import cleanup, eventually, isolated_settings, running_emon
from tests.integration.test_evaluation import evaluations, setup_case, walk

NOW = datetime(2026, 12, 1, 21, 0, 0, 123456, tzinfo=UTC)


def _roundtrip(frame: frames.Frame) -> frames.Frame:
    data = frames.encode(frame)
    assert frames.length(data[: frames.HEADER]) == len(data) - frames.HEADER
    return frames.decode(data[frames.HEADER :])


def test_a_batch_crosses_the_socket_unchanged() -> None:
    fixes = [
        Fix("tag-1", NOW, 52.0907, 5.1214, 4.5, 7, 88.5, FixSource.GNSS, 1.5, 270.0),
        Fix("tag-2", NOW - timedelta(seconds=1), -33.9, 151.2, 0.0),  # every optional field None
    ]
    events = [
        DeviceEvent("tag-1", NOW, EventType.TAMPER, {"reason": "strap", "n": 2, "nested": {"x": [1.5]}})
    ]
    batch = frames.Batch(
        frames.fix_rows(fixes), frames.event_rows(events), [("phone", b"\x00ack")], NOW, 123.25, NOW
    )
    back = _roundtrip(batch)
    assert isinstance(back, frames.Batch)
    assert frames.fixes_of(back.fixes) == fixes
    assert all(f.ts.utcoffset() == timedelta(0) for f in frames.fixes_of(back.fixes))
    assert frames.events_of(back.events) == events
    assert (back.acks, back.now, back.received_mono, back.stored_at) == (
        [("phone", b"\x00ack")],
        NOW,
        123.25,
        NOW,
    )


def test_devices_reports_and_settings_cross_the_socket() -> None:
    devices = [
        Device("tag-1", DeviceKind.ANKLE_TAG),
        Device("phone", DeviceKind.VICTIM_DEVICE, "owntracks/anna/phone", 30),
    ]
    back = _roundtrip(frames.Devices(frames.device_rows(devices), replace=True))
    assert isinstance(back, frames.Devices) and frames.devices_of(back.devices) == devices and back.replace
    report = frames.Report(3, 1.5, 0.25, False, True, b"# metrics")
    assert _roundtrip(report) == report
    settings = isolated_settings(mqtt_password="a-secret-password")
    start = _roundtrip(frames.Start(settings.model_dump_json()))
    assert isinstance(start, frames.Start)
    again = type(settings).model_validate_json(start.settings)
    assert again == settings and str(again.mqtt_password) == "a-secret-password"


def test_a_batch_frame_is_the_stored_batch_the_consumers_take() -> None:
    fix = Fix("tag-1", NOW, 52.0, 5.0, 5.0, 1)
    event = DeviceEvent("tag-1", NOW, EventType.PANIC, {})
    at = NOW + timedelta(seconds=1)
    frame = frames.Batch(frames.fix_rows([fix]), frames.event_rows([event]), [("p", b"")], NOW, 100.0, at)
    assert stored_of(frame) == ([fix], [event], [("p", b"")], NOW, 100.0, at)


def test_a_frame_announcing_an_absurd_length_is_refused() -> None:
    with pytest.raises(ValueError, match="broken"):
        frames.length((frames.MAX_FRAME + 1).to_bytes(4, "big"))


def test_metrics_of_both_processes_are_merged_as_one_exposition() -> None:
    main, ingest = CollectorRegistry(), CollectorRegistry()
    for registry, accepted, depth, seconds in ((main, 0, 7, [0.5]), (ingest, 5, 7, [0.01, 2.0])):
        Counter("t_fixes_accepted", "fixes", registry=registry).inc(accepted)
        Counter("t_errors", "errors", ["what"], registry=registry).labels(
            "main" if registry is main else "ingest"
        ).inc()
        Gauge("t_queue_depth", "depth", registry=registry).set(depth)
        h = Histogram("t_seconds", "latency", buckets=(0.1, 1.0), registry=registry)
        for v in seconds:
            h.observe(v)
    Gauge("t_only_ingest", "dead letter bytes", registry=ingest).set(42)
    text = metrics.merged(generate_latest(ingest), main).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("t_fixes_accepted_total", ())] == 5
    assert samples[("t_errors_total", (("what", "main"),))] == 1
    assert samples[("t_errors_total", (("what", "ingest"),))] == 1
    assert samples[("t_queue_depth", ())] == 7  # the larger, not the sum: the main process mirrors it
    assert samples[("t_only_ingest", ())] == 42
    assert samples[("t_seconds_count", ())] == 3
    assert samples[("t_seconds_bucket", (("le", "0.1"),))] == 1
    assert samples[("t_seconds_bucket", (("le", "1.0"),))] == 2
    assert samples[("t_seconds_sum", ())] == pytest.approx(2.51)
    assert text.count("# TYPE t_seconds histogram") == 1


def test_health_ages_from_the_last_report() -> None:
    ingest = IngestProcess(isolated_settings(stall_s=10.0))
    ingest._report, ingest._reported_at = frames.Report(4, 2.0, 1.0, False, True, b""), 100.0
    assert ingest.health(100.0) == (4, 2.0, 1.0, False)
    # No report for 20 s while messages wait: stalled, as a stuck pipeline is.
    assert ingest.health(120.0) == (4, 22.0, 21.0, True)
    ingest._report = frames.Report(0, 0.0, 1.0, False, True, b"")
    assert ingest.health(120.0).stalled is False  # nothing waits


def test_the_registry_tells_its_listeners() -> None:
    registry, told = DeviceRegistry(), []
    registry.listeners.append(lambda devices, replace: told.append(([d.device_id for d in devices], replace)))
    registry.add(Device("a", DeviceKind.ANKLE_TAG))
    registry.replace_all([Device("b", DeviceKind.ANKLE_TAG)])
    assert told == [(["a"], False), (["b"], True)]


def _sample(text: str, name: str) -> float:
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.integration
async def test_fixes_go_through_the_ingest_process_to_evaluation_and_alerts() -> None:
    async with running_emon(ingest_process=True) as em:
        assert em.runtime.ingest is not None
        await em.runtime.wait_connected()
        # Devices registered after start reach the ingest process: without them its fixes would be
        # dead-lettered as unknown devices and nothing below would be decided.
        async with em.client() as c:
            before = _sample((await c.get("/metrics")).text, "emon_fixes_accepted_total")
        await setup_case(em, "p1")
        start_ts = datetime.now(UTC) - timedelta(seconds=60)
        await walk(em, "p1-tag", [1200, 800, 650, 400, 300, 200], start_ts)

        async def breach() -> list[dict[str, Any]]:
            events = await evaluations(em, "p1")
            return events if any(e["type"] == "exclusion_breach" for e in events) else []

        await eventually(breach, within=30)
        assert await em.runtime.records.count_fixes() == 6
        async with em.client() as c:
            alerts = (await c.get("/api/v1/alerts", params={"case_id": "p1"})).json()
            ready = await c.get("/readyz")
        assert any(a["type"] == "exclusion_breach" for a in alerts)

        # The ingest process's metrics are in the main process's exposition.
        # (This process's own count is whatever earlier tests in it stored: only the ingest process's adds.
        # It reports twice a second.)
        async def accepted() -> float:
            async with em.client() as c:
                return _sample((await c.get("/metrics")).text, "emon_fixes_accepted_total") - before

        assert await eventually(accepted, within=5) == 6
        assert ready.status_code == 200 and ready.json()["checks"]["mqtt"] is True


@pytest.mark.integration
async def test_an_ingest_process_that_dies_stops_emon() -> None:
    async with running_emon(ingest_process=True) as em:
        await em.runtime.wait_connected()
        called: list[str] = []
        em.runtime.on_fatal = called.append
        process = em.runtime.ingest.process if em.runtime.ingest is not None else None
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)

        async def stopped() -> bool:
            return called == ["ingest-process"]

        await eventually(stopped, within=10)
        assert em.runtime.fatal == "ingest-process" and not em.runtime.mqtt_connected.is_set()


@pytest.mark.integration
async def test_the_ingest_process_dies_with_a_killed_main_process() -> None:
    settings = isolated_settings(ingest_process=True)
    env = {
        **os.environ,
        "EMON_DATABASE_URL": settings.database_url,
        "EMON_DB_SCHEMA": settings.db_schema,
        "EMON_REDIS_PREFIX": settings.redis_prefix,
        "EMON_MQTT_TOPIC_PREFIX": settings.mqtt_topic_prefix,
        "EMON_MQTT_CLIENT_ID": settings.mqtt_client_id,
        "EMON_HTTP_PORT": str(settings.http_port),
        "EMON_INGEST_PROCESS": "true",
    }
    main = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from emon.cli import main; sys.exit(main(['serve']))",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:

        async def child_pid() -> list[int]:
            return _children(main.pid)

        (child,) = await eventually(child_pid, within=30)
        assert _alive(child)
        main.kill()  # SIGKILL: no clean shutdown, no socket closed by Python
        await main.wait()

        async def gone() -> bool:
            return not _alive(child)

        await eventually(gone, within=10)
    finally:
        if main.returncode is None:
            main.kill()
            await main.wait()
        await cleanup(settings)
