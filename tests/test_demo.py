"""`oshmon demo` never fails (issue 9): a shortened demo next to a CPU-busy process adds up.

The demo is run as a user runs it (`python -m gateway demo`, a subprocess) while another process
keeps one core busy; its `summary.json` must show every scripted incident's alert, no malfunction
for a sensor the scenario did not silence, no dead letter, and readings stored = published.
Both brokers: mosquitto (installed by `make test`) and the embedded amqtt one, the zero-install path.
The pure checks behind the summary are unit-tested below.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.demo_summary import LiveRecord, check, expectations, readings_in, silenced
from simulators import MineSpec, SimMessage, scenario
from tests.mqtt_helpers import ROOT
from tests.services import require

HOURS = 0.5  # 12 s of live mine time at the default 150×: methane and the silent sensor happen


@pytest.fixture
def busy_core() -> Iterator[None]:
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_short_demo_adds_up_next_to_a_busy_core(broker: str, busy_core: None, tmp_path: Path) -> None:
    if broker == "mosquitto":
        require("mosquitto", "mosquitto")
    out = tmp_path / "demo"
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--out", str(out), "--hours", str(HOURS), "--no-report",
         "--broker", broker],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    verdict = summary["check"]
    assert verdict["ok"], verdict["problems"]
    assert len(verdict["expected"]) == 2 and verdict["missed"] == [], verdict
    assert any("methane" in x for x in verdict["expected"]) and any("silent" in x for x in verdict["expected"])
    assert verdict["spurious_malfunctions"] == []
    assert verdict["gateway_behind"] == []  # the demo's load is well inside what the machine carries
    assert summary["readings_published"] > 10_000
    assert summary["readings_stored"] == summary["readings_published"]
    assert summary["messages_received_by_gateway"] == summary["messages_published"]
    assert summary["dead_letters"] == 0
    assert summary["broker"].startswith(broker)
    assert "adds up" in run.stdout and "try next" in run.stdout
    assert "Control-room board: http://127.0.0.1:" in run.stdout  # the board ran beside the demo
    board_log = (out / "board.log").read_text()
    assert "board on http://127.0.0.1:" in board_log and "Traceback" not in board_log


@pytest.mark.integration
@pytest.mark.slow
def test_demo_stay_keeps_the_board_up_with_the_printed_demo_officer(tmp_path: Path) -> None:
    """`oshmon demo --stay`: the printed URL and password sign in, the board shows the demo's
    alarms, and Ctrl-C ends the demo with its check (exit 0)."""
    out = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "demo", "--out", str(out), "--hours", str(HOURS), "--no-report", "--stay"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        text = "".join(lines)
        found = re.search(r"Control-room board: (http://127\.0\.0\.1:\d+) +\(sign in as (\S+), password (\S+);", text)
        assert found, text[-3000:]
        url, user, password = found.groups()
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.post("/login", data={"username": user, "password": password}).status_code == 303
            events = client.get("/api/board").json()["events"]
        assert any(e["hazard"] == "ch4" and e["event"] == "raised" for e in events), events  # the methane rise
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest[-3000:]
    assert "adds up" in rest


# ---- the checks themselves (pure) ---------------------------------------------------------------

DEMO = scenario("demo").resolve(MineSpec(sites=3).devices())


def test_only_incidents_with_time_to_develop_are_expected() -> None:
    short = [x.label for x in expectations(DEMO.incidents, 0.5 * 3600)]
    assert len(short) == 2 and "methane" in short[0] and "silent" in short[1]
    assert len(expectations(DEMO.incidents, 2.5 * 3600)) == 5  # methane, silent, noise, blasting, oxygen


def _ev(**kw: Any) -> dict[str, Any]:
    return {"event": "raised", "severity": "alarm", "rule": "level", **kw}


def test_check_names_missed_incidents_spurious_malfunctions_and_lost_readings() -> None:
    exp = expectations(DEMO.incidents, 0.5 * 3600)
    methane, silent = exp
    live = LiveRecord(readings_published=100, readings_stored=99, dead_letters=1)
    live.events = [
        _ev(site=methane.site, zone=methane.zone, device="gd-2", hazard="ch4"),
        _ev(
            site="kop-2",
            zone="face-1",
            device="gd-6",
            hazard="device",
            severity="malfunction",
            rule="offline",
            message="gd-6 silent for 31 s",
        ),
        _ev(site="kop-1", zone="profile", device="eu-mine", hazard="h2s", severity="malfunction", rule="not_judged"),
    ]
    v = check(live, exp, silenced(DEMO.incidents))
    assert v.missed == [silent.label]
    assert v.spurious == ["kop-2/face-1/gd-6 offline: gd-6 silent for 31 s"]  # not_judged is configuration
    assert "readings stored 99 != published 100" in v.problems and "1 dead letter(s)" in v.problems
    assert not v.ok
    live = LiveRecord(readings_published=5, readings_stored=5)
    live.events = [
        _ev(site=methane.site, zone=methane.zone, device="pm-1", hazard="ch4", severity="critical"),
        _ev(
            site=silent.site,
            zone="north-adit",
            device=silent.device,
            hazard="device",
            severity="malfunction",
            rule="offline",
        ),
        _ev(
            site=silent.site,
            zone="north-adit",
            device=silent.device,
            hazard="device",
            severity="malfunction",
            rule="gap",
        ),
    ]
    assert check(live, exp, silenced(DEMO.incidents)).ok


def test_gateway_falling_behind_is_a_note_not_a_sensor_fault() -> None:
    live = LiveRecord()
    live.events = [_ev(site="gateway", zone="intake", device="gw", hazard="gateway", severity="malfunction",
                       rule="offline", message="gateway intake is behind: ...")]  # fmt: skip
    v = check(live, [], set())
    assert v.ok and v.spurious == [] and v.gateway_behind == ["gateway intake is behind: ..."]


@pytest.mark.parametrize(
    ("topic", "payload", "n"),
    [
        ("osh/s/z/d/data", b'{"t":1,"hazard":"co","value":1,"unit":"ppm"}', 1),
        ("osh/s/z/d/data", b'{"t":1,"readings":[{"hazard":"co","value":1},{"hazard":"o2","value":20}]}', 2),
        ("osh/s/z/d/data", b'{"hazard":"noise","unit":"dBA","t0":1,"dt":10,"values":[80,81,82]}', 3),
        ("osh/s/z/d/status", b'{"state":"online"}', 0),
    ],
)  # fmt: skip
def test_readings_in_each_payload_shape(topic: str, payload: bytes, n: int) -> None:
    assert readings_in(SimMessage(topic, payload, 1.0)) == n
