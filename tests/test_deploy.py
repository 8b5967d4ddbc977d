"""docker-compose.yml and the Dockerfile, checked as far as possible without a Docker engine."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import SECRET_FIELDS, Settings, load_settings, parse_mqtt_url

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
def test_gateway_environment_is_valid_settings(
    name: str, svc: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {k: re.sub(r"\$\{[^}]*\}", "secret", str(v)) for k, v in svc["environment"].items()}
    fields = {f"OSH_{f.upper()}" for f in Settings.model_fields}
    secret_vars = {f"OSH_{f.upper()}_FILE" for f in SECRET_FIELDS}
    unknown = set(env) - fields - secret_vars
    assert not unknown, f"{name}: unknown variables {unknown}"
    for k, v in env.items():
        if k in secret_vars:  # a Docker secret: mounted from the compose file's `secrets:`
            secret = v.removeprefix("/run/secrets/")
            assert secret in svc.get("secrets", []) and secret in compose()["secrets"], f"{name}: {k} not mounted"
            v = str(tmp_path / secret)
            Path(v).write_text("t0ken-from-file\n")
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.store == "influx" and s.mqtt_client_id == env["OSH_MQTT_CLIENT_ID"]
    assert s.influx_api == "v2" and s.influx_org and s.influx_bucket, "InfluxDB 2.7 is the default"
    assert s.influx_token is not None and s.influx_token.get_secret_value() == "t0ken-from-file"
    assert s.http_listen.startswith("0.0.0.0:"), "healthcheck and Prometheus reach /healthz, /metrics"
    port = s.http_listen.rsplit(":", 1)[1]
    assert f"127.0.0.1:{port}/healthz" in " ".join(svc["healthcheck"]["test"])
    assert s.state_dir is not None and any(str(s.state_dir).startswith(v.split(":")[1]) for v in svc["volumes"])


def test_every_service_has_a_healthcheck_and_a_pinned_image() -> None:
    for name, svc in compose()["services"].items():
        assert "healthcheck" in svc, f"{name} has no healthcheck"
        image = svc["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image else "latest"
        assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?", tag), f"{name}: image {image} is not pinned to a version"


def test_every_mounted_file_exists_or_is_created_by_the_documented_steps() -> None:
    header = (ROOT / "docker-compose.yml").read_text().split("services:")[0]
    mounted = [v.split(":")[0] for svc in compose()["services"].values() for v in svc.get("volumes", [])]
    mounted += [s["file"] for s in compose()["secrets"].values()]
    for src in (m for m in mounted if m.startswith("./")):
        path = ROOT / src
        if src.startswith("./deploy/secrets/") or src == "./deploy/passwd":
            created = src.removeprefix("./") if src != "./deploy/passwd" else "/mosquitto/config/passwd"
            assert created in header, f"{src} is neither shipped nor created by the steps at the top"
            ignored = subprocess.run(["git", "check-ignore", "-q", src], cwd=ROOT, check=False).returncode == 0
            assert ignored, f"{src} holds a secret: it must be in .gitignore"
        else:
            assert path.exists(), f"{src} is mounted but not shipped"


def test_prometheus_scrapes_every_gateway() -> None:
    conf = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {t for job in conf["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for name, svc in gateway_services():
        port = str(svc["environment"].get("OSH_HTTP_LISTEN") or compose()["services"]["gateway-a"]["environment"]
                   ["OSH_HTTP_LISTEN"]).rsplit(":", 1)[1]  # fmt: skip
        assert f"{name}:{port}" in targets, f"Prometheus does not scrape {name}"


def test_broker_mounts_the_acl_it_names() -> None:
    conf = (ROOT / "deploy" / "mosquitto.conf").read_text()
    acl = re.search(r"^acl_file (\S+)", conf, re.M)
    assert acl, "the broker runs without an ACL"
    mounts = compose()["services"]["mosquitto"]["volumes"]
    assert f"./deploy/aclfile:{acl.group(1)}:ro" in mounts
    assert re.search(r"^allow_anonymous false", conf, re.M)


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


def test_board_service_matches_its_account_port_and_healthcheck(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    svc = compose()["services"]["board"]
    assert svc["command"] == ["board"]
    env = {k: re.sub(r"\$\{[^}]*\}", "secret", str(v)) for k, v in svc["environment"].items()}
    token = tmp_path / "influx_token"
    token.write_text("t0ken\n")
    env["OSH_INFLUX_TOKEN_FILE"] = str(token)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert parse_mqtt_url(s.mqtt_url).username == "oshmon-board", "the board uses its own ACL account"
    assert "user oshmon-board" in (ROOT / "deploy" / "aclfile").read_text()
    port = s.board_listen.rsplit(":", 1)[1]
    assert s.board_listen.startswith("0.0.0.0:") and f"{port}:{port}" in svc["ports"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(svc["healthcheck"]["test"])
