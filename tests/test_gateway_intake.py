"""A gateway that is behind must not call every sensor silent (issue 9).

Unit tests drive `IntakeWatch` and the silence check with injected time; the integration test
freezes a real `oshmon run` (SIGSTOP) while real sensors keep publishing to real mosquitto.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from alerts.health import SensorHealth
from alerts.health_policy import HealthPolicy
from alerts.lifecycle import AlertBook
from alerts.policy import AlertPolicy
from gateway.intake import IntakeSample, IntakeWatch
from rules.types import ChannelKey, ChannelRegistry, Hazard, ReadingBatch
from tests.mqtt_helpers import Collector, Publisher, gateway
from tests.services import Mosquitto
from tests.test_alerts_helpers import counter_ids

T0 = 1_800_000_000.0
DEVICES = 100


def _fleet() -> tuple[SensorHealth, IntakeWatch, ChannelRegistry]:
    book = AlertBook(AlertPolicy(flap_window_s=0.0), counter_ids())
    health = SensorHealth(book, HealthPolicy(min_silence_s=30.0, offline_k=3.0, default_interval_s=5.0))
    reg = ChannelRegistry()
    for i in range(DEVICES):
        reg.id_for(ChannelKey("kop-1", "north", f"gd-{i}", Hazard.CO))
    return health, IntakeWatch(book, health, "gw-1"), reg


def _seen(health: SensorHealth, reg: ChannelRegistry, devices: range, now: float) -> None:
    ch = np.array(list(devices), np.int64)
    health.observe(ReadingBatch(ch, np.full(len(ch), now), np.full(len(ch), 1.0)), reg, now)


def test_a_lagging_gateway_raises_one_alert_not_one_per_device() -> None:
    health, watch, reg = _fleet()
    _seen(health, reg, range(DEVICES), T0)
    # The gateway stalls: its next look happens 60 s later, the oldest message in hand 55 s old.
    [ev] = watch.observe(IntakeSample(T0 + 60, lag_s=55.0, queued=80_000))
    assert (ev.event, ev.severity, ev.rule, ev.site, ev.zone, ev.hazard) == (
        "raised", "malfunction", "offline", "gateway", "intake", "gateway",
    )  # fmt: skip
    assert "behind" in ev.message and "55 s" in ev.message
    assert health.check(T0 + 60) == []  # before: 100 "silent for 1 min" alerts
    assert watch.observe(IntakeSample(T0 + 61, lag_s=40.0, queued=50_000)) == []  # said once
    # It works off the backlog: every device's readings are processed again.
    _seen(health, reg, range(DEVICES), T0 + 70)
    [cleared] = watch.observe(IntakeSample(T0 + 71, lag_s=0.5, queued=10))
    assert (cleared.event, cleared.alert_id) == ("cleared", ev.alert_id)
    assert health.check(T0 + 71) == []


def test_silence_counts_again_after_catching_up_but_not_the_lag() -> None:
    health, watch, reg = _fleet()
    _seen(health, reg, range(DEVICES), T0)
    watch.observe(IntakeSample(T0 + 5, lag_s=0.0, queued=0))  # healthy: nothing
    assert not watch.behind
    watch.observe(IntakeSample(T0 + 20, lag_s=15.0, queued=0))
    assert watch.behind and health.check(T0 + 40) == []
    _seen(health, reg, range(1, DEVICES), T0 + 45)  # gd-0 really went silent meanwhile
    watch.observe(IntakeSample(T0 + 46, lag_s=0.1, queued=0))
    assert not watch.behind
    assert health.check(T0 + 70) == []  # 24 s since catching up: not yet silent
    _seen(health, reg, range(1, DEVICES), T0 + 72)
    events = health.check(T0 + 77)  # 31 s after catching up
    assert [(e.event, e.device) for e in events] == [("raised", "gd-0")]


def test_hysteresis_between_behind_and_caught_up() -> None:
    health, watch, _reg = _fleet()
    assert watch.observe(IntakeSample(T0, lag_s=9.9, queued=49_999)) == []
    assert len(watch.observe(IntakeSample(T0 + 1, lag_s=0.0, queued=50_001))) == 1
    assert watch.observe(IntakeSample(T0 + 2, lag_s=1.0, queued=5_000)) == []  # queue still long
    assert watch.behind and health.silence_paused
    assert len(watch.observe(IntakeSample(T0 + 3, lag_s=1.0, queued=900))) == 1
    assert not watch.behind and not health.silence_paused and watch.episodes == 1


@pytest.mark.integration
@pytest.mark.slow
def test_frozen_gateway_reports_itself_not_every_sensor(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """SIGSTOP the gateway for 12 s while 30 sensors (1 s interval, 5 s silence limit) keep
    publishing: afterwards one `gateway` malfunction is raised and cleared, and no sensor is
    called offline. Before, the first tick after the pause raised 30 `offline` alerts."""
    env = {
        "OSH_MQTT_URL": mosquitto.url,
        "OSH_STORE": "sqlite",
        "OSH_SQLITE_PATH": str(tmp_path / "osh.sqlite"),
        "OSH_STATE_DIR": str(tmp_path / "state"),
        "OSH_MQTT_CLIENT_ID": f"gw-lag-{time.time_ns()}",
        "OSH_HEALTH": json.dumps({"min_silence_s": 5.0, "offline_k": 3.0}),
    }
    col = Collector(mosquitto.port, ["osh/lag-1/alerts", "osh/gateway/alerts"])
    pub = Publisher(mosquitto.port)
    devices = [f"gd-{i}" for i in range(30)]
    try:
        with gateway(env, mosquitto.port, tmp_path / "gw.log") as gw:
            for d in devices:
                pub.send(f"osh/lag-1/north/{d}/status", {"state": "online", "interval_s": 1}, retain=True)
            _publish_for(pub, devices, 4.0)
            assert gw.proc is not None
            os.killpg(gw.proc.pid, signal.SIGSTOP)
            try:
                _publish_for(pub, devices, 12.0)
            finally:
                os.killpg(gw.proc.pid, signal.SIGCONT)
            _publish_for(pub, devices, 6.0)
            col.wait(lambda c: any(e["event"] == "cleared" for e in c.json_on("/gateway/alerts")), 20)
            offline = [e for e in col.json_on("/lag-1/alerts") if e["rule"] == "offline"]
            assert offline == [], f"{len(offline)} sensors called offline: {offline[0]['message']}"
            gw_events = [(e["event"], e["hazard"]) for e in col.json_on("/gateway/alerts") if e["zone"] == "intake"]
            assert gw_events == [("raised", "gateway"), ("cleared", "gateway")], gw.tail()
            assert "gateway intake is behind" in gw.tail()
    finally:
        col.close()
        pub.close()


def _publish_for(pub: Publisher, devices: list[str], seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        t = time.time()
        for d in devices:
            pub.send(f"osh/lag-1/north/{d}/data", {"t": t, "hazard": "co", "value": 1.5, "unit": "ppm"}, wait=False)
        time.sleep(max(0.0, 1.0 - (time.time() - t)))
