"""EMON_MQTT_* → where the broker is and how emon proves who it is (fails fast, masks secrets)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from emon.errors import ConfigError
from emon.mqtt.endpoint import Endpoint
from emon.settings import Settings


def test_plain_and_tls_urls_with_credentials() -> None:
    plain = Endpoint.from_url("mqtt://broker.example")
    assert (plain.host, plain.port, plain.tls, plain.username, plain.password) == (
        "broker.example",
        1883,
        None,
        None,
        None,
    )
    tls = Endpoint.from_url("mqtts://emon:p%40ss%3Aword@broker.example")
    assert (tls.host, tls.port, tls.username, tls.password) == ("broker.example", 8883, "emon", "p@ss:word")
    assert isinstance(tls.tls, ssl.SSLContext)
    assert tls.tls.check_hostname and tls.tls.verify_mode is ssl.CERT_REQUIRED  # never skipped
    assert tls.tls.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert "p@ss" not in repr(tls) and "p@ss" not in str(tls)
    # Separate settings take precedence over the URL's user info.
    other = Endpoint.from_url("mqtts://emon:old@b:9999", username="emon2", password="new")
    assert (other.port, other.username, other.password) == (9999, "emon2", "new")


@pytest.mark.parametrize(
    ("kwargs", "variable"),
    [
        ({"url": "http://b"}, "EMON_MQTT_URL"),
        ({"url": "mqtts://"}, "EMON_MQTT_URL"),
        ({"url": "mqtt://b", "ca_file": "/etc/hostname"}, "EMON_MQTT_URL"),
        ({"url": "mqtts://b", "cert_file": "/etc/hostname"}, "EMON_MQTT_CERT_FILE"),
        ({"url": "mqtts://b", "ca_file": "/nonexistent/ca.crt"}, "EMON_MQTT_CA_FILE"),
        ({"url": "mqtts://b", "ca_file": "/etc/hostname"}, "EMON_MQTT_CA_FILE"),  # not a certificate
        ({"url": "mqtt://b", "password": "x"}, "EMON_MQTT_PASSWORD"),
    ],
)
def test_endpoint_errors_name_the_variable(kwargs: dict[str, str], variable: str) -> None:
    url = kwargs.pop("url")
    with pytest.raises(ConfigError) as err:
        Endpoint.from_url(url, **kwargs)
    assert err.value.variable == variable


def test_settings_read_tls_and_credentials_and_mask_the_password(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("not read by Settings, only checked for being readable\n")
    s = Settings.from_env(
        {
            "EMON_MQTT_URL": "mqtts://emon:url-secret@broker.example",
            "EMON_MQTT_CA_FILE": str(ca),
            "EMON_MQTT_USERNAME": "emon",
            "EMON_MQTT_PASSWORD": "env-secret",
        }
    )
    assert s.mqtt_host_port == ("broker.example", 8883)
    assert (s.mqtt_ca_file, s.mqtt_username, s.mqtt_password) == (str(ca), "emon", "env-secret")
    assert "url-secret" not in repr(s) and "env-secret" not in repr(s)
    assert "mqtts://emon:**********@broker.example" in repr(s)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"EMON_MQTT_URL": "mqtt://b", "EMON_MQTT_CA_FILE": "/etc/hostname"}, "EMON_MQTT_CA_FILE"),
        ({"EMON_MQTT_URL": "mqtts://b", "EMON_MQTT_CA_FILE": "/nonexistent"}, "EMON_MQTT_CA_FILE"),
        ({"EMON_MQTT_URL": "mqtts://b", "EMON_MQTT_CERT_FILE": "/etc/hostname"}, "EMON_MQTT_KEY_FILE"),
        ({"EMON_MQTT_URL": "mqtts://b", "EMON_MQTT_PASSWORD": "x"}, "EMON_MQTT_PASSWORD"),
        ({"EMON_MQTT_URL": "mqtts+ws://b"}, "EMON_MQTT_URL"),
    ],
)
def test_bad_mqtt_security_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert err.value.variable == variable


def test_serve_names_a_ca_file_that_is_not_a_certificate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from emon.cli import main

    bogus = tmp_path / "ca.crt"
    bogus.write_text("not a certificate\n")
    monkeypatch.setenv("EMON_MQTT_URL", "mqtts://emon@127.0.0.1:1")
    monkeypatch.setenv("EMON_MQTT_CA_FILE", str(bogus))
    assert main(["serve"]) == 2
    assert "EMON_MQTT_CA_FILE" in capsys.readouterr().err
