"""`/metrics` and `/healthz` of a real `oshmon run` (mosquitto + influxd + SQLite), and the pure parts."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway.observability import dead_letter_reason, parse_listen
from rules.errors import ConfigError
from tests.mqtt_helpers import Publisher, gateway
from tests.services import free_port, run_influxd, run_mosquitto

T_NOW = time.time


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_status(url: str, status: int, timeout: float) -> float:
    """Seconds until /healthz answered `status` (fails after `timeout`)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if get(url)[0] == status:
            return time.monotonic() - start
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer {status} within {timeout} s: {get(url)}")


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_listen("[::1]:9108") == ("::1", 9108)
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)  # any free port (the demo)
    for bad in ("9108", "host:", "h:99999", "h:x"):
        with pytest.raises(ConfigError, match="OSH_HTTP_LISTEN"):
            parse_listen(bad)


def test_dead_letter_reasons_are_a_small_fixed_set() -> None:
    assert dead_letter_reason("(store)", "field type conflict", "(store)") == "store_refused"
    assert dead_letter_reason("osh/a/ack", "unknown alert", "(store)") == "ack"
    assert dead_letter_reason("osh/a/z/d/data", "payload is not valid JSON: x", "(store)") == "malformed_json"
    assert dead_letter_reason("osh/a/z/d/data", "something else entirely", "(store)") == "invalid_payload"


@pytest.mark.integration
def test_metrics_move_and_health_follows_the_store(tmp_path: Path) -> None:
    """Counters move with traffic; with the spool disabled, /healthz turns 503 within 5 s of
    stopping influxd and 200 again after it returns."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with run_mosquitto() as broker, run_influxd() as influx:
        env = {
            "OSH_MQTT_URL": broker.url,
            "OSH_MQTT_CLIENT_ID": "obs-gw",
            "OSH_STORE": "influx",
            "OSH_INFLUX_URL": influx.url,
            "OSH_INFLUX_DB": "obs",
            "OSH_STATE_DIR": str(tmp_path / "state"),
            "OSH_SPOOL": "false",
            "OSH_HTTP_LISTEN": f"127.0.0.1:{port}",
        }
        with gateway(env, broker.port, tmp_path / "gw.log") as gw:
            status, body = get(base + "/healthz")
            assert status == 200, body
            assert json.loads(body)["mqtt"] == "connected"
            before = get(base + "/metrics")[1]
            pub = Publisher(broker.port)
            t0 = T_NOW() - 60
            for i in range(50):
                pub.send("osh/obs/z1/gd-1/data", {"t": t0 + i, "hazard": "co", "value": 5.0, "unit": "ppm"})
            pub.send("osh/obs/z1/gd-1/data", b"{broken")
            end = time.time() + 20
            while time.time() < end and metric(get(base + "/metrics")[1], "oshmon_readings_stored_total") < 50:
                time.sleep(0.2)
            after = get(base + "/metrics")[1]
            assert metric(after, "oshmon_readings_stored_total") - metric(before, "oshmon_readings_stored_total") == 50
            assert metric(after, "oshmon_messages_total") > metric(before, "oshmon_messages_total") + 50
            assert 'oshmon_dead_letters_total{reason="malformed_json"}' in after
            assert metric(after, "oshmon_channels") >= 1
            for name in ("oshmon_batch_seconds_count", "oshmon_store_write_seconds_count", "oshmon_open_alerts",
                         "oshmon_spool_bytes", "oshmon_intake_queue_depth", "oshmon_alert_events_total"):  # fmt: skip
                assert name in after, name
            influx.stop()
            took = wait_status(base + "/healthz", 503, 10)
            assert took <= 5.0, f"/healthz took {took:.1f} s to notice influxd stopped"
            assert "store" in json.loads(get(base + "/healthz")[1])["reason"]
            influx.start()
            wait_status(base + "/healthz", 200, 30)
            pub.close()
            assert "Traceback" not in gw.tail(20000)


@pytest.mark.integration
def test_health_follows_the_broker(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with run_mosquitto() as broker:
        env = {
            "OSH_MQTT_URL": broker.url,
            "OSH_MQTT_CLIENT_ID": "obs-gw-2",
            "OSH_SQLITE_PATH": str(tmp_path / "obs.sqlite"),
            "OSH_HTTP_LISTEN": f"127.0.0.1:{port}",
        }
        with gateway(env, broker.port, tmp_path / "gw.log"):
            wait_status(base + "/healthz", 200, 5)
            broker.stop()
            took = wait_status(base + "/healthz", 503, 10)
            assert took <= 5.0
            assert "MQTT" in json.loads(get(base + "/healthz")[1])["reason"]
            broker.start()
            wait_status(base + "/healthz", 200, 60)


@pytest.mark.integration
def test_a_port_in_use_stops_start_up_with_the_setting_named(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        env = {"OSH_HTTP_LISTEN": f"127.0.0.1:{taken}", "OSH_SQLITE_PATH": str(tmp_path / "x.sqlite"),
               "OSH_MQTT_URL": "mqtt://127.0.0.1:1"}  # fmt: skip
        import os

        r = subprocess.run([sys.executable, "-m", "gateway", "run"], env={**os.environ, **env},
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode != 0
    assert "OSH_HTTP_LISTEN" in r.stderr and "Traceback" not in r.stderr
