"""The alert tests' fixtures (own schema, MQTT prefix, Redis prefix, webhook server), shared here."""

from tests.alerts.conftest import db, live, webhook, world

__all__ = ["db", "live", "webhook", "world"]
