"""Gateway state belongs to its store (issue 9, point 2): real mosquitto, real influxd and SQLite,
`oshmon run` as a subprocess, restarted between phases.

(a) A CO STEL alert open in store A must not stop the same exposure from raising an alert in a
    fresh store B started with the same state directory.
(b) Without its state directory, a gateway takes its open alerts over from the store's alert log:
    no second `raised`, escalation still happens, and the alert clears when the exposure ends.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage.base import HistoryQuery, RecordKind
from storage.factory import open_store
from tests.mqtt_helpers import Collector, GatewayProcess, Publisher
from tests.services import Influxd, Mosquitto

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SITE = "kop-st"
TOPIC = f"osh/{SITE}/drift/co-1/data"
STEP_S = 10.0

Env = Callable[[str], dict[str, str]]  # store name -> the store part of the gateway's environment


@pytest.fixture(params=["sqlite", "influx"])
def store_env(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    if request.param == "sqlite":
        return lambda name: {"OSH_STORE": "sqlite", "OSH_SQLITE_PATH": str(tmp_path / f"{name}.sqlite")}
    influxd: Influxd = request.getfixturevalue("influxd")
    tag = f"st{time.time_ns()}"
    return lambda name: {
        "OSH_STORE": "influx",
        "OSH_INFLUX_URL": influxd.url,
        "OSH_INFLUX_API": "v1",
        "OSH_INFLUX_DB": f"{tag}_{name}",
    }


def stored_alerts(env: dict[str, str]) -> list[dict[str, Any]]:
    if env["OSH_STORE"] == "sqlite":
        store = open_store(kind="sqlite", sqlite_path=env["OSH_SQLITE_PATH"])
    else:
        store = open_store(kind="influx", influx_url=env["OSH_INFLUX_URL"], influx_db=env["OSH_INFLUX_DB"])
    try:
        rows = list(store.query(HistoryQuery(RecordKind.ALERTS, site=SITE)))
    finally:
        store.close()
    return sorted(rows, key=lambda r: (r["audit_seq"] is None, r["audit_seq"]))


def gateway_env(mosquitto: Mosquitto, state: Path, store: dict[str, str]) -> dict[str, str]:
    policy = {"escalate_after_s": {"alarm": 30}, "clear_hold_s": 5, "remind_every_s": None}
    return {
        "OSH_MQTT_URL": mosquitto.url,
        "OSH_STATE_DIR": str(state),
        "OSH_MQTT_CLIENT_ID": f"gw-state-{time.time_ns()}",
        "OSH_PROFILE": "eu",
        "OSH_LOG_LEVEL": "INFO",
        "OSH_ALERTS": json.dumps(policy),
        **store,
    }


def co(pub: Publisher, t0: float, ppm: float, n: int) -> float:
    """n CO readings, STEP_S apart from t0, as one series message; returns the next free time."""
    pub.send(TOPIC, {"hazard": "co", "unit": "ppm", "t0": t0, "dt": STEP_S, "values": [ppm] * n})
    return t0 + n * STEP_S


def stel_events(col: Collector, event: str | None = None) -> list[dict[str, Any]]:
    return [
        a for a in col.json_on("/alerts")
        if a["site"] == SITE and a["rule"] == "stel" and (event is None or a["event"] == event)
    ]  # fmt: skip


def wait_stel(col: Collector, event: str, n: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
    assert col.wait(lambda c: len(stel_events(c, event)) >= n, timeout), stel_events(col)
    return stel_events(col, event)


def test_fresh_store_raises_although_the_state_dir_holds_an_open_alert(
    mosquitto: Mosquitto, store_env: Env, tmp_path: Path
) -> None:
    state = tmp_path / "state"  # the same state directory for both stores, as in the issue
    env_a = gateway_env(mosquitto, state, store_env("a"))
    env_b = {**env_a, **store_env("b")}
    t0 = time.time() // 60 * 60 - 3600.0
    col = Collector(mosquitto.port, [f"osh/{SITE}/#"])
    pub = Publisher(mosquitto.port)
    try:
        gw = GatewayProcess(env_a, tmp_path / "gw-a.log").start(mosquitto.port)
        co(pub, t0, 150.0, 90)  # 15 min at 150 ppm: the 15-min average passes 100 ppm
        first = wait_stel(col, "raised")[0]
        assert gw.stop() == 0, gw.tail()
        assert (state / "alerts.json").exists()

        gw = GatewayProcess(env_b, tmp_path / "gw-b.log").start(mosquitto.port)
        try:
            co(pub, t0, 150.0, 90)  # the same readings, into the fresh store B
            second = wait_stel(col, "raised", n=2)[1]
        finally:
            assert gw.stop() == 0, gw.tail()
        assert second["alert_id"] != first["alert_id"]
        assert "belongs to another store" in gw.tail(20_000)
        in_b = [(r["alert_id"], r["event"], r["rule"]) for r in stored_alerts(env_b)]
        assert (second["alert_id"], "raised", "stel") in in_b, in_b
        assert all(aid != first["alert_id"] for aid, *_ in in_b)
        retained = [p for _, t, p, r in col.messages if t.endswith("/drift/co-1/co/stel") and p]
        assert len(retained) >= 2  # the alarm state was published for B's alert as well
    finally:
        col.close()
        pub.close()


def test_lost_state_dir_takes_open_alerts_over_from_the_store(
    mosquitto: Mosquitto, store_env: Env, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env = gateway_env(mosquitto, state, store_env("one"))
    t0 = time.time() // 60 * 60 - 3600.0
    col = Collector(mosquitto.port, [f"osh/{SITE}/alerts"])
    pub = Publisher(mosquitto.port)
    try:
        gw = GatewayProcess(env, tmp_path / "gw-1.log").start(mosquitto.port)
        t = co(pub, t0, 150.0, 90)
        raised = wait_stel(col, "raised")[0]
        assert gw.stop() == 0, gw.tail()
        assert not stel_events(col, "escalated")  # 30 s to acknowledge: not yet
        shutil.rmtree(state)  # the state directory is lost

        gw = GatewayProcess(env, tmp_path / "gw-2.log").start(mosquitto.port)
        try:
            t = co(pub, t, 150.0, 30)  # 5 more minutes above the limit: still the same alert
            escalated = wait_stel(col, "escalated")[0]  # its 30 s ran out long ago (event time)
            assert escalated["alert_id"] == raised["alert_id"]
            for _ in range(4):  # 20 min of fresh air: the 15-min average falls to 0
                t = co(pub, t, 0.0, 30)  # (one row per rule and batch: the worst, so several batches)
                time.sleep(0.5)
            cleared = wait_stel(col, "cleared")[0]
            assert cleared["alert_id"] == raised["alert_id"]
        finally:
            assert gw.stop() == 0, gw.tail()
        assert [a["event"] for a in stel_events(col)] == ["raised", "escalated", "cleared"]
        stored = [r["event"] for r in stored_alerts(env) if r["alert_id"] == raised["alert_id"]]
        assert stored == ["raised", "escalated", "cleared"]
        assert "taken over from the store's alert log" in gw.tail(20_000)
    finally:
        col.close()
        pub.close()
