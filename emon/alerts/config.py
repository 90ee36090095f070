"""Alerting configuration from ``EMON_ALERT_*`` variables (see docs/alerts.md); fails fast naming the variable."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from emon.alerts.types import Priority
from emon.config import EnvConfig
from emon.errors import ConfigError

_LARGEST = 1e9  # about 31 years in seconds; far beyond any deadline or distance emon uses


class AlertConfig(EnvConfig):
    """All durations in seconds, distances in metres. Field ``x`` is read from ``EMON_ALERT_X``."""

    model_config = SettingsConfigDict(env_prefix="EMON_ALERT_")

    routing_file: str | None = Field(  # EMON_ROUTING_FILE (also accepted as EMON_ALERT_ROUTING_FILE)
        None, validation_alias=AliasChoices("EMON_ROUTING_FILE", "EMON_ALERT_ROUTING_FILE")
    )
    ack_deadline_critical_s: float = 60.0
    ack_deadline_high_s: float = 300.0
    ack_deadline_normal_s: float = 1800.0
    ack_deadline_low_s: float = 0.0  # 0: never escalates
    victim_resend_s: float = 15.0
    victim_ack_deadline_s: float = 60.0
    renotify_closer_m: float = 50.0
    late_after_s: float = 120.0
    silence_factor: float = 3.0
    dispatch_backoff_base_s: float = 1.0
    dispatch_backoff_max_s: float = 60.0
    dispatch_timeout_s: float = 10.0
    failing_after_attempts: int = 5
    failing_after_s: float = 300.0
    poll_s: float = 1.0
    batch_size: int = 20
    sender: str = "emon@emon.local"
    locate_every_s: int = 30  # pursuit mode: ask for a fix every … s
    pursuit_s: float = 600.0  # pursuit mode lasts … s after a panic
    task_inform_victim_s: float = 300.0  # deadline of "inform the victim by phone"
    task_check_s: float = 900.0  # deadline of "obtain a fresh fix / check" (possible breach)
    task_escalate_s: float = 300.0  # an overdue task escalates again every … s

    def check(self) -> None:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, int | float) and not (0 <= value <= _LARGEST):
                # NaN, infinity or 1e300 would pass a plain ">= 0" and then break date arithmetic in every
                # tick (escalation cut-offs): refused here, naming the variable.
                raise ConfigError(self.variable(name), f"must be a number from 0 to {_LARGEST:g}")
        try:
            self.sender.encode("utf-8")
        except UnicodeEncodeError as exc:  # e.g. a Latin-1 byte read from the environment
            raise ConfigError("EMON_ALERT_SENDER", "must be valid UTF-8") from exc
        if any(ord(c) < 0x20 for c in self.sender):
            raise ConfigError("EMON_ALERT_SENDER", "must not contain control characters")
        if self.victim_resend_s <= 0:
            raise ConfigError("EMON_ALERT_VICTIM_RESEND_S", "must be > 0")
        if self.batch_size < 1:
            raise ConfigError("EMON_ALERT_BATCH_SIZE", "must be >= 1")
        if self.locate_every_s < 1:
            raise ConfigError("EMON_ALERT_LOCATE_EVERY_S", "must be >= 1")
        if self.task_escalate_s <= 0:
            raise ConfigError("EMON_ALERT_TASK_ESCALATE_S", "must be > 0")
        if self.silence_factor < 1:
            raise ConfigError("EMON_ALERT_SILENCE_FACTOR", "must be >= 1")

    def ack_deadline_s(self, priority: Priority) -> float:
        """Seconds an alert of this priority may stay unacknowledged before it escalates (0: never)."""
        return {
            Priority.CRITICAL: self.ack_deadline_critical_s,
            Priority.HIGH: self.ack_deadline_high_s,
            Priority.NORMAL: self.ack_deadline_normal_s,
            Priority.LOW: self.ack_deadline_low_s,
        }[priority]
