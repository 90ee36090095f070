"""The README's main command: `emon demo` with nothing configured starts embedded servers, serves the
API and plays the demo scenario, whose expected alerts must all arrive (an offender approaching the
victim and entering an exclusion zone)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A folder outside pytest's own (kept 0700 for root): the embedded PostgreSQL runs as another user
    and must traverse it; another pytest starting meanwhile resets pytest's folder to 0700."""
    folder = Path(tempfile.mkdtemp(prefix="emon-demo-test-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.timeout(240)
def test_demo_runs_on_embedded_servers_and_raises_live_alerts(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMON_")}
    env["EMON_HTTP_PORT"] = str(port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "emon.cli", "demo", "--data-dir", str(tmp_path / ".emon")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 200
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("scenario demo:"):
                break
        output = "".join(lines)
        assert "scenario demo: PASS" in output, output[-4000:]
        assert f"Monitoring room: http://127.0.0.1:{port}/room" in output
        assert "MQTT broker:  mqtt://127.0.0.1:" in output  # the embedded broker, so simulate can find it
        assert "HTTP Request:" not in output  # quiet by default: no line per API poll
        state = json.loads((tmp_path / ".emon" / "demo.json").read_text())
        assert state["api"] == f"http://127.0.0.1:{port}" and state["mqtt"].startswith("mqtt://127.0.0.1:")
        token = (tmp_path / ".emon" / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        alerts = httpx.get(f"http://127.0.0.1:{port}/api/v1/alerts", headers=headers, timeout=10).json()
        assert {"proximity_breach", "exclusion_breach"} <= {a["type"] for a in alerts}
        room = httpx.get(f"http://127.0.0.1:{port}/room", timeout=10)
        assert room.status_code == 200 and "<html" in room.text.lower()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    # The embedded PostgreSQL was stopped with the demo.
    assert not (tmp_path / ".emon" / "pg" / "postmaster.pid").exists()
