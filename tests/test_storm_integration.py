"""Alert storms end to end (issue 15 point 5): a real mosquitto and `oshmon run` subprocess.

Hundreds of one-shot devices go silent together: they become one site-level `offline` alert;
and a critical alarm handed to the gateway's publisher after thousands of malfunction events
goes out first. Ordering and
counts only; the latency figures are in bench/storm.py and docs/benchmarks.md."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from alerts.sinks.config import SinksConfig
from alerts.state import AlertSubject
from gateway.config import load_settings, parse_mqtt_url
from gateway.mqtt import MqttEdge
from gateway.publisher import PUBLISH_WINDOW
from gateway.runtime import Runtime
from gateway.service import GatewayService
from rules.types import RuleKind, Severity
from storage.base import RecordKind
from tests.mqtt_helpers import Collector
from tests.services import Mosquitto
from tests.test_alerts_integration import ZONE, Rig, rig

pytestmark = pytest.mark.integration
QUICK_SILENCE = {"default_interval_s": 1, "offline_k": 2, "min_silence_s": 2}


def one_shot_devices(r: Rig, n: int, prefix: str = "os") -> None:
    """`n` devices that send one ordinary reading each and then never again."""
    t = time.time()
    for i in range(n):
        payload = {"t": t, "hazard": "ch4", "value": 0.1, "unit": "%vol"}
        r.pub.send(f"osh/{r.site}/{ZONE}/{prefix}-{i:05d}/data", payload, wait=i == n - 1)


def offline_raised(r: Rig) -> list[dict[str, Any]]:
    return r.events(event="raised", rule="offline")


def test_many_devices_silent_together_give_one_site_alert(mosquitto: Mosquitto, tmp_path: Path) -> None:
    n = 400
    with rig(mosquitto, tmp_path, "storm-a", HEALTH=QUICK_SILENCE, SINKS={"sinks": []}) as r:
        one_shot_devices(r, n)
        group = r.wait_event(event="raised", rule="offline", device="devices", timeout=20)
        time.sleep(3.0)  # every device is silent by now; later ones join the group quietly
        single = [e for e in offline_raised(r) if e["device"] != "devices"]
        assert len(single) < 10, f"{len(single)} separate offline alerts"
        assert (group["zone"], group["hazard"], group["severity"]) == ("gateway", "device", "malfunction")
        assert group["value"] == len(group["devices"]) >= n - len(single) - 50
        assert f"{int(group['value']):,} devices of site storm-a went offline" in group["message"]
        assert len(offline_raised(r)) == len(single) + 1
        topic = "osh/storm-a/alarms/gateway/devices/device/offline"
        assert r.col.wait(lambda c: any(t == topic and p for _, t, p, _ in c.messages), 5)


async def test_the_gateway_publishes_a_critical_alarm_before_a_backlog_of_offline_alerts(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The worst case (no grouping): 5,000 offline alerts being recorded and published, then one
    critical alarm: it overtakes every queued one. Real runtime (SQLite store, audit chain), paho
    client and broker."""
    n, site = 5000, "storm-b"
    settings = load_settings(
        None, mqtt_url=mosquitto.url, store="sqlite", sqlite_path=tmp_path / "osh.sqlite",
        state_dir=tmp_path / "state", profile="us-msha", serve_sites=[site],
        mqtt_client_id=f"gw-storm-{time.time_ns()}", sinks=SinksConfig(sinks=[]),
    )  # fmt: skip
    rt = await asyncio.to_thread(Runtime.build, settings)
    now = time.time()
    offline = []
    for i in range(n):
        subject = AlertSubject(site, ZONE, f"os-{i:05d}", "device")
        offline += rt.alerts.raise_health(subject, RuleKind.OFFLINE, t_s=now, now_s=now, message="silent")
    critical = replace(offline[0], alert_id="crit-1", severity=Severity.CRITICAL, rule=RuleKind.LEVEL,
                       hazard="ch4", device="probe-crit", value=2.0, message="CH4 2 %vol")  # fmt: skip
    col = Collector(mosquitto.port, [f"osh/{site}/alerts"])
    stop = asyncio.Event()
    try:
        async with MqttEdge(parse_mqtt_url(mosquitto.url), settings.mqtt_client_id, persistent=False) as edge:
            svc = GatewayService(edge, rt)
            publishing = asyncio.create_task(svc.publisher.run(stop))
            storm = asyncio.create_task(svc._emit(offline, deliver=False))
            for _ in range(10_000):  # until a backlog of offline messages is queued
                if svc.publisher.backlog()[1] >= 1000:
                    break
                await asyncio.sleep(0.001)
            queued = svc.publisher.counts["routine"] // 2  # events handed over (each also has a retained state)
            await svc._emit([critical], deliver=False)
            await storm
            stop.set()
            await publishing
        assert col.wait(lambda c: len(c.json_on("/alerts")) >= n + 1, 30)
        order = [e["alert_id"] for e in col.json_on("/alerts")]
    finally:
        col.close()
        rt.close()
    before = order.index("crit-1")
    # first in, first out would put it behind every offline alert queued before it
    assert before < queued - PUBLISH_WINDOW, f"the critical alarm came out behind {before} of {queued} offline alerts"
    assert len(order) == n + 1


def test_channels_beyond_a_sites_cap_are_dead_lettered_with_one_alert(mosquitto: Mosquitto, tmp_path: Path) -> None:
    dead = Collector(mosquitto.port, ["osh/deadletter"])
    try:
        with rig(mosquitto, tmp_path, "storm-c", MAX_CHANNELS_PER_SITE="5", SINKS={"sinks": []}) as r:
            one_shot_devices(r, 40, prefix="flood")
            alert = r.wait_event(event="raised", rule="capacity", timeout=20)
            assert dead.wait(lambda c: len([d for d in c.json_on("/deadletter") if "flood" in d["topic"]]) >= 35, 10)
            refused = [d for d in dead.json_on("/deadletter") if "flood" in d["topic"]]
            assert "site 'storm-c' already has 5 channels" in refused[0]["error"]
            assert (alert["zone"], alert["device"], alert["hazard"]) == ("gateway", "inventory", "gateway")
            assert len(r.stored(RecordKind.READINGS)) == 5
            one_shot_devices(r, 40, prefix="flood2")
            time.sleep(2.0)
            assert len(r.events(rule="capacity")) == 1  # one alert per site, however many refusals
    finally:
        dead.close()


def test_many_retained_offline_statuses_give_one_site_alert(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """10,000 retained `{"state": "offline"}` once gave 10,003 alerts; here 300 give at most 10."""
    n = 300
    with rig(mosquitto, tmp_path, "storm-d", SINKS={"sinks": []}) as r:
        for i in range(n):
            topic = f"osh/storm-d/{ZONE}/st-{i:04d}/status"
            r.pub.send(topic, {"state": "offline"}, retain=True, wait=i == n - 1)
        group = r.wait_event(event="raised", rule="offline", device="devices", timeout=20)
        time.sleep(2.0)
        single = [e for e in offline_raised(r) if e["device"] != "devices"]
        assert len(single) < 10 and group["zone"] == "gateway"
        assert len(offline_raised(r)) == len(single) + 1
