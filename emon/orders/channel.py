"""Paperwork deliveries (police order messages, violation reports): an HTTP POST signed the Standard Webhooks
way, like dispatch but on its own endpoints, so paperwork never queues among emergencies.

The content type follows the stored row's ``msg_type``: ``order_*`` rows are CAP XML, ``violation_report``
rows JSON. A non-2xx answer or a network error raises :class:`DeliveryError` (the outbox retries).
"""

from __future__ import annotations

from datetime import datetime

import httpx

from emon.alerts.channels import DeliveryError
from emon.alerts.channels.dispatch import sign
from emon.storage.alerts import Delivery


class PaperworkChannel:
    def __init__(self, secret: str | None, *, timeout_s: float = 10.0) -> None:
        self.secret = secret
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def send(self, d: Delivery, now: datetime) -> None:
        ts = int(now.timestamp())
        kind = "application/json" if d.msg_type == "violation_report" else "application/xml; charset=utf-8"
        headers = {"content-type": kind, "webhook-id": d.delivery_id, "webhook-timestamp": str(ts)}
        if self.secret:
            headers["webhook-signature"] = sign(self.secret, d.delivery_id, ts, d.body)
        try:
            response = await self._client.post(d.target, content=d.body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"POST failed: {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"endpoint answered {response.status_code}: {response.text[:200]}")

    async def close(self) -> None:
        await self._client.aclose()
