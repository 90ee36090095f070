"""deploy/compose.yaml: two or more instances that can run side by side on the broker as configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from emon.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def emon_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if s.get("command", [None])[0] == "emon"}


def test_there_are_at_least_two_instances_each_with_its_own_instance_and_mqtt_client_id() -> None:
    services = emon_services()
    assert len(services) >= 2
    ids = [s["environment"]["EMON_INSTANCE_ID"] for s in services.values()]
    clients = [s["environment"]["EMON_MQTT_CLIENT_ID"] for s in services.values()]
    assert len(set(ids)) == len(ids) and len(set(clients)) == len(clients)


def test_every_emon_variable_named_is_a_setting_and_the_settings_are_valid(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("stand-in")
    fields = {f"EMON_{name.upper()}" for name in Settings.model_fields}
    for name, service in emon_services().items():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert set(env) <= fields, f"{name}: unknown {set(env) - fields}"
        mounted = [v.split(":")[1] for v in service.get("volumes", [])]
        assert env["EMON_MQTT_CA_FILE"] in mounted
        # The secrets come from secrets/emon.env at run time, the CA from the mount; stand-ins here.
        Settings.from_env(
            {
                **env,
                "EMON_MQTT_CA_FILE": str(ca),
                "EMON_ADMIN_TOKEN": "x" * 32,
                "EMON_MQTT_PASSWORD": "secret",
            }
        )


def test_the_broker_runs_the_repository_configuration() -> None:
    broker = compose()["services"]["mosquitto"]
    mounts = dict(v.split(":")[:2] for v in broker["volumes"] if v.startswith("./"))
    assert mounts["./mosquitto/mosquitto.conf"] == broker["command"][-1]
    for host in ("./mosquitto/mosquitto.conf", "./mosquitto/acl"):
        assert (DEPLOY / host).is_file()
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    assert "persistence true" in conf  # instances' persistent sessions outlive a broker restart
    assert mounts["./mosquitto/acl"] in conf


def test_the_image_is_built_from_the_repository() -> None:
    for service in emon_services().values():
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
