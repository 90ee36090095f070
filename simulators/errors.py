"""Errors of the simulators (subclasses of :class:`emon.errors.EmonError`).

SimulatorError
├── BrokerError     the MQTT broker could not be reached or refused a publish
└── ApiError        the emon HTTP API answered with an unexpected status
"""

from __future__ import annotations

from emon.errors import EmonError


class SimulatorError(EmonError):
    """Base class of simulator errors."""


class BrokerError(SimulatorError):
    """The MQTT broker failed (aiomqtt/paho error chained as ``__cause__``)."""


class ApiError(SimulatorError):
    """The emon API refused a request; ``status`` is the HTTP status (0 if unreachable)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail
