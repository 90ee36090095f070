"""The monitoring room: every alert change goes to the live hub as kind ``"alert"``.

The hub is best-effort (a slow subscriber gets a ``gap`` and reloads from REST); the durable record
of every alert is in PostgreSQL, so the room never depends on this publish for the truth.
"""

from __future__ import annotations

from emon.alerts.model import Alert
from emon.hub import Hub


class RoomChannel:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def publish(self, alert: Alert) -> None:
        """Never blocks, never raises."""
        self.hub.publish("alert", alert.to_json())
