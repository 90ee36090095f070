"""One settings object, read once from ``EMON_*`` environment variables; fails fast naming the variable.

Read with pydantic-settings (:mod:`emon.config`) by the entry point, then passed in; the alerting and
enforceability settings (``EMON_ALERT_*``, ``EMON_FEAS_*``) are read in the same call and ride along
as :attr:`Settings.alerts` and :attr:`Settings.feasibility`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from emon.alerts.config import AlertConfig
from emon.config import EnvConfig, Secret, SecretText
from emon.errors import ConfigError
from emon.feasibility.settings import FeasibilitySettings
from emon.topic import prefixed

__all__ = ["Secret", "Settings"]


class Settings(EnvConfig):
    """Runtime configuration. Each field ``x`` is read from ``EMON_X``; see the README table."""

    model_config = SettingsConfigDict(env_prefix="EMON_")

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    db_schema: str = "emon"
    # Every statement of the service's pool is cut off after this many seconds (0: never); retention,
    # evidence compaction and migrations lift it for themselves.
    pg_statement_timeout_s: float = 30.0
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "emon"
    admin_token: SecretText | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    mqtt_client_id: str = "emon-ingest"
    mqtt_protocol: str = "5"
    mqtt_topic_prefix: str = ""
    max_payload_bytes: int = 262_144
    max_future_s: float = 300.0
    batch_max: int = 1000
    batch_wait_ms: float = 20.0
    ingest_inflight: int = 3  # batches stored concurrently while the one before them is evaluated
    evaluation_behind: int = 4  # evaluated batches whose alerting and persisting may still be under way
    freshness_s: float = 120.0
    stale_s: float = 600.0
    tick_s: float = 5.0
    # Exempt start-up objects from the garbage collector's full walks (emon.collector). Off only in the test
    # process, which hosts many runtimes one after another.
    gc_freeze: bool = True
    webhook_url: str | None = None
    webhook_secret: SecretText | None = None
    log_level: str = "INFO"
    signing_key_file: str | None = None  # the deployment's Ed25519 key (emon keygen); signs audit checkpoints
    audit_checkpoint_every: int = 100  # sign a checkpoint at least every this many audit records
    audit_checkpoint_s: float = 60.0  # ... and when the last one is older than this
    mqtt_ca_file: str | None = None
    mqtt_cert_file: str | None = None
    mqtt_key_file: str | None = None
    mqtt_username: str | None = None
    mqtt_password: SecretText | None = None
    map_tile_url: str | None = None
    map_tile_attribution: str = ""
    session_hours: float = 12.0
    stall_s: float = 30.0
    max_json_depth: int = 8
    max_json_elements: int = 50_000
    max_json_string: int = 1_024
    dead_letter_payload_bytes: int = 2_048
    dead_letter_rows_per_min: int = 1_000
    dead_letter_bytes_per_min: int = 4_000_000
    dead_letter_max_mb: float = 256.0
    dead_letter_retention_days: float = 30.0
    # Evidence packs, order versions and retention (docs/evidence.md).
    evidence_before_s: float = 600.0
    evidence_after_s: float = 600.0
    evidence_snapshot_s: float = 300.0
    evidence_dense_days: float = 2.0
    retention_days: float = 0.0
    retention_check_s: float = 3600.0
    # Orders lifecycle (docs/order-schema.md): reminder offsets (days before the end), each unit's lead
    # ("unit=user_id,unit=user_id"), how often the lifecycle runs, how far back violations are picked up.
    order_reminder_days: str = "21,14,7,3,1"
    order_unit_leads: str = ""
    order_tick_s: float = 60.0
    order_violation_lookback_days: float = 7.0
    # Police systems' endpoint for order messages (CAP) and the prosecutor's for violation reports;
    # separate from EMON_WEBHOOK_URL (emergencies). Signed with EMON_WEBHOOK_SECRET.
    order_police_url: str | None = None
    order_prosecutor_url: str | None = None
    # Several instances (docs/architecture.md, "Several instances"): set a distinct id per instance.
    instance_id: str = ""
    lease_s: float = 6.0
    lease_renew_s: float = 2.0
    partitions: int = 16  # cases are spread over the live instances in this many partitions
    alerts: AlertConfig = Field(default_factory=AlertConfig)  # EMON_ALERT_* (docs/alerts.md)
    feasibility: FeasibilitySettings = Field(default_factory=FeasibilitySettings)  # EMON_FEAS_*

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> Self:
        """Read ``EMON_*``, ``EMON_ALERT_*`` and ``EMON_FEAS_*`` variables (default: ``os.environ``);
        raise :class:`ConfigError` naming the first bad one."""
        env = os.environ if environ is None else environ
        given.setdefault("alerts", AlertConfig.from_env(env))
        given.setdefault("feasibility", FeasibilitySettings.from_env(env))
        return super().from_env(env, **given)

    def check(self) -> None:
        _check_url("EMON_MQTT_URL", self.mqtt_url, ("mqtt", "tcp", "mqtts", "ssl"))
        _check_url("EMON_DATABASE_URL", self.database_url, ("postgresql", "postgres"))
        _check_url("EMON_REDIS_URL", self.redis_url, ("redis", "rediss", "unix"))
        if self.webhook_url is not None:
            _check_url("EMON_WEBHOOK_URL", self.webhook_url, ("http", "https"))
        if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", self.db_schema):
            raise ConfigError("EMON_DB_SCHEMA", "must be a lower-case SQL identifier")
        if self.pg_statement_timeout_s < 0:
            raise ConfigError("EMON_PG_STATEMENT_TIMEOUT_S", "must be >= 0 (0: no limit)")
        if not 0 < self.http_port < 65536:
            raise ConfigError("EMON_HTTP_PORT", "must be 1..65535")
        if self.admin_token is not None and len(self.admin_token) < 16:
            raise ConfigError("EMON_ADMIN_TOKEN", "must be at least 16 characters")
        if self.mqtt_topic_prefix and not re.match(r"^[A-Za-z0-9_\-/]*[^/]$", self.mqtt_topic_prefix):
            raise ConfigError("EMON_MQTT_TOPIC_PREFIX", "letters, digits, _ - / and no trailing /")
        if self.instance_id and not re.match(r"^[A-Za-z0-9_.\-]{1,64}$", self.instance_id):
            raise ConfigError("EMON_INSTANCE_ID", "1..64 letters, digits, _ . -")
        if not 0 < self.lease_renew_s * 2 < self.lease_s:
            raise ConfigError("EMON_LEASE_RENEW_S", "must be positive and under half of EMON_LEASE_S")
        if not 1 <= self.partitions <= 1024:
            raise ConfigError("EMON_PARTITIONS", "must be 1..1024")
        if self.mqtt_protocol not in ("5", "3.1.1"):
            raise ConfigError("EMON_MQTT_PROTOCOL", "must be 5 or 3.1.1")
        if self.batch_max < 1:
            raise ConfigError("EMON_BATCH_MAX", "must be >= 1")
        if not 1 <= self.ingest_inflight <= 64:
            raise ConfigError("EMON_INGEST_INFLIGHT", "must be between 1 and 64")
        if not 0 <= self.evaluation_behind <= 64:
            raise ConfigError("EMON_EVALUATION_BEHIND", "must be between 0 and 64")
        if self.audit_checkpoint_every < 1:
            raise ConfigError("EMON_AUDIT_CHECKPOINT_EVERY", "must be >= 1")
        if self.signing_key_file is not None:
            from emon.signing import load_private_key

            load_private_key(self.signing_key_file)  # fails fast, naming EMON_SIGNING_KEY_FILE
        if self.map_tile_url is not None:
            _check_url("EMON_MAP_TILE_URL", self.map_tile_url, ("https", "http"))
            if not all(part in self.map_tile_url for part in ("{z}", "{x}", "{y}")):
                raise ConfigError("EMON_MAP_TILE_URL", "must contain {z}, {x} and {y}")
        if not 0 < self.session_hours <= 24 * 7:
            raise ConfigError("EMON_SESSION_HOURS", "must be > 0 and at most 168")
        for name in (
            "stall_s",
            "max_json_depth",
            "max_json_elements",
            "max_json_string",
            "dead_letter_rows_per_min",
            "dead_letter_bytes_per_min",
            "dead_letter_max_mb",
            "dead_letter_retention_days",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"EMON_{name.upper()}", "must be > 0")
        if self.dead_letter_payload_bytes < 0:
            raise ConfigError("EMON_DEAD_LETTER_PAYLOAD_BYTES", "must be >= 0")
        for var, value in (
            ("EMON_EVIDENCE_BEFORE_S", self.evidence_before_s),
            ("EMON_EVIDENCE_AFTER_S", self.evidence_after_s),
            ("EMON_RETENTION_DAYS", self.retention_days),
            ("EMON_EVIDENCE_DENSE_DAYS", self.evidence_dense_days),
        ):
            if value < 0:
                raise ConfigError(var, "must be >= 0")
        if self.evidence_snapshot_s <= 0 or self.retention_check_s <= 0:
            raise ConfigError(
                "EMON_EVIDENCE_SNAPSHOT_S" if self.evidence_snapshot_s <= 0 else "EMON_RETENTION_CHECK_S",
                "must be > 0",
            )
        from emon.orders.config import leads, reminder_days

        reminder_days(self.order_reminder_days)
        for var, url in (
            ("EMON_ORDER_POLICE_URL", self.order_police_url),
            ("EMON_ORDER_PROSECUTOR_URL", self.order_prosecutor_url),
        ):
            if url is not None:
                _check_url(var, url, ("http", "https"))
        leads(self.order_unit_leads)
        if self.order_tick_s <= 0 or self.order_violation_lookback_days <= 0:
            raise ConfigError(
                "EMON_ORDER_TICK_S" if self.order_tick_s <= 0 else "EMON_ORDER_VIOLATION_LOOKBACK_DAYS",
                "must be > 0",
            )
        self._validate_mqtt_security()

    def _validate_mqtt_security(self) -> None:
        """TLS files exist and pair up, TLS is on when they are given, a password has a username."""
        tls = urlsplit(self.mqtt_url).scheme in ("mqtts", "ssl")
        for var, path in (
            ("EMON_MQTT_CA_FILE", self.mqtt_ca_file),
            ("EMON_MQTT_CERT_FILE", self.mqtt_cert_file),
            ("EMON_MQTT_KEY_FILE", self.mqtt_key_file),
        ):
            if path is None:
                continue
            if not tls:
                raise ConfigError(var, "is set, so EMON_MQTT_URL must be mqtts:// (TLS)")
            if not os.access(path, os.R_OK):
                raise ConfigError(var, f"cannot read {path!r}")
        if (self.mqtt_cert_file is None) != (self.mqtt_key_file is None):
            raise ConfigError("EMON_MQTT_KEY_FILE", "a client certificate and its key go together")
        url_user = urlsplit(self.mqtt_url).username
        if self.mqtt_password is not None and not (self.mqtt_username or url_user):
            raise ConfigError(
                "EMON_MQTT_PASSWORD", "needs a username (EMON_MQTT_USERNAME or in EMON_MQTT_URL)"
            )

    @property
    def mqtt_host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.mqtt_url)
        return parts.hostname or "127.0.0.1", parts.port or (
            8883 if parts.scheme in ("mqtts", "ssl") else 1883
        )

    def __repr_args__(self) -> Any:
        """Like the model's repr, but a password inside a URL (``//user:pass@``) is masked too."""
        for name, value in super().__repr_args__():
            yield name, _mask_url(value)

    def topic(self, suffix: str) -> str:
        """An MQTT topic under the optional prefix (tests run on their own prefix)."""
        return prefixed(self.mqtt_topic_prefix, suffix)


def _mask_url(value: object) -> object:
    if isinstance(value, str) and not isinstance(value, Secret) and "://" in value:
        return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1**********@", value)
    return value


def _check_url(var: str, url: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ConfigError(var, f"scheme must be one of {', '.join(schemes)} (got {url.split(':')[0]!r})")
    if parts.scheme != "unix" and not parts.hostname and "host=" not in parts.query:
        raise ConfigError(var, "needs a host")
