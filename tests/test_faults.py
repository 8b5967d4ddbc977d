"""Fault tests on real processes (issue 4): nothing the broker accepted is ever lost.

Each test counts what reached the store through the Store interface, after killing or
restarting a real process mid-stream: the gateway (SIGKILL), mosquitto, influxd.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from storage.base import HistoryQuery, RecordKind
from storage.factory import open_store
from tests.mqtt_helpers import GatewayProcess, Publisher
from tests.services import Influxd, Mosquitto

pytestmark = [pytest.mark.integration, pytest.mark.slow]
T0 = float((int(time.time()) // 86400 - 1) * 86400 + 6 * 3600)


def sqlite_env(broker: Mosquitto, tmp: Path, client: str) -> dict[str, str]:
    return {
        "OSH_MQTT_URL": broker.url,
        "OSH_STORE": "sqlite",
        "OSH_SQLITE_PATH": str(tmp / "osh.sqlite"),
        "OSH_STATE_DIR": str(tmp / "state"),
        "OSH_MQTT_CLIENT_ID": client,
        "OSH_LOG_LEVEL": "WARNING",
    }


def count(kind: str, tmp: Path | None = None, influx: Influxd | None = None, device: str | None = None) -> int:
    if influx is not None:
        store = open_store(kind="influx", influx_url=influx.url, influx_api="v1", influx_db="faults")
    else:
        assert tmp is not None
        store = open_store(kind="sqlite", sqlite_path=tmp / "osh.sqlite")
    try:
        return sum(1 for _ in store.query(HistoryQuery(RecordKind(kind), device=device)))
    finally:
        store.close()


def publish_stream(
    port: int, device: str, n: int, per_msg: int = 10, pause_s: float = 0.0, first: int = 0
) -> threading.Thread:
    """Series messages of `per_msg` CO readings, 1 s apart, n messages in all, QoS 1."""

    def run() -> None:
        pub = Publisher(port)
        done: set[int] = set()
        pub.client.on_publish = lambda _c, _u, mid, _rc, _p: done.add(mid)
        infos = []
        try:
            for k in range(first, first + n):
                values = [5.0 + (k * per_msg + j) % 7 for j in range(per_msg)]
                payload = {"hazard": "co", "unit": "ppm", "t0": T0 + k * per_msg, "dt": 1.0, "values": values}
                infos.append(pub.client.publish(f"osh/kop-9/north/{device}/data", json.dumps(payload), qos=1))
                if pause_s:
                    time.sleep(pause_s)
            # paho resends unacknowledged QoS 1 messages after a reconnect; its wait_for_publish()
            # raises for messages queued while disconnected, so count PUBACKs instead.
            deadline = time.time() + 180
            while any(i.mid not in done for i in infos) and time.time() < deadline:
                time.sleep(0.05)
        finally:
            pub.close()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def missing_messages(tmp: Path, device: str, n: int, per_msg: int = 10) -> str:
    """Which of the n published messages have no stored reading (for failure messages)."""
    store = open_store(kind="sqlite", sqlite_path=tmp / "osh.sqlite")
    try:
        rows = list(store.query(HistoryQuery(RecordKind.READINGS, device=device)))
    finally:
        store.close()
    from datetime import datetime

    have = {round(datetime.fromisoformat(r["t"]).timestamp() - T0) // per_msg for r in rows}
    return f"messages missing: {sorted(set(range(n)) - have)}"


def wait_count(expected: int, timeout: float, **kw: object) -> int:
    end = time.time() + timeout
    got = -1
    while time.time() < end:
        got = count("readings", **kw)  # type: ignore[arg-type]
        if got >= expected:
            return got
        time.sleep(0.5)
    return got


def test_gateway_sigkill_mid_stream_loses_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    env = sqlite_env(mosquitto, tmp_path, f"gw-kill-{time.time_ns()}")
    gw = GatewayProcess(env, tmp_path / "gw1.log").start(mosquitto.port)
    th = publish_stream(mosquitto.port, "kill-1", n=400, pause_s=0.005)
    time.sleep(1.0)
    gw.stop(sig=9)  # SIGKILL: no draining, no goodbye
    th.join(60)
    gw2 = GatewayProcess(env, tmp_path / "gw2.log").start(mosquitto.port)  # same client id: same session
    try:
        assert wait_count(4000, 60, tmp=tmp_path, device="kill-1") == 4000, gw2.tail()
    finally:
        assert gw2.stop() == 0


def test_broker_restart_mid_stream_loses_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """mosquitto restarts while readings stream in: every reading ends up stored exactly once."""
    env = sqlite_env(mosquitto, tmp_path, f"gw-brk-{time.time_ns()}")
    gw = GatewayProcess(env, tmp_path / "gw.log").start(mosquitto.port)
    try:
        th = publish_stream(mosquitto.port, "brk-1", n=300, pause_s=0.005)
        time.sleep(0.8)
        mosquitto.restart()
        th.join(120)
        got = wait_count(3000, 90, tmp=tmp_path, device="brk-1")
        assert got == 3000, f"{missing_messages(tmp_path, 'brk-1', 300)}\n{gw.tail()}"
    finally:
        assert gw.stop() == 0, gw.tail()


def test_influxd_down_60s_under_load_spools_and_replays(mosquitto: Mosquitto, influxd: Influxd, tmp_path: Path) -> None:
    env = {
        "OSH_MQTT_URL": mosquitto.url,
        "OSH_STORE": "influx",
        "OSH_INFLUX_URL": influxd.url,
        "OSH_INFLUX_API": "v1",
        "OSH_INFLUX_DB": "faults",
        "OSH_STATE_DIR": str(tmp_path / "state"),
        "OSH_MQTT_CLIENT_ID": f"gw-influx-{time.time_ns()}",
        "OSH_LOG_LEVEL": "WARNING",
    }
    gw = GatewayProcess(env, tmp_path / "gw.log").start(mosquitto.port)
    try:
        th = publish_stream(mosquitto.port, "inf-1", n=600, pause_s=0.1)  # ~60 s of load
        time.sleep(2.0)
        influxd.stop()
        time.sleep(60.0)
        influxd.start()
        th.join(120)
        assert wait_count(6000, 120, influx=influxd, device="inf-1") == 6000, gw.tail()
    finally:
        assert gw.stop() == 0, gw.tail()


def test_restart_mid_shift_keeps_the_running_twa(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """40 min + 40 min of CO at 150 ppm around a restart: 200 ppm·h > 8 h × 20 ppm (EU TWA).

    Without the replay of the running shift the second gateway would see only 100 ppm·h
    (TWA 12.5 ppm) and stay silent; with it, the shift TWA crosses 20 ppm after the restart.
    """
    from tests.mqtt_helpers import Collector

    shift_start = (time.time() - 2 * 3600) // 60 * 60  # a one-shift-a-day site whose shift began 2 h ago
    hhmm = time.strftime("%H:%M", time.gmtime(shift_start))
    env = {
        **sqlite_env(mosquitto, tmp_path, f"gw-twa-{time.time_ns()}"),
        "OSH_PROFILE": "eu",
        "OSH_SITES": json.dumps({"kop-8": {"shift_starts": [hhmm], "shift_hours": 8}}),
    }
    col = Collector(mosquitto.port, ["osh/+/alerts"])
    pub = Publisher(mosquitto.port)
    start = shift_start + 600.0  # 80 min of readings ending 30 min ago, inside the running shift
    try:
        gw = GatewayProcess(env, tmp_path / "gw1.log").start(mosquitto.port)
        for i in range(240):
            pub.send("osh/kop-8/face/co-1/data", {"t": start + 10 * i, "hazard": "co", "value": 150.0, "unit": "ppm"})
        assert wait_count(240, 30, tmp=tmp_path, device="co-1") == 240
        assert gw.stop() == 0, gw.tail()
        twa = [a for a in col.json_on("/alerts") if a["rule"] == "twa" and a["severity"] == "alarm"]
        assert not twa, "100 ppm·h is below the 160 ppm·h of an 8-h TWA of 20 ppm"
        gw2 = GatewayProcess(env, tmp_path / "gw2.log").start(mosquitto.port)
        try:
            for i in range(240, 480):
                pub.send(
                    "osh/kop-8/face/co-1/data", {"t": start + 10 * i, "hazard": "co", "value": 150.0, "unit": "ppm"}
                )
            assert col.wait(
                lambda c: any(a["rule"] == "twa" and a["severity"] == "alarm" for a in c.json_on("/alerts")), 30
            ), gw2.tail()
            raised = [a for a in col.json_on("/alerts") if a["rule"] == "twa" and a["event"] == "raised"]
            assert raised[-1]["value"] > 20.0
        finally:
            assert gw2.stop() == 0
    finally:
        col.close()
        pub.close()
