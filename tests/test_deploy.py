"""docker-compose.yml and the Dockerfile, checked as far as possible without a Docker engine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def gateway_services() -> list[tuple[str, dict[str, Any]]]:
    return [(n, s) for n, s in compose()["services"].items() if s.get("command") == ["run"]]


def test_compose_has_broker_database_and_gateways() -> None:
    services = compose()["services"]
    assert {"mosquitto", "influxdb"} <= set(services)
    assert len(gateway_services()) >= 2, "the file shows how to scale: at least two gateways"
    for name, svc in services.items():
        for dep in svc.get("depends_on", []):
            assert dep in services, f"{name} depends on unknown service {dep}"
    for vol in compose()["volumes"]:
        assert any(vol in str(s.get("volumes", [])) for s in services.values()), f"volume {vol} unused"


@pytest.mark.parametrize(("name", "svc"), gateway_services(), ids=lambda x: x if isinstance(x, str) else "")
def test_gateway_environment_is_valid_settings(name: str, svc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: re.sub(r"\$\{[^}]*\}", "secret", str(v)) for k, v in svc["environment"].items()}
    fields = {f"OSH_{f.upper()}" for f in Settings.model_fields}
    unknown = set(env) - fields
    assert not unknown, f"{name}: unknown variables {unknown}"
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = Settings()
    assert s.store == "influx" and s.mqtt_client_id == env["OSH_MQTT_CLIENT_ID"]


def test_gateways_split_sites_and_client_ids() -> None:
    ids, sites = [], []
    for _, svc in gateway_services():
        ids.append(svc["environment"]["OSH_MQTT_CLIENT_ID"])
        sites += svc["environment"]["OSH_SERVE_SITES"].split(",")
    assert len(set(ids)) == len(ids), "each gateway needs its own client id (persistent session)"
    assert len(set(sites)) == len(sites), "a site must be served by exactly one gateway"


def test_dockerfile_copies_every_package() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for pkg in packages:
        assert f"COPY {pkg} ./{pkg}" in docker, f"Dockerfile does not copy {pkg}/"
    assert 'CMD ["run"]' in docker


def test_broker_config_does_not_drop_queued_messages() -> None:
    conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
    queued = int(re.search(r"^max_queued_messages (\d+)", conf, re.M).group(1))  # type: ignore[union-attr]
    assert queued == 0 or queued > 100_000, "mosquitto's default of 1000 drops QoS 1 readings"
    assert re.search(r"^persistence true", conf, re.M)
