"""The exception tree of emon.

    EmonError
    ├── ConfigError            a missing or bad EMON_* variable (names it)
    ├── InvalidInput           anything from outside that fails validation
    │   ├── InvalidPayload     a device message that cannot be used (reason code + detail)
    │   └── InvalidOrder       an order / case document that fails validation (names the field)
    ├── NotFound               an API resource that does not exist
    ├── MqttError              the broker broke the MQTT protocol (emon.mqtt.wire)
    │   └── MalformedPacket    a packet that cannot be decoded
    │       └── PacketTooLarge a packet over the configured maximum size
    ├── StorageError           PostgreSQL or Redis failed (library error chained as __cause__)
    └── DeliveryError          a delivery channel failed to hand over a notification (emon.alerts.channels)

Library errors are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class EmonError(Exception):
    """Base class of every error emon raises on purpose."""


class ConfigError(EmonError):
    """A configuration variable is missing or malformed."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class InvalidInput(EmonError):
    """Input from outside emon failed validation."""


class InvalidPayload(InvalidInput):
    """A device message that cannot be used; ``reason`` is a stable, countable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class InvalidOrder(InvalidInput):
    """An order or case document failed validation; ``field`` is a dotted path into it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(EmonError):
    """A requested resource does not exist."""


class StorageError(EmonError):
    """A storage backend failed; the library error is chained."""
