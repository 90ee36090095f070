"""Police dispatch: an HTTP POST of a CAP 1.2 document, signed the Standard Webhooks way.

Headers: ``webhook-id`` (the delivery id: the same on every retry, the receiver deduplicates on it),
``webhook-timestamp`` (unix seconds of this attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256
of "{id}.{timestamp}.{body}">``. A non-2xx answer or a network error raises :class:`DeliveryError`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

import httpx

from emon.alerts.channels import DeliveryError


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value. A ``whsec_`` secret is base64 (Standard Webhooks); others are raw."""
    key = base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_") else secret.encode()
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, msg_id: str, timestamp: int, body: bytes, header: str) -> bool:
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in header.split())


class DispatchChannel:
    def __init__(
        self,
        secret: str | None,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.secret = secret
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    async def send(self, url: str, delivery_id: str, body: bytes, now: datetime) -> None:
        ts = int(now.timestamp())
        headers = {
            "content-type": "application/xml; charset=utf-8",
            "webhook-id": delivery_id,
            "webhook-timestamp": str(ts),
        }
        if self.secret:
            headers["webhook-signature"] = sign(self.secret, delivery_id, ts, body)
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook POST failed: {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"webhook answered {response.status_code}: {response.text[:200]}")

    async def close(self) -> None:
        await self._client.aclose()
