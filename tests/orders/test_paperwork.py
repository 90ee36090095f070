"""Police systems are told of an order imposed, extended and ended (CAP, own endpoint, durable outbox)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

import pytest
import xmlschema

from emon.alerts.cap import NS, schema_path
from tests.alerts.conftest import WebhookServer
from tests.harness import Running, running_emon
from tests.orders.test_orders_api import DAY, new_case, order

pytestmark = pytest.mark.integration
SCHEMA = xmlschema.XMLSchema(schema_path())


def fields(body: bytes) -> dict[str, str]:
    SCHEMA.validate(body.decode())
    root = ET.fromstring(body)
    info = root.find(f"{{{NS}}}info")
    assert info is not None

    def text(el: ET.Element, tag: str) -> str:
        found = el.find(f"{{{NS}}}{tag}")
        return "" if found is None or found.text is None else found.text

    return {
        "msgType": text(root, "msgType"),
        "status": text(root, "status"),
        "urgency": text(info, "urgency"),
        "severity": text(info, "severity"),
        "certainty": text(info, "certainty"),
        "incidents": text(root, "incidents"),
        "area": text(info.find(f"{{{NS}}}area") or info, "circle"),
    }


def police_emon(webhook: WebhookServer) -> AbstractAsyncContextManager[Running]:
    """An emon telling police systems of orders at ``webhook`` (lifecycle passes only when a test asks)."""
    return running_emon(
        order_tick_s=3600, tick_s=3600, order_police_url=webhook.url, webhook_url="http://127.0.0.1:9/never"
    )


async def test_order_imposed_extended_and_ended_reach_the_police_endpoint_as_cap(
    webhook: WebhookServer,
) -> None:
    async with police_emon(webhook) as em:
        rt = em.runtime
        now = datetime.now(UTC).replace(microsecond=0)
        assert (await new_case(em, "c-cap", order(now - DAY, 60))).status_code == 201
        await rt.orders.tick(now)
        await rt.orders.tick(now)  # told once
        [imposed] = await webhook.wait_for(1)
        assert imposed.headers["content-type"].startswith("application/xml")
        got = fields(imposed.body)
        assert got == {
            "msgType": "Alert",
            "status": "Actual",
            "urgency": "Unknown",
            "severity": "Minor",
            "certainty": "Observed",
            "incidents": "c-cap",
            "area": "52.370000,4.890000 0.500",
        }
        async with em.client() as c:
            r = await c.post(
                "/api/v1/cases/c-cap/order/decisions",
                json={
                    "decision": "extended",
                    "reason": "verlengd",
                    "valid_until": (now + 120 * DAY).isoformat(),
                },
            )
            assert r.status_code == 201, r.text
        await rt.orders.tick(now + timedelta(seconds=1))
        received = await webhook.wait_for(2)
        assert fields(received[1].body)["msgType"] == "Update"
        # A term that ended a minute ago (the outbox sends what is due by the real clock).
        assert (await new_case(em, "c-end", order(now - 60 * DAY, 60 - 1 / 1440))).status_code == 201
        await rt.orders.tick(now + timedelta(seconds=2))
        received = await webhook.wait_for(3)
        assert (
            fields(received[2].body)["msgType"] == "Cancel"
            and fields(received[2].body)["incidents"] == "c-end"
        )
        assert len({r.headers["webhook-id"] for r in received}) == 3


async def test_closing_a_case_tells_the_police_the_order_ended_once(webhook: WebhookServer) -> None:
    async with police_emon(webhook) as em:
        rt = em.runtime
        now = datetime.now(UTC).replace(microsecond=0)
        assert (await new_case(em, "c-close", order(now - DAY, 60))).status_code == 201
        assert (await new_case(em, "c-quiet", order(now - DAY, 60))).status_code == 201
        await rt.orders.tick(now)
        assert [fields(r.body)["msgType"] for r in await webhook.wait_for(2)] == ["Alert", "Alert"]
        async with em.client() as c:
            r = await c.post("/api/v1/cases/c-close/close", params={"reason": "tag removed by the court"})
            assert r.status_code == 200, r.text
        received = await webhook.wait_for(3)
        cancel = fields(received[2].body)
        assert (cancel["msgType"], cancel["incidents"]) == ("Cancel", "c-close")
        await rt.orders.tick(now + timedelta(seconds=1))  # the lifecycle does not tell it again
        # A case whose order the police were never told of (closed before a lifecycle pass) gets no Cancel;
        # its Cancel would be queued before the next one.
        assert (await new_case(em, "c-never", order(now - DAY, 60))).status_code == 201
        async with em.client() as c:
            assert (await c.post("/api/v1/cases/c-never/close")).status_code == 200
            assert (await c.post("/api/v1/cases/c-quiet/close")).status_code == 200
        received = await webhook.wait_for(4)
        assert [fields(r.body)["incidents"] for r in received[3:]] == ["c-quiet"]
        assert len({r.headers["webhook-id"] for r in received}) == 4


async def test_a_case_closed_on_an_instance_that_is_not_the_coordinator_still_tells_the_police(
    webhook: WebhookServer,
) -> None:
    from emon.cluster.coordinator import COORDINATOR
    from emon.storage.lease import Fence, Lease

    async with police_emon(webhook) as em:
        rt = em.runtime
        now = datetime.now(UTC).replace(microsecond=0)
        assert (await new_case(em, "c-else", order(now - DAY, 60))).status_code == 201
        await rt.orders.tick(now)
        assert [fields(r.body)["msgType"] for r in await webhook.wait_for(1)] == ["Alert"]
        # Several instances: this one does not hold the coordinator lease (another instance runs the passes).
        rt.orders.fence = Fence(Lease(rt.db, COORDINATOR, "another-instance", 6.0))
        async with em.client() as c:
            r = await c.post("/api/v1/cases/c-else/close", params={"reason": "order lifted"})
            assert r.status_code == 200, r.text
        received = await webhook.wait_for(2)
        assert (fields(received[1].body)["msgType"], fields(received[1].body)["incidents"]) == (
            "Cancel",
            "c-else",
        )
