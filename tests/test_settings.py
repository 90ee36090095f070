from __future__ import annotations

import pytest

from emon.cli import main
from emon.errors import ConfigError
from emon.settings import Settings


def test_defaults_are_local_servers() -> None:
    s = Settings.from_env({})
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8000)
    assert s.mqtt_host_port == ("127.0.0.1", 1883)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"EMON_HTTP_PORT": "eighty"}, "EMON_HTTP_PORT"),
        ({"EMON_HTTP_PORT": "70000"}, "EMON_HTTP_PORT"),
        ({"EMON_MQTT_URL": "http://broker"}, "EMON_MQTT_URL"),
        ({"EMON_DATABASE_URL": "mysql://x"}, "EMON_DATABASE_URL"),
        ({"EMON_REDIS_URL": "redis://"}, "EMON_REDIS_URL"),
        ({"EMON_ADMIN_TOKEN": "short"}, "EMON_ADMIN_TOKEN"),
        ({"EMON_DB_SCHEMA": "Robert'); DROP TABLE"}, "EMON_DB_SCHEMA"),
        ({"EMON_EVALUATION_BEHIND": "-1"}, "EMON_EVALUATION_BEHIND"),
        ({"EMON_EVALUATION_BEHIND": "65"}, "EMON_EVALUATION_BEHIND"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert err.value.variable == variable
    assert str(err.value).startswith(variable)


def test_secrets_do_not_show_in_repr() -> None:
    s = Settings.from_env({"EMON_ADMIN_TOKEN": "super-secret-token-value"})
    assert "super-secret" not in repr(s)
    assert s.admin_token == "super-secret-token-value"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"EMON_ALERT_POLL_S": "soon"}, "EMON_ALERT_POLL_S"),
        ({"EMON_ALERT_BATCH_SIZE": "0"}, "EMON_ALERT_BATCH_SIZE"),
        ({"EMON_ALERT_VICTIM_RESEND_S": "-1"}, "EMON_ALERT_VICTIM_RESEND_S"),
        ({"EMON_FEAS_GUIDELINE_M": "far"}, "EMON_FEAS_GUIDELINE_M"),
        ({"EMON_BATCH_MAX": "1.5"}, "EMON_BATCH_MAX"),
    ],
)
def test_alerting_and_feasibility_variables_fail_the_same_way(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert err.value.variable == variable
    assert str(err.value).startswith(variable)


def test_one_read_carries_alerting_and_feasibility_settings() -> None:
    s = Settings.from_env(
        {
            "EMON_ALERT_POLL_S": " 2.5 ",
            "EMON_FEAS_GUIDELINE_M": "1200",
            "EMON_ROUTING_FILE": "/r.json",
            "EMON_HTTP_PORT": "",
        }
    )
    assert (s.alerts.poll_s, s.feasibility.guideline_m, s.alerts.routing_file, s.http_port) == (
        2.5,
        1200,
        "/r.json",
        8000,
    )
    assert Settings.from_env({"EMON_ALERT_ROUTING_FILE": "/a.json"}).alerts.routing_file == "/a.json"


def test_constructing_settings_reads_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMON_HTTP_PORT", "9999")
    monkeypatch.setenv("EMON_ALERT_POLL_S", "7")
    s = Settings()
    assert (s.http_port, s.alerts.poll_s) == (8000, 1.0)
    assert Settings.from_env().alerts.poll_s == 7.0


def test_a_password_in_a_url_is_masked_in_repr_and_str() -> None:
    s = Settings.from_env(
        {"EMON_MQTT_URL": "mqtt://emon:hunter2@broker:1883", "EMON_MQTT_PASSWORD": "pw-in-var"}
    )
    for shown in (repr(s), str(s)):
        assert "hunter2" not in shown and "pw-in-var" not in shown


@pytest.mark.parametrize("variable", ["EMON_ALERT_POLL_S", "EMON_HTTP_PORT", "EMON_FEAS_MIN_ZONE_WIDTH_M"])
def test_the_cli_exits_2_naming_a_bad_variable_without_a_traceback(
    variable: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(variable, "not-a-number")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err == f"emon: configuration error: {variable}: expected a number, got 'not-a-number'\n"


def test_the_nested_settings_are_not_variables_themselves() -> None:
    s = Settings.from_env({"EMON_ALERTS": "x", "EMON_FEASIBILITY": "{", "EMON_ALERT_POLL_S": "3"})
    assert s.alerts.poll_s == 3.0 and s.feasibility.guideline_m == 1000.0
