"""The several-instances settings fail fast, naming the variable."""

from __future__ import annotations

import pytest

from emon.errors import ConfigError
from emon.settings import Settings


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"EMON_INSTANCE_ID": "a b"}, "EMON_INSTANCE_ID"),
        ({"EMON_INSTANCE_ID": "x" * 65}, "EMON_INSTANCE_ID"),
        (
            {"EMON_LEASE_S": "6", "EMON_LEASE_RENEW_S": "3"},
            "EMON_LEASE_RENEW_S",
        ),  # renew under half the lease
        ({"EMON_LEASE_RENEW_S": "0"}, "EMON_LEASE_RENEW_S"),
        ({"EMON_PARTITIONS": "0"}, "EMON_PARTITIONS"),
        ({"EMON_PARTITIONS": "1025"}, "EMON_PARTITIONS"),
    ],
)
def test_bad_cluster_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)


def test_good_cluster_settings() -> None:
    s = Settings.from_env({"EMON_INSTANCE_ID": "emon-a.1", "EMON_LEASE_S": "6", "EMON_LEASE_RENEW_S": "2"})
    assert (s.instance_id, s.lease_s, s.lease_renew_s) == ("emon-a.1", 6.0, 2.0)
