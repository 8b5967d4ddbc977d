"""The gateway end to end on a real mosquitto and a real SQLite file (`oshmon run` subprocess)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from storage.base import HistoryQuery, RecordKind
from storage.sqlite import SqliteStore
from tests.mqtt_helpers import Collector, Publisher, gateway, sqlite_gateway_env
from tests.services import Mosquitto

pytestmark = pytest.mark.integration
T0 = (int(time.time()) // 86400 - 1) * 86400 + 6 * 3600  # yesterday 06:00 UTC: a shift start


def env_for(broker: Mosquitto, tmp: Path, profile: str = "eu", client: str = "gw") -> dict[str, str]:
    return sqlite_gateway_env(broker.url, tmp, profile, client)


def stored_readings(db: Path, device: str) -> int:
    store = SqliteStore(db)
    try:
        return sum(1 for _ in store.query(HistoryQuery(RecordKind.READINGS, device=device)))
    finally:
        store.close()


def test_stel_alarm_dead_letters_and_clean_stop(mosquitto: Mosquitto, tmp_path: Path) -> None:
    col = Collector(mosquitto.port, ["osh/+/alerts", "osh/deadletter", "osh/+/alarms/#"])
    pub = Publisher(mosquitto.port)
    try:
        with gateway(env_for(mosquitto, tmp_path), mosquitto.port, tmp_path / "gw.log") as gw:
            for i in range(60):  # 10 min at 150 ppm CO, every 10 s, interleaved with bad messages
                pub.send(
                    "osh/kop-1/north/gd-1/data",
                    {"t": T0 + 10 * i, "hazard": "co", "value": 150.0, "unit": "ppm"},
                )
                if i % 20 == 0:
                    pub.send("osh/kop-1/north/gd-1/data", b"{broken")
            for i in range(60, 120):
                pub.send(
                    "osh/kop-1/north/gd-1/data",
                    {"t": T0 + 10 * i, "hazard": "co", "value": 150.0, "unit": "ppm"},
                )
            assert col.wait(
                lambda c: any(a["rule"] == "stel" and a["event"] == "raised" for a in c.json_on("/alerts")),
                30,
            ), gw.tail()
            alert = next(a for a in col.json_on("/alerts") if a["rule"] == "stel")
            assert alert["severity"] == "alarm" and alert["hazard"] == "co" and alert["threshold"] == 100.0
            assert "2017/164" in alert["limit_source"] and alert["action"] and alert["alert_id"]
            assert col.wait(
                lambda c: len([d for d in c.json_on("/deadletter") if d["topic"].endswith("gd-1/data")]) == 3,
                10,
            )
            assert col.wait(lambda c: any("/alarms/north/gd-1/co/stel" in t for _, t, p, _ in c.messages if p), 10)
            assert col.wait(lambda _: stored_readings(tmp_path / "osh.sqlite", "gd-1") == 120, 10)
            # Exactly one raised STEL alert for 20 minutes above the limit: repeats update it.
            raised = [a for a in col.json_on("/alerts") if a["rule"] == "stel" and a["event"] == "raised"]
            assert len(raised) == 1
            assert gw.stop() == 0, gw.tail()
    finally:
        col.close()
        pub.close()


async def test_many_concurrent_publishes_all_complete(mosquitto: Mosquitto) -> None:
    """Regression: holding our lock while calling paho deadlocked against fast PUBACKs."""
    import asyncio

    from gateway.config import parse_mqtt_url
    from gateway.mqtt import MqttEdge

    edge = MqttEdge(parse_mqtt_url(mosquitto.url), f"t-edge-{time.time_ns()}", persistent=False, manual_ack=False)
    async with edge:
        for _ in range(5):
            await asyncio.wait_for(asyncio.gather(*(edge.publish("osh/t/z/d/x", b"x", qos=1) for _ in range(300))), 20)
            for _ in range(300):
                await edge.send("osh/t/z/d/y", b"y", qos=1)
        await edge.drain(20)
        assert not edge._pending and not edge._early, "every packet id is released on PUBACK"
        assert edge.outstanding == 0
