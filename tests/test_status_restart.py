"""Device status on real processes: mosquitto and `oshmon run` (SQLite), restarted.

- issue 13 point 8: a restart must neither clear offline alarms because of old retained `online`
  messages nor raise them again from an old retained Last Will;
- issue 15 point 2: `{"state": "online"}` does not clear a real offline alarm; `interval_s` and
  `calibrated_on` out of range are dead-lettered with the reason.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt_helpers import Collector, GatewayProcess, Publisher
from tests.services import Mosquitto

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SITE = "kop-ss"


def env(mosquitto: Mosquitto, tmp: Path) -> dict[str, str]:
    return {
        "OSH_MQTT_URL": mosquitto.url,
        "OSH_STORE": "sqlite",
        "OSH_SQLITE_PATH": str(tmp / "osh.sqlite"),
        "OSH_STATE_DIR": str(tmp / "state"),
        "OSH_MQTT_CLIENT_ID": f"gw-status-{time.time_ns()}",
        "OSH_PROFILE": "eu",
        "OSH_HEALTH": json.dumps({"offline_k": 1, "min_silence_s": 2}),
        "OSH_LOG_LEVEL": "INFO",
    }


def device_events(col: Collector, device: str, since: float = 0.0) -> list[str]:
    with col._lock:
        raw = [(ts, p) for ts, t, p, _r in col.messages if t == f"osh/{SITE}/alerts" and ts >= since]
    events = [json.loads(p) for _ts, p in raw]
    return [f"{e['event']} {e['rule']}" for e in events if e["device"] == device]


def co(pub: Publisher, device: str, value: float = 1.0) -> None:
    pub.send(f"osh/{SITE}/z/{device}/data", {"t": time.time(), "hazard": "co", "value": value, "unit": "ppm"})


def test_restart_does_not_clear_or_reraise_offline_from_stale_retained_status(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    col = Collector(mosquitto.port, [f"osh/{SITE}/alerts"])
    pub = Publisher(mosquitto.port)
    e = env(mosquitto, tmp_path)
    try:
        gw = GatewayProcess(e, tmp_path / "gw1.log").start(mosquitto.port)
        # quiet-1 said "online" (retained) long ago, sent one reading, then fell silent
        pub.send(f"osh/{SITE}/z/quiet-1/status", {"state": "online", "interval_s": 1}, retain=True)
        co(pub, "quiet-1")
        assert col.wait(lambda c: device_events(c, "quiet-1") == ["raised offline"], 15), gw.tail()
        # back-1's Last Will fired, then it came back and sends readings, without a new status
        pub.send(f"osh/{SITE}/z/back-1/status", {"state": "offline"}, retain=True)
        assert col.wait(lambda c: device_events(c, "back-1") == ["raised offline"], 10)
        co(pub, "back-1")
        assert col.wait(lambda c: device_events(c, "back-1") == ["raised offline", "cleared offline"], 10)
        assert gw.stop() == 0, gw.tail()

        restarted = time.time()
        gw = GatewayProcess(e, tmp_path / "gw2.log").start(mosquitto.port)  # retained statuses arrive again
        try:
            for _ in range(8):  # back-1 keeps sending; quiet-1 stays silent
                co(pub, "back-1")
                time.sleep(0.5)
            assert device_events(col, "quiet-1", restarted) == [], gw.tail()  # old code: cleared, raised
            assert device_events(col, "back-1", restarted) == [], gw.tail()  # old code: raised, cleared
        finally:
            assert gw.stop() == 0, gw.tail()
    finally:
        col.close()
        pub.close()


def test_online_status_alone_does_not_clear_and_bad_metadata_is_dead_lettered(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    col = Collector(mosquitto.port, [f"osh/{SITE}/alerts", "osh/deadletter"])
    pub = Publisher(mosquitto.port)
    try:
        gw = GatewayProcess(env(mosquitto, tmp_path), tmp_path / "gw.log").start(mosquitto.port)
        try:
            pub.send(f"osh/{SITE}/z/dead-1/status", {"state": "online", "interval_s": 1})
            co(pub, "dead-1")
            assert col.wait(lambda c: device_events(c, "dead-1") == ["raised offline"], 15), gw.tail()
            pub.send(f"osh/{SITE}/z/dead-1/status", {"state": "online"})  # forged, or a confused logger
            bad: list[dict[str, Any]] = [
                {"state": "online", "interval_s": 9999999},
                {"state": "online", "calibrated_on": "2099-01-01"},
            ]
            for payload in bad:
                pub.send(f"osh/{SITE}/z/dead-2/status", payload)
            reasons = lambda c: [d["error"] for d in c.json_on("/deadletter") if "dead-2" in d["topic"]]  # noqa: E731
            assert col.wait(lambda c: len(reasons(c)) == 2, 10), col.json_on("/deadletter")
            assert "interval_s 1e+07 s is outside the accepted 0.1 s to 3600 s" in reasons(col)[0]
            assert "calibrated_on lies in the future" in reasons(col)[1]
            time.sleep(2.0)
            assert device_events(col, "dead-1") == ["raised offline"]  # still open: readings clear it
            co(pub, "dead-1")
            assert col.wait(lambda c: device_events(c, "dead-1") == ["raised offline", "cleared offline"], 10)
        finally:
            assert gw.stop() == 0, gw.tail()
    finally:
        col.close()
        pub.close()
