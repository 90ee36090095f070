"""The orders tests reuse the alert tests' webhook receiver (a tiny real HTTP server)."""

from tests.alerts.conftest import webhook

__all__ = ["webhook"]
