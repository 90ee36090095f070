"""Orders through the real API, PostgreSQL, Redis and Mosquitto, with the lifecycle's clock passed in."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emon.geofence.events import Classification, EvalEvent, EvalEventType
from emon.signing import generate_key_file
from emon.tasks.model import TaskKind
from tests.alerts.conftest import WebhookServer
from tests.harness import Running, running_emon

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)
UNITS = ["om:amsterdam", "police:amsterdam", "probation:noord-holland"]
ZONE = {
    "name": "woning slachtoffer",
    "circle": {"lat": 52.37, "lon": 4.89, "radius_m": 500},
    "protects_victim": True,
}


async def user(em: Running, user_id: str, role: str, units: list[str]) -> str:
    async with em.client() as admin:
        r = await admin.post(
            "/api/v1/users", json={"user_id": user_id, "name": user_id.title(), "role": role, "units": units}
        )
        assert r.status_code == 201, r.text
        r = await admin.post(f"/api/v1/users/{user_id}/tokens")
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def order(start: datetime, days: float, kind: str = "gedragsaanwijzing") -> dict[str, Any]:
    return {
        "kind": kind,
        "contact_ban_m": 300,
        "exclusion_zones": [ZONE],
        "decision": {"authority": "OM Amsterdam", "reference": "13/123456-26", "date": start.isoformat()},
        "valid_from": start.isoformat(),
        "valid_until": (start + days * DAY).isoformat(),
    }


async def new_case(em: Running, case_id: str, order_doc: dict[str, Any], **extra: Any) -> Any:
    async with em.client() as c:
        for device, kind in ((f"tag-{case_id}", "ankle_tag"), (f"vic-{case_id}", "victim_device")):
            assert (
                await c.post("/api/v1/devices", json={"device_id": device, "kind": kind})
            ).status_code == 201
        body = {
            "case_id": case_id,
            "risk": "high",
            "offender_device": f"tag-{case_id}",
            "victim_device": f"vic-{case_id}",
            "residence": {"lat": 52.30, "lon": 4.80},
            "units": UNITS,
            "prosecutor": "olga",
            "probation_officer": "paula",
            "order": order_doc,
            **extra,
        }
        return await c.post("/api/v1/cases", json=body)


async def tasks(em: Running, case_id: str, kind: TaskKind) -> list[dict[str, Any]]:
    async with em.client() as c:
        r = await c.get("/api/v1/tasks", params={"case_id": case_id, "kind": kind.value})
        assert r.status_code == 200, r.text
        return sorted(r.json(), key=lambda t: t["created_at"])


async def test_a_60_day_gedragsaanwijzing_reminds_escalates_expires_and_a_late_extension_restores_it() -> (
    None
):
    async with running_emon(
        order_unit_leads="probation:noord-holland=lea", order_tick_s=3600, tick_s=3600
    ) as em:
        rt = em.runtime
        now = datetime.now(UTC).replace(microsecond=0)
        t0 = now - 70 * DAY  # the term ended 10 days ago: the lifecycle runs on a clock we pass in
        refused = await new_case(em, "c-120", order(t0, 120))
        assert refused.status_code == 422
        assert "at most 90 days per term" in refused.json()["detail"]["message"]
        assert (await new_case(em, "c-60", order(t0, 60))).status_code == 201

        await rt.orders.tick(t0)
        imposed = await tasks(em, "c-60", TaskKind.INFORM_VICTIM)
        assert [t["detail"]["notice"] for t in imposed] == ["imposed"]
        await rt.orders.tick(t0 + 38 * DAY)
        assert await tasks(em, "c-60", TaskKind.ORDER_REMINDER) == []
        await rt.orders.tick(t0 + 39 * DAY)
        [first] = await tasks(em, "c-60", TaskKind.ORDER_REMINDER)
        assert first["detail"]["assignees"] == ["olga", "paula"]
        assert first["detail"]["escalate_to"] == ["lea", "room"]
        assert first["deadline"] == (t0 + 46 * DAY).isoformat()
        olga = await user(em, "olga", "prosecutor", ["om:amsterdam"])
        lea = await user(em, "lea", "probation", ["probation:noord-holland"])

        async def mine(token: str) -> list[str]:
            async with em.client(token) as c:
                r = await c.get("/api/v1/orders/tasks")
                assert r.status_code == 200, r.text
                return [t["task_id"] for t in r.json()]

        assert await mine(olga) == [first["task_id"]] and await mine(lea) == []
        # Nobody decides: at its deadline the reminder escalates (priority up, to the lead and the room).
        await rt.alerts.tasks.tick(t0 + 46 * DAY)
        assert await mine(lea) == [first["task_id"]]
        for day in (46, 53, 57, 59):
            await rt.orders.tick(t0 + day * DAY)
        reminders = await tasks(em, "c-60", TaskKind.ORDER_REMINDER)
        assert [t["detail"]["days_before"] for t in reminders] == [21, 14, 7, 3, 1]
        assert reminders[0]["escalation_level"] == 1 and reminders[0]["priority"] == "high"

        # The end without a decision: the expiry alert, the victim's notice, no order in force.
        await rt.orders.tick(t0 + 60 * DAY)
        async with em.client() as c:
            alerts = (await c.get("/api/v1/alerts", params={"case_id": "c-60"})).json()
            status = (await c.get("/api/v1/cases/c-60/order")).json()
            listed = (await c.get("/api/v1/orders/expiring", params={"within": "14d"})).json()
        assert [(a["type"], a["priority"]) for a in alerts] == [("order_expired", "high")]
        notices = [t["detail"]["notice"] for t in await tasks(em, "c-60", TaskKind.INFORM_VICTIM)]
        assert notices == ["imposed", "ended"]
        assert status["in_force"] is False and status["expired_without_decision"] is True
        async with em.client() as c:
            assert (await c.get("/api/v1/cases/c-60/map")).json()["order_in_force"] is False
        assert [i["case_id"] for i in listed["expired_without_decision"]] == ["c-60"]
        await rt.orders.tick(t0 + 61 * DAY)  # once only
        assert len(await tasks(em, "c-60", TaskKind.INFORM_VICTIM)) == 2

        # A 120-day extension is refused; a 80-day one entered late restores enforcement and flags the gap.
        async with em.client() as c:
            too_long = await c.post(
                "/api/v1/cases/c-60/order/decisions",
                json={
                    "decision": "extended",
                    "reason": "verlenging",
                    "valid_until": (now + 120 * DAY).isoformat(),
                },
            )
            assert too_long.status_code == 422 and "at most 90 days" in too_long.json()["detail"]["message"]
            r = await c.post(
                "/api/v1/cases/c-60/order/decisions",
                json={
                    "decision": "extended",
                    "reason": "verlengd door OvJ",
                    "valid_until": (now + 80 * DAY).isoformat(),
                },
            )
            assert r.status_code == 201, r.text
            assert r.json()["gap"]["from"] == (t0 + 60 * DAY).isoformat()
            versions = (await c.get("/api/v1/cases/c-60/versions")).json()
            status = (await c.get("/api/v1/cases/c-60/order")).json()
        assert [v["version"] for v in versions] == [1, 2]
        assert versions[1]["document"]["order"]["extensions"] == 1
        assert status["in_force"] is True and status["expired_without_decision"] is False
        async with em.client() as c:
            assert (await c.get("/api/v1/cases/c-60/map")).json()["order_in_force"] is True
        assert all(t["state"] == "done" for t in await tasks(em, "c-60", TaskKind.ORDER_REMINDER))
        # The new term's reminders start over; the victim is told of the extension.
        await rt.orders.tick(now)
        assert [t["detail"]["notice"] for t in await tasks(em, "c-60", TaskKind.INFORM_VICTIM)][
            -1
        ] == "extended"
        await rt.orders.tick(now + 59 * DAY)
        open_reminders = [t for t in await tasks(em, "c-60", TaskKind.ORDER_REMINDER) if t["state"] == "open"]
        assert [t["detail"]["days_before"] for t in open_reminders] == [21]


async def test_police_of_the_right_unit_look_up_a_persons_order_and_the_lookup_is_audited() -> None:
    async with running_emon(order_tick_s=3600) as em:
        now = datetime.now(UTC)
        assert (await new_case(em, "c-p", order(now - DAY, 60), person_ref="PV-2026-0042")).status_code == 201
        piet = await user(em, "piet", "police", ["police:amsterdam"])
        ria = await user(em, "ria", "police", ["police:rotterdam"])
        async with em.client(piet) as c:
            r = await c.get("/api/v1/orders/lookup", params={"person_ref": "PV-2026-0042", "lang": "nl"})
            assert r.status_code == 200, r.text
            [found] = r.json()["orders"]
            by_device = await c.get("/api/v1/orders/lookup", params={"device": "tag-c-p", "lang": "en"})
        assert found["in_force"] is True and found["kind"] == "gedragsaanwijzing"
        assert found["summary"].startswith(
            "gedragsaanwijzing van de officier van justitie (art. 509hh Sv): van kracht"
        )
        assert "13/123456-26" in found["decision_text"]
        texts = [rule["text"] for rule in found["rules"]]
        assert texts == [
            "Contactverbod: mag niet binnen 300 meter van het slachtoffer komen.",
            "Locatieverbod: mag niet in het gebied 'woning slachtoffer' (500 m) komen (altijd).",
        ]
        assert found["rules"][1]["map"].startswith(
            "https://www.openstreetmap.org/?mlat=52.37000&mlon=4.89000"
        )
        assert found["geojson"]["type"] == "FeatureCollection" and found["recently_violated"] is False
        assert by_device.json()["orders"][0]["rules"][0]["text"].startswith(
            "Contact ban: must not come within 300"
        )
        async with em.client(ria) as c:
            other = await c.get("/api/v1/orders/lookup", params={"person_ref": "PV-2026-0042"})
        assert other.status_code == 403 and other.json()["detail"]["error"] == "out_of_scope"
        async with em.client() as admin:
            log = (await admin.get("/api/v1/audit", params={"action": "order.lookup"})).json()
        assert [(e["user_id"], e["case_id"], e["outcome"]) for e in log] == [
            ("piet", "c-p", "allowed"),
            ("piet", "c-p", "allowed"),
            ("ria", None, "refused"),
        ]


async def test_a_violation_opens_a_report_task_the_report_closes_it_and_the_overview_counts_it(
    tmp_path: Path, webhook: WebhookServer
) -> None:
    key = tmp_path / "key.pem"
    generate_key_file(key)
    async with running_emon(
        order_tick_s=3600, signing_key_file=str(key), order_prosecutor_url=webhook.url
    ) as em:
        rt = em.runtime
        now = datetime.now(UTC).replace(microsecond=0)
        assert (await new_case(em, "c-v", order(now - 5 * DAY, 60))).status_code == 201
        paula = await user(em, "paula", "probation", ["probation:noord-holland"])
        olga = await user(em, "olga", "prosecutor", ["om:amsterdam"])

        def breach(at: datetime) -> EvalEvent:
            return EvalEvent(
                EvalEventType.EXCLUSION_BREACH,
                "c-v",
                "exclusion:woning slachtoffer",
                at,
                at,
                at,
                Classification.BREACH,
                0.0,
                (),
            )

        await rt.alerts.on_evaluation([breach(now - timedelta(hours=1))], now - timedelta(hours=1), 0.0)
        await rt.alerts.on_evaluation([breach(now - timedelta(hours=20))], now - timedelta(hours=20), 0.0)
        opened = await rt.orders.violations(now)
        assert len(opened) == 2 and await rt.orders.violations(now) == []  # once per violation
        report_tasks = await tasks(em, "c-v", TaskKind.REPORT_PROSECUTOR)
        recent, older = sorted(report_tasks, key=lambda t: t["created_at"], reverse=True)
        # A gedragsaanwijzing at high risk: 12 hours to report (emon/orders/report_terms.toml).
        assert recent["deadline"] == (now - timedelta(hours=1) + timedelta(hours=12)).isoformat()
        assert recent["detail"]["assignees"] == ["paula"] and recent["detail"]["prosecutor"] == "olga"
        async with em.client(paula) as c:
            r = await c.post(
                f"/api/v1/orders/reports/{recent['task_id']}",
                json={"assessment": "Bewust het gebied in gelopen; melding aan OvJ."},
            )
            assert r.status_code == 200, r.text
            assert r.json()["on_time"] is True and len(r.json()["evidence_pack"]["sha256"]) == 64
            again = await c.post(f"/api/v1/orders/reports/{recent['task_id']}", json={"assessment": "x"})
            assert again.status_code == 409
        [sent] = await webhook.wait_for(1)  # the report itself, at the prosecutor's endpoint
        assert (
            sent.headers["content-type"] == "application/json"
            and sent.headers["webhook-id"] == recent["task_id"]
        )
        body = json.loads(sent.body)
        assert body["assessment"].startswith("Bewust") and body["case_id"] == "c-v"
        pack = base64.b64decode(body["evidence_pack"]["zip_base64"])
        assert hashlib.sha256(pack).hexdigest() == body["evidence_pack"]["sha256"] and pack[:2] == b"PK"
        states = {t["task_id"]: t["state"] for t in await tasks(em, "c-v", TaskKind.REPORT_PROSECUTOR)}
        assert states == {recent["task_id"]: "done", older["task_id"]: "open"}
        async with em.client(olga) as c:
            r = await c.get(
                "/api/v1/orders/reports/overview",
                params={"since": (now - 2 * DAY).isoformat(), "until": (now + DAY).isoformat()},
            )
            assert r.status_code == 200, r.text
        counts = r.json()
        assert (counts["total"], counts["on_time"], counts["late"], counts["open_in_term"]) == (2, 1, 1, 0)
        assert counts["median_hours_to_report"] is not None and counts["median_hours_to_report"] <= 1.1
