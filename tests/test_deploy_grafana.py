"""Grafana provisioning (deploy/grafana) checked without Grafana: every InfluxQL query of every
panel and variable runs against a real influxd holding backfilled data and returns rows; every
data source and variable a panel names exists; Prometheus panels name metrics the gateway exports.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.observability import GatewayMetrics
from tests.services import Influxd

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DB = "grafana_check"
BUILTIN = {"timeFilter", "__interval", "__interval_ms", "__timeFilter"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def datasources() -> dict[str, str]:
    conf = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "oshmon.yaml").read_text())
    return {d["uid"]: d["type"] for d in conf["datasources"]}


def panel_targets(dash: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for p in dash["panels"]:
        for t in p.get("targets", []):
            yield p["title"], t


def test_dashboards_are_provisioned_and_mounted() -> None:
    assert len(DASHBOARDS) >= 4
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "oshmon.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    mounts = " ".join(compose["volumes"])
    assert f"./deploy/grafana/dashboards:{path}" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning" in mounts
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_datasource_and_variable_a_panel_names_exists(path: Path) -> None:
    dash = load(path)
    sources = datasources()
    variables = {v["name"] for v in dash["templating"]["list"]}
    for v in dash["templating"]["list"]:
        assert v["datasource"]["uid"] in sources, f"variable {v['name']}: unknown data source"
    for title, t in panel_targets(dash):
        uid = t["datasource"]["uid"]
        assert uid in sources, f"{title}: unknown data source {uid}"
        text = t.get("query") or t.get("expr") or ""
        named = set(re.findall(r"\$(\w+)", text)) - BUILTIN
        assert named <= variables, f"{title}: names undefined variables {named - variables}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_prometheus_panels_name_metrics_the_gateway_exports(path: Path) -> None:
    exported = {m.name for m in GatewayMetrics().registry.collect()} | {"up"}
    for title, t in panel_targets(load(path)):
        if "expr" not in t:
            continue
        names = {n.removesuffix("_total") for n in re.findall(r"\b(oshmon_\w+|up)\b", t["expr"])}
        assert names and names <= exported, f"{title}: {names - exported} not exported by the gateway"


@pytest.fixture(scope="module")
def backfilled(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> Influxd:
    """Two days of the simulated month plus the scripted demo incidents (malfunctions included)."""
    state = tmp_path_factory.mktemp("grafana-state")
    env = {**os.environ, "OSH_STORE": "influx", "OSH_INFLUX_URL": influxd.url, "OSH_INFLUX_DB": DB,
           "OSH_STATE_DIR": str(state)}  # fmt: skip
    for args in (["--days", "2", "--scenario", "month"], ["--days", "0.5", "--scenario", "demo", "--seed", "2"]):
        r = subprocess.run([sys.executable, "-m", "gateway", "backfill", *args], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
    return influxd


def influxql(server: Influxd, q: str) -> list[dict[str, Any]]:
    r = httpx.post(server.url + "/query", params={"db": DB, "q": q}, timeout=60)
    assert r.status_code == 200, r.text
    result = r.json()["results"][0]
    assert "error" not in result, f"{q}\n→ {result['error']}"
    return list(result.get("series", []))


def substitute(q: str, values: dict[str, str]) -> str:
    q = q.replace("$timeFilter", "time > now() - 30d").replace("$__interval", "1h")
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
        q = q.replace(f"${name}", value)
    return q


def resolve(server: Influxd, dash: dict[str, Any], site: str) -> dict[str, str]:
    """Resolve the variables in order, as Grafana does: each may depend on the ones before."""
    values: dict[str, str] = {}
    for v in dash["templating"]["list"]:
        series = influxql(server, substitute(v["query"], values))
        options = [row[1] for s in series for row in s["values"]]
        assert options, f"variable {v['name']} has no values: {v['query']}"
        preferred = {"hazard": "co", "site": site}.get(v["name"])
        values[v["name"]] = preferred if preferred in options else (".*" if v.get("includeAll") else options[0])
    return values


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_query_returns_rows(backfilled: Influxd, path: Path) -> None:
    """Each panel returns rows for at least one of the demo sites (not every incident happens
    at every site in two simulated days)."""
    dash = load(path)
    empty: dict[str, list[str]] = {}
    for site in ("kop-1", "kop-2"):
        values = resolve(backfilled, dash, site)
        for title, t in panel_targets(dash):
            if "query" not in t:
                continue
            series = influxql(backfilled, substitute(t["query"], values))
            if not any(s.get("values") for s in series):
                empty.setdefault(f"{title} [{t['refId']}]", []).append(site)
    never = [panel for panel, sites in empty.items() if len(sites) == 2]
    assert not never, f"{path.name}: panels without rows at any demo site: {never}"
