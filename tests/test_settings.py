from __future__ import annotations

import pytest

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
