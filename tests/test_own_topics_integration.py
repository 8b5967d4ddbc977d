"""The gateway's retained alarm states and alert stream are its own (issue 15 point 2), on a real
mosquitto and `oshmon run`: an empty or forged retained message is undone, a forged alert event is
dead-lettered and never shown by `oshmon status`, and the gateway never trips over its own echoes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.mqtt_helpers import ROOT, Collector
from tests.services import Mosquitto
from tests.test_alerts_integration import ZONE, Rig, rig

pytestmark = pytest.mark.integration


def retained_now(port: int, topic: str) -> bytes | None:
    """What a board connecting now gets on `topic` (None: no retained message)."""
    col = Collector(port, [topic])
    try:
        col.wait(lambda c: bool(c.messages), 1.5)
        return next((p for _, t, p, retained in col.messages if t == topic and retained), None)
    finally:
        col.close()


def integrity_events(r: Rig) -> list[dict[str, object]]:
    return r.events(rule="integrity", event="raised")


def raise_alarm(r: Rig, device: str) -> dict[str, object]:
    r.paced(device, [(time.time() - 2, 0.3), (time.time() - 1, 1.2)])  # us-msha: 1.0 %vol alarm
    return r.wait_event(event="raised", device=device, rule="level")


def test_a_cleared_or_forged_retained_alarm_is_restored_and_reported(mosquitto: Mosquitto, tmp_path: Path) -> None:
    dead = Collector(mosquitto.port, ["osh/deadletter"])
    try:
        with rig(mosquitto, tmp_path, "own-a", SINKS={"sinks": []}) as r:
            raised = raise_alarm(r, "ch4-3")
            topic = f"osh/own-a/alarms/{ZONE}/ch4-3/ch4/level"
            assert r.col.wait(lambda c: any(t == topic and p for _, t, p, _ in c.messages), 5)
            time.sleep(1.0)
            assert integrity_events(r) == []  # the gateway's own publications are not incidents
            r.pub.send(topic, b"", retain=True)  # hide the live alarm from reconnecting boards
            incident = r.wait_event(event="raised", rule="integrity", timeout=10)
            assert topic in str(incident["message"]) and "cleared by someone else" in str(incident["message"])
            assert (incident["zone"], incident["device"], incident["hazard"]) == ("gateway", "alarms", "gateway")
            state = retained_now(mosquitto.port, topic)
            assert state is not None and json.loads(state)["alert_id"] == raised["alert_id"]
            fake = f"osh/own-a/alarms/{ZONE}/ghost-1/ch4/level"
            r.pub.send(fake, {"alert_id": "forged", "severity": "critical", "state": "active"}, retain=True)
            assert r.col.wait(lambda c: any(t == fake and not p for _, t, p, _ in c.messages), 10), r.gw.tail()
            assert retained_now(mosquitto.port, fake) is None  # wiped
            time.sleep(1.0)
            assert len(integrity_events(r)) == 1  # one open alert per site; no loop on our own echoes
            assert not [d for d in dead.json_on("/deadletter") if "/alarms/" in d["topic"]]
    finally:
        dead.close()


def test_forged_alert_events_are_flagged_and_never_shown_as_open(mosquitto: Mosquitto, tmp_path: Path) -> None:
    dead = Collector(mosquitto.port, ["osh/deadletter"])
    try:
        with rig(mosquitto, tmp_path, "own-b", SINKS={"sinks": []}) as r:
            genuine = raise_alarm(r, "ch4-4")
            altered = {**genuine, "severity": "critical", "alert_id": "fake-alert-1"}  # keeps the real hashes
            made_up = {**genuine, "alert_id": "fake-alert-2", "audit_chain": None, "hash": None}
            for ev in (altered, made_up):
                r.pub.send("osh/own-b/alerts", ev)
            got = lambda: [d for d in dead.json_on("/deadletter") if d["topic"] == "osh/own-b/alerts"]  # noqa: E731
            assert dead.wait(lambda _: len(got()) >= 2, 10), r.gw.tail()
            assert "not published by this gateway (content does not match its hash" in got()[0]["error"]
            assert "not sealed by a gateway" in got()[1]["error"]
            incident = r.wait_event(event="raised", rule="integrity", device="alerts", timeout=10)
            assert "osh/own-b/alerts" in str(incident["message"])
            time.sleep(1.0)
            assert len(got()) == 2  # the gateway's own events (incident included) pass the check
            env = {**os.environ, **r.env}
            out = subprocess.run([sys.executable, "-m", "gateway", "status"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=60)  # fmt: skip
            assert genuine["alert_id"] in out.stdout and "fake-alert" not in out.stdout, out.stdout + out.stderr
    finally:
        dead.close()
