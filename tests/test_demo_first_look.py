"""The demo fit for a first look: a busy port is one clear line, ``emon simulate`` finds the demo's
broker, and old demo rounds are retired so the queue stays readable."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emon.demo import demo_broker, retire_demo_cases
from tests.harness import ADMIN_TOKEN, Running, eventually, publish

pytestmark = pytest.mark.integration


def test_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMON_")}
        env["EMON_HTTP_PORT"] = str(port)
        proc = subprocess.run(
            [sys.executable, "-m", "emon.cli", "demo", "--data-dir", str(tmp_path / ".emon")],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"port {port}" in lines[0] and "EMON_HTTP_PORT" in lines[0]


def test_simulate_finds_the_demo_broker(tmp_path: Path) -> None:
    (tmp_path / "demo.json").write_text(
        json.dumps({"api": "http://127.0.0.1:8000", "mqtt": "mqtt://127.0.0.1:41234"})
    )
    assert demo_broker("http://127.0.0.1:8000/", tmp_path) == "mqtt://127.0.0.1:41234"
    assert demo_broker("http://127.0.0.1:9000", tmp_path) is None  # another emon: not the demo's broker
    assert demo_broker("http://127.0.0.1:8000", tmp_path / "none") is None
    (tmp_path / "demo.json").write_text("{not json")
    assert demo_broker("http://127.0.0.1:8000", tmp_path) is None


async def _case(em: Running, case_id: str, tag: str) -> None:
    async with em.client() as c:
        assert (
            await c.post("/api/v1/devices", json={"device_id": tag, "kind": "ankle_tag"})
        ).status_code == 201
        case = {"case_id": case_id, "risk": "high", "offender_device": tag, "residence": {"lat": 52.0, "lon": 5.0},
                "order": {}}  # fmt: skip
        assert (await c.post("/api/v1/cases", json=case)).status_code == 201


async def test_old_demo_rounds_are_retired(emon: Running) -> None:
    await _case(emon, "sim-demo-080000-1", "tag-d1")
    await _case(emon, "sim-demo-080000-2", "tag-d2")
    await _case(emon, "zaak-echt", "tag-real")
    for tag in ("tag-d1", "tag-real"):
        event = {"ts": datetime.now(UTC).isoformat(), "type": "tamper"}
        await publish(emon.topic(f"emon/v1/event/{tag}"), json.dumps(event))

    async def open_alerts() -> list[str]:
        async with emon.client() as c:
            return [a["case_id"] for a in (await c.get("/api/v1/alerts?state=open")).json()]

    async def both_open() -> bool:
        return {"sim-demo-080000-1", "zaak-echt"} <= set(await open_alerts())

    await eventually(both_open)
    retired = await retire_demo_cases(emon.base_url, ADMIN_TOKEN)
    assert sorted(retired) == ["sim-demo-080000-1", "sim-demo-080000-2"]
    assert await open_alerts() == ["zaak-echt"]  # a real case is never touched
    async with emon.client() as c:
        status = {d["case_id"]: d.get("status", "open") for d in (await c.get("/api/v1/cases")).json()}
    assert status == {"sim-demo-080000-1": "closed", "sim-demo-080000-2": "closed", "zaak-echt": "open"}
    assert await retire_demo_cases(emon.base_url, ADMIN_TOKEN) == []  # idempotent
