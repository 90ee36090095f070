"""Delivery channels, one per file: the victim's device (MQTT), the monitoring room (hub), police (webhook)."""

from __future__ import annotations

from emon.errors import EmonError


class DeliveryError(EmonError):
    """One delivery attempt failed; the outbox will try again (the library error is chained)."""
