"""Where a broker is and how to prove who we are to it: host, port, TLS and credentials.

``mqtt://`` (or ``tcp://``) is plain TCP on 1883; ``mqtts://`` (or ``ssl://``) is TLS on 8883, the
broker's certificate checked against ``ca_file`` (or the system's trust store) and its host name
always verified — there is deliberately no way to skip verification. A client certificate and key
may be added. Username and password come from the URL (``mqtts://user:pass@host``, percent-encoded)
or, taking precedence, from their own settings.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from emon.errors import ConfigError

if TYPE_CHECKING:
    from emon.settings import Settings

PLAIN_SCHEMES = ("mqtt", "tcp")
TLS_SCHEMES = ("mqtts", "ssl")


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: ssl.SSLContext | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> Endpoint:
        """Parse an ``mqtt://`` / ``mqtts://`` URL; raise :class:`ConfigError` (naming
        ``EMON_MQTT_*``) for anything that would not work, including unreadable certificate files."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in PLAIN_SCHEMES + TLS_SCHEMES:
            raise ConfigError("EMON_MQTT_URL", f"scheme must be mqtt, mqtts, tcp or ssl (got {scheme!r})")
        if not parts.hostname:
            raise ConfigError("EMON_MQTT_URL", "needs a host")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError("EMON_MQTT_URL", f"bad port: {exc}") from exc
        secure = scheme in TLS_SCHEMES
        if not secure and (ca_file or cert_file or key_file):
            raise ConfigError("EMON_MQTT_URL", "certificate files are set, so the URL must be mqtts://")
        if bool(cert_file) != bool(key_file):
            raise ConfigError(
                "EMON_MQTT_CERT_FILE", "a client certificate needs EMON_MQTT_KEY_FILE, and back"
            )
        user = username if username else (unquote(parts.username) if parts.username else None)
        secret = password if password else (unquote(parts.password) if parts.password else None)
        if secret is not None and user is None:
            raise ConfigError("EMON_MQTT_PASSWORD", "a password needs a username (EMON_MQTT_USERNAME)")
        return cls(
            host=parts.hostname,
            port=port or (8883 if secure else 1883),
            tls=tls_context(ca_file, cert_file, key_file) if secure else None,
            username=user,
            password=secret,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Endpoint:
        """The broker every emon MQTT connection uses (ingest and notifications)."""
        password = None if settings.mqtt_password is None else str(settings.mqtt_password)
        return cls.from_url(
            settings.mqtt_url,
            ca_file=settings.mqtt_ca_file,
            cert_file=settings.mqtt_cert_file,
            key_file=settings.mqtt_key_file,
            username=settings.mqtt_username,
            password=password,
        )

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls is not None else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def tls_context(ca_file: str | None, cert_file: str | None, key_file: str | None) -> ssl.SSLContext:
    """A client TLS context: TLS ≥ 1.2, the server's certificate and host name verified."""
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("EMON_MQTT_CA_FILE", f"cannot load {ca_file!r}: {exc}") from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file and key_file:
        try:
            ctx.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                "EMON_MQTT_CERT_FILE", f"cannot load {cert_file!r} / {key_file!r}: {exc}"
            ) from exc
    return ctx
