"""A real breach for evidence tests: devices and a case through the API, fixes over MQTT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from emon.geo import destination
from emon.settings import Settings
from emon.signing import new_private_key_pem
from tests.harness import Running, eventually, publish

VICTIM_AT = (52.3702, 4.8952)
OFFENDER, VICTIM = "tag-e", "victim-e"


def case_doc(case_id: str, contact_ban_m: float) -> dict[str, Any]:
    residence = destination(*VICTIM_AT, 0, 6000)
    zone = destination(*VICTIM_AT, 180, 3000)
    return {
        "case_id": case_id,
        "risk": "high",
        "offender_device": OFFENDER,
        "victim_device": VICTIM,
        "residence": {"lat": residence[0], "lon": residence[1]},
        "order": {
            "contact_ban_m": contact_ban_m,
            "exclusion_zones": [
                {"name": "school", "circle": {"lat": zone[0], "lon": zone[1], "radius_m": 200}}
            ],
        },
    }


def write_key(folder: Path) -> Path:
    path = folder / "signing.pem"
    path.write_bytes(new_private_key_pem())
    path.chmod(0o600)
    return path


async def setup_case(em: Running, case_id: str = "case-e") -> None:
    """Devices, a case (version 1) and an order change with a reason (version 2: contact ban 300 m)."""
    async with em.client() as c:
        for device, kind in ((OFFENDER, "ankle_tag"), (VICTIM, "victim_device")):
            assert (
                await c.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            ).status_code == 201
        r = await c.post(
            "/api/v1/cases", json=case_doc(case_id, 200), params={"reason": "court order 12/345"}
        )
        assert r.status_code == 201, r.text
        r = await c.put(
            f"/api/v1/cases/{case_id}",
            json=case_doc(case_id, 300),
            params={"reason": "extended by the prosecutor"},
        )
        assert r.status_code == 200, r.text


async def walk_in(em: Running, distances_m: list[float], start: datetime | None = None) -> None:
    """The offender walks toward the victim, one fix every 10 s (fix time); the victim's phone, standing
    still, reports at the same moments. A breach needs accumulated evidence (docs/safety.md): two fixes
    inside the ban, each with a fresh victim fix (an old one leaves 15 m/s × its age of possible movement).
    Writes ``2 * len(distances_m)`` fixes."""
    now = start or datetime.now(UTC)
    for i, d in enumerate(distances_m):
        ts = now - timedelta(seconds=10 * (len(distances_m) - i))
        victim = {"ts": ts.isoformat(), "lat": VICTIM_AT[0], "lon": VICTIM_AT[1], "acc": 12.3, "seq": i}
        await publish(em.topic(f"emon/v1/fix/{VICTIM}"), json.dumps(victim))
        lat, lon = destination(*VICTIM_AT, 0, d)
        fix = {"ts": ts.isoformat(), "lat": lat, "lon": lon, "acc": 5.7, "seq": i}
        await publish(em.topic(f"emon/v1/fix/{OFFENDER}"), json.dumps(fix))


async def breach_alert(em: Running, case_id: str = "case-e") -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        async with em.client() as c:
            alerts = (await c.get("/api/v1/alerts", params={"case_id": case_id})).json()
        return next((a for a in alerts if a["type"] == "proximity_breach"), None)

    alert: dict[str, Any] = await eventually(found)
    return alert


async def token(em: Running, role: str, units: tuple[str, ...] = ("*",)) -> str:
    return await em.token_for(role, units, name=f"{role}-user")


def emon_cli(settings: Settings, *args: str, key: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The ``emon`` command in a child process, against ``settings``' database schema."""
    env = {**os.environ, "EMON_DATABASE_URL": settings.database_url, "EMON_DB_SCHEMA": settings.db_schema}
    if key is not None:
        env["EMON_SIGNING_KEY_FILE"] = str(key)
    return subprocess.run(
        [sys.executable, "-m", "emon.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
