"""People, scoping, victim privacy and the audit log, through the real API, PostgreSQL, Redis and Mosquitto."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from emon.geo import destination
from emon.signing import generate_key_file, key_id
from emon.storage.audit import AuditLog
from emon.storage.postgres import Database
from tests.harness import PG_URL, Running, eventually, publish, running_emon

pytestmark = pytest.mark.integration
VICTIM_AT = (52.3702, 4.8952)
UNITS = ["om:amsterdam", "police:amsterdam", "probation:noord-holland"]
PURPOSE = {"X-Purpose": "alert_response"}


async def user(em: Running, user_id: str, role: str, units: list[str], **token: Any) -> str:
    async with em.client() as admin:
        r = await admin.post(
            "/api/v1/users", json={"user_id": user_id, "name": user_id.title(), "role": role, "units": units}
        )
        assert r.status_code == 201, r.text
        r = await admin.post(f"/api/v1/users/{user_id}/tokens", json=token or None)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


async def setup_case(em: Running, units: list[str] = UNITS) -> None:
    async with em.client() as c:
        for device, kind in (("tag-a", "ankle_tag"), ("vic-a", "victim_device")):
            assert (
                await c.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            ).status_code == 201
        residence = destination(*VICTIM_AT, 0, 6000)
        case = {
            "case_id": "case-a",
            "risk": "high",
            "offender_device": "tag-a",
            "victim_device": "vic-a",
            "residence": {"lat": residence[0], "lon": residence[1]},
            "units": units,
            "order": {"contact_ban_m": 300},
        }
        r = await c.post("/api/v1/cases", json=case)
        assert r.status_code == 201, r.text


async def audit(em: Running, token: str, **filters: Any) -> list[dict[str, Any]]:
    async with em.client(token) as c:
        r = await c.get("/api/v1/audit", params=filters)
        assert r.status_code == 200, r.text
        return list(r.json())


async def test_units_scope_every_read_and_a_refusal_is_audited() -> None:
    async with running_emon() as em:
        await setup_case(em)
        ams = await user(em, "piet", "police", ["police:amsterdam"])
        rdam = await user(em, "ria", "police", ["police:rotterdam"])
        om = await user(em, "olga", "prosecutor", ["om:amsterdam"])
        auditor = await user(em, "ada", "auditor", [])
        async with em.client(rdam) as c:
            refused = await c.get("/api/v1/cases/case-a")
            assert refused.status_code == 403 and refused.json()["detail"]["error"] == "out_of_scope"
            assert (await c.get("/api/v1/cases")).json() == []
            assert (await c.get("/api/v1/devices/tag-a/latest")).status_code == 403
            assert (await c.get("/api/v1/devices/tag-a/track")).status_code == 403
            assert (await c.get("/api/v1/cases/case-a/map")).status_code == 403
            assert (await c.get("/api/v1/alerts", params={"case_id": "case-a"})).json() == []
        async with em.client(ams) as c:
            assert (await c.get("/api/v1/cases/case-a")).status_code == 200
            assert [x["case_id"] for x in (await c.get("/api/v1/cases")).json()] == ["case-a"]
            assert (await c.get("/api/v1/audit")).status_code == 403  # only auditors (and admins) read it
        async with em.client(om) as c:  # the prosecutor sees the order and alerts of their own case
            assert (await c.get("/api/v1/cases/case-a")).json()["order"]["contact_ban_m"] == 300
            assert (await c.get("/api/v1/alerts", params={"case_id": "case-a"})).status_code == 200
            assert (await c.get("/api/v1/devices/tag-a/latest")).status_code == 403  # not positions
        async with em.client(auditor) as c:
            assert (await c.get("/api/v1/cases/case-a")).status_code == 403

        refusals = await audit(em, auditor, outcome="refused", case_id="case-a", user="ria")
        assert [(r["action"], r["role"], r["user_name"]) for r in refusals] == [
            ("case.read", "police", "Ria"),
            ("case.map", "police", "Ria"),
        ]
        reads = await audit(em, auditor, user="piet", action="case.read")
        assert [(r["case_id"], r["outcome"]) for r in reads] == [("case-a", "allowed")]
        assert (await audit(em, auditor, action="role.refused", user="olga"))[0]["detail"]["path"] == (
            "/api/v1/devices/tag-a/latest"
        )


async def test_a_revoked_token_stops_at_once_and_ends_its_stream_within_5_s() -> None:
    async with running_emon() as em:
        await setup_case(em)
        token = await user(em, "rob", "probation", ["probation:noord-holland"])
        async with em.client() as admin:
            listed = (await admin.get("/api/v1/tokens", params={"user_id": "rob"})).json()
        assert [(t["user_id"], t["revoked_at"]) for t in listed] == [("rob", None)]
        assert "token" not in listed[0] and "token_sha256" not in listed[0]
        lines: list[str] = []
        async with (
            httpx.AsyncClient(
                base_url=em.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
            ) as c,
            c.stream("GET", "/api/v1/stream") as resp,
        ):
            assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
            it = resp.aiter_lines()
            while await anext(it) != ": connected":
                pass
            async with em.client() as admin:
                r = await admin.post(f"/api/v1/tokens/{listed[0]['token_id']}/revoke")
                assert r.status_code == 200 and r.json()["revoked_by"] == "bootstrap-admin"
            revoked_at = asyncio.get_running_loop().time()
            async with em.client(token) as again:
                assert (await again.get("/api/v1/cases")).status_code == 401  # at once
            async with asyncio.timeout(5):
                lines = [line async for line in it]  # the server ends the stream
            assert asyncio.get_running_loop().time() - revoked_at < 5
        assert "event: end" in lines


async def test_an_expired_token_and_a_disabled_user_are_refused() -> None:
    async with running_emon() as em:
        short = await user(em, "eva", "police", ["police:amsterdam"], ttl_days=1 / 86_400)  # one second
        async with em.client(short) as c:
            assert (await c.get("/api/v1/me")).json()["units"] == ["police:amsterdam"]
            await asyncio.sleep(1.2)
            assert (await c.get("/api/v1/me")).status_code == 401
        token = await user(em, "dirk", "police", ["police:amsterdam"])
        async with em.client() as admin:
            assert (await admin.post("/api/v1/users/dirk/disable")).status_code == 200
        async with em.client(token) as c:
            assert (await c.get("/api/v1/me")).status_code == 401


async def approach(em: Running) -> None:
    now = datetime.now(UTC)
    victim = {
        "ts": (now - timedelta(seconds=5)).isoformat(),
        "lat": VICTIM_AT[0],
        "lon": VICTIM_AT[1],
        "acc": 10,
    }
    await publish(em.topic("emon/v1/fix/vic-a"), json.dumps(victim))
    distances = [2400, 2000, 1600, 1200, 800, 400, 150, 100]
    for i, d in enumerate(distances):
        lat, lon = destination(*VICTIM_AT, 0, d)
        ts = now - timedelta(seconds=10 * (len(distances) - i))
        await publish(
            em.topic("emon/v1/fix/tag-a"),
            json.dumps({"ts": ts.isoformat(), "lat": lat, "lon": lon, "acc": 5, "seq": i}),
        )


async def test_the_victims_position_opens_for_proximity_not_for_the_tags_battery() -> None:
    async with running_emon() as em:
        await setup_case(em)
        room = await user(em, "rob", "probation", ["probation:noord-holland"])
        auditor = await user(em, "ada", "auditor", [])
        now = datetime.now(UTC).isoformat()
        await publish(
            em.topic("emon/v1/fix/vic-a"),
            json.dumps({"ts": now, "lat": VICTIM_AT[0], "lon": VICTIM_AT[1], "acc": 10}),
        )
        await publish(em.topic("emon/v1/event/tag-a"), json.dumps({"ts": now, "type": "battery_low"}))

        async def alerts() -> list[dict[str, Any]]:
            async with em.client(room) as c:
                return list(
                    (await c.get("/api/v1/alerts", params={"case_id": "case-a"}, headers=PURPOSE)).json()
                )

        assert [a["type"] for a in await eventually(alerts)] == ["battery_low"]
        await eventually(lambda: em.runtime.live.latest("vic-a"))
        async with em.client(room) as c:
            r = await c.get("/api/v1/devices/vic-a/latest", headers=PURPOSE)
            assert (r.status_code, r.json()["detail"]["error"]) == (403, "victim_private")
            assert (await c.get("/api/v1/cases/case-a/map", headers=PURPOSE)).json()["victim"] is None

        await approach(em)

        async def proximity() -> bool:
            return any(a["type"].startswith("proximity") for a in await alerts())

        await eventually(proximity)
        async with em.client(room) as c:
            r = await c.get("/api/v1/devices/vic-a/latest")
            assert (r.status_code, r.json()["detail"]["error"]) == (400, "purpose_required")
            r = await c.get("/api/v1/devices/vic-a/latest", headers=PURPOSE)
            assert r.status_code == 200 and r.json()["device_id"] == "vic-a"
            assert r.headers["cache-control"] == "no-store"
            m = await c.get("/api/v1/cases/case-a/map")  # no purpose: the map comes without the victim
            assert m.json()["victim"] is None and m.json()["victim_withheld"] == "purpose_required"
            m = await c.get("/api/v1/cases/case-a/map", params={"purpose": "dispatch"})
            assert m.json()["victim"]["device_id"] == "vic-a" and m.headers["cache-control"] == "no-store"
            assert (await c.get("/api/v1/devices/vic-a/track", headers=PURPOSE)).status_code == 403  # history
            offender = await c.get("/api/v1/devices/tag-a/track")
            assert offender.status_code == 200 and offender.headers["cache-control"] == "no-store"
        latest = await audit(em, auditor, device_id="vic-a", action="device.latest")
        assert [(r["outcome"], r["purpose"]) for r in latest] == [
            ("refused", "alert_response"),
            ("refused", None),
            ("allowed", "alert_response"),
        ]
        assert latest[0]["detail"]["error"] == "victim_private" and latest[2]["case_id"] == "case-a"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "signing.pem"
    generate_key_file(path)
    return path


async def test_the_audit_chain_verifies_and_names_a_row_altered_in_sql(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emon.cli import main

    async with running_emon(signing_key_file=str(key_file), audit_checkpoint_every=4) as em:
        await setup_case(em)
        for _ in range(5):
            async with em.client() as c:
                assert (await c.get("/api/v1/cases/case-a")).status_code == 200
        for var, value in (
            ("EMON_DB_SCHEMA", em.settings.db_schema),
            ("EMON_SIGNING_KEY_FILE", str(key_file)),
        ):
            monkeypatch.setenv(var, value)
        assert await asyncio.to_thread(main, ["audit", "verify"]) == 0
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            await conn.execute(f"SET search_path = {em.settings.db_schema}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the table refuses edits
                await conn.execute("UPDATE audit_log SET user_name = 'nobody' WHERE seq = 3")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await conn.execute("DELETE FROM audit_log WHERE seq = 3")
            # Someone who can switch triggers off (a superuser) alters record 3 anyway.
            await conn.execute("SET session_replication_role = replica")
            await conn.execute("UPDATE audit_log SET user_name = 'nobody' WHERE seq = 3")
        db = Database(PG_URL, em.settings.db_schema)
        await db.open()
        try:
            from emon.signing import load_private_key

            public = load_private_key(key_file).public_key()
            verdict = await AuditLog(db).verify({key_id(public): public})
        finally:
            await db.close()
        assert (verdict.ok, verdict.first_broken) == (False, 3) and "altered" in verdict.problem
        assert await asyncio.to_thread(main, ["audit", "verify"]) == 1


async def test_concurrent_instances_append_one_chain(key_file: Path) -> None:
    from emon.access import Principal, Role
    from emon.audit import Entry, Outcome
    from emon.signing import load_private_key

    async with running_emon() as em:
        key = load_private_key(key_file)
        dbs = [Database(PG_URL, em.settings.db_schema, max_size=4) for _ in range(2)]
        for db in dbs:
            await db.open()
        try:
            logs = [AuditLog(db, key, checkpoint_every=7) for db in dbs]
            who = Principal("x", Role.POLICE, frozenset({"police:a"}), "x")

            async def append(log: AuditLog, n: int) -> None:
                for i in range(n):
                    await log.record(
                        Entry.of(who, datetime.now(UTC), "case.read", Outcome.ALLOWED, case_id=str(i))
                    )

            await asyncio.gather(*(append(log, 25) for log in logs for _ in range(2)))
            verdict = await logs[0].verify({key_id(key.public_key()): key.public_key()})
            assert verdict.ok, verdict.problem
            # 100 records, seq 1..100 in one chain; a checkpoint whenever 7 or more were appended since the last
            # (concurrent appends of one instance are group-committed, so a checkpoint may cover several).
            assert verdict.records == 100 and verdict.checkpoints >= 5
        finally:
            for db in dbs:
                await db.close()


async def test_deep_or_unstorable_json_is_a_4xx_and_positions_are_not_cached() -> None:
    async with running_emon() as em, em.client() as c:
        deep = b"[" * 20_000 + b"]" * 20_000
        for path in ("/api/v1/cases", "/api/v1/devices", "/api/v1/users"):
            r = await c.post(path, content=deep, headers={"content-type": "application/json"})
            assert (r.status_code, r.json()["error"]) == (400, "json_too_deep"), path
        r = await c.post(
            "/api/v1/devices",
            content=b'{"device_id": "a\\u0000b", "kind": "ankle_tag"}',
            headers={"content-type": "application/json"},
        )
        assert (r.status_code, r.json()["error"]) == (422, "invalid_text")
        r = await c.post(
            "/api/v1/devices",
            content=b'{"device_id": "d", "kind": "ankle_tag", "report_interval_s": 1e999}',
            headers={"content-type": "application/json"},
        )
        assert (r.status_code, r.json()["error"]) == (400, "invalid_json")  # was a 500 rendering the error
        r = await c.post(
            "/api/v1/cases",
            content=b'{"n": ' + b"9" * 5000 + b"}",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400
        assert (await c.get("/api/v1/devices")).headers["cache-control"] == "no-store"
        assert (await c.get("/readyz")).status_code == 200


async def test_a_read_that_cannot_be_audited_is_not_served() -> None:
    async with running_emon() as em:
        await setup_case(em)
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
            await conn.execute(f"ALTER TABLE {em.settings.db_schema}.audit_log RENAME TO audit_log_gone")
        async with em.client() as c:
            r = await c.get("/api/v1/cases/case-a")
            assert (r.status_code, r.json()["error"]) == (503, "storage_unavailable")
            assert "case-a" not in r.text
