"""A backlog drained through the pipelined intake (issue 12): everything stored, nothing twice,
nothing reordered per channel; and two gateway processes splitting the sites of one broker.

Real mosquitto (persistent sessions queue while the gateway is stopped), real `oshmon run`
subprocesses, real SQLite files. Counts and order are asserted, never speed (bench/drain.py).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

import pytest

from bench.drain import payload
from tests.mqtt_helpers import GatewayProcess, Publisher
from tests.services import Mosquitto

pytestmark = pytest.mark.integration

DEVICES = 50


def _env(broker: Mosquitto, tmp: Path, name: str, sites: str = "") -> dict[str, str]:
    return {
        "OSH_MQTT_URL": broker.url, "OSH_STORE": "sqlite", "OSH_SQLITE_PATH": str(tmp / f"{name}.sqlite"),
        "OSH_STATE_DIR": str(tmp / f"state-{name}"), "OSH_PROFILE": "us-msha",
        "OSH_MQTT_CLIENT_ID": f"t-drain-{name}-{time.time_ns()}", "OSH_SINKS": '{"sinks": []}',
        "OSH_HEALTH": '{"default_interval_s": 3600}', "OSH_SERVE_SITES": sites,
        "OSH_BATCH_MAX_MESSAGES": "500",  # several batches in the pipeline at once
    }  # fmt: skip


def _publish(port: int, site: str, kind: str, n: int, t0: float) -> None:
    pub = Publisher(port)
    try:
        for i in range(n):
            d = i % DEVICES
            name = "dev" if kind == "single" else "gas"  # one device never mixes two seq counters
            pub.send(f"osh/{site}/z/{name}-{d:03d}/data", _payload(kind, i, t0), wait=i == n - 1)
    finally:
        pub.close()


def _payload(kind: str, i: int, t0: float) -> bytes:
    # bench.drain's known pattern, spread over DEVICES devices instead of 1000
    return payload(kind, (i // DEVICES) * 1000 + i % DEVICES, t0)


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        return list(con.execute(sql))


def _wait_stored(db: Path, n: int, gw: GatewayProcess, timeout: float = 120.0) -> int:
    end, got = time.time() + timeout, 0
    while time.time() < end:
        with contextlib.suppress(sqlite3.Error):
            got = int(_rows(db, "SELECT COUNT(*) FROM readings")[0][0])
            if got >= n:
                time.sleep(1.0)  # anything beyond n (a duplicate) would show up now
                return int(_rows(db, "SELECT COUNT(*) FROM readings")[0][0])
        time.sleep(0.2)
    raise AssertionError(f"{got} of {n} readings stored: {gw.tail()}")


@pytest.mark.slow
def test_a_drained_backlog_is_stored_whole_and_in_order_per_channel(mosquitto: Mosquitto, tmp_path: Path) -> None:
    n, t0 = 5000, float(int(time.time()) - 3600)
    gw = GatewayProcess(_env(mosquitto, tmp_path, "one"), tmp_path / "gw.log")
    gw.start(mosquitto.port).stop()  # its persistent session now queues for it
    _publish(mosquitto.port, "drain-1", "single", n, t0)
    _publish(mosquitto.port, "drain-1", "4gas", n // 5, t0 + 0.5)
    gw.start(mosquitto.port)
    try:
        db = tmp_path / "one.sqlite"
        assert _wait_stored(db, n + 4 * (n // 5), gw) == n + 4 * (n // 5)  # stored = published, once
    finally:
        assert gw.stop() == 0
    co = _rows(db, "SELECT device, t_ms, value FROM readings WHERE hazard='co' ORDER BY device, t_ms")
    singles = [r for r in co if str(r[0]).startswith("dev-")]
    expected = sorted(
        (f"dev-{i % DEVICES:03d}", round((t0 + i // DEVICES) * 1000), float(((i // DEVICES) * 1000 + i % DEVICES) % 17))
        for i in range(n)
    )  # fmt: skip
    assert singles == expected
    # per-device seq numbers arrive in order: a reordered or lost batch would raise a seq-gap alert
    assert _rows(db, "SELECT rule, device, message FROM alert WHERE site='drain-1' AND rule != 'not_judged'") == []


@pytest.mark.slow
def test_two_gateways_split_the_sites_of_one_broker(mosquitto: Mosquitto, tmp_path: Path) -> None:
    n, t0 = 1000, float(int(time.time()) - 3600)
    gws = {
        name: GatewayProcess(_env(mosquitto, tmp_path, name, f"{site},probe"), tmp_path / f"{name}.log")
        for name, site in (("a", "split-a"), ("b", "split-b"))
    }
    try:
        for gw in gws.values():
            gw.start(mosquitto.port)
        for site in ("split-a", "split-b", "split-c"):  # split-c: served by neither
            _publish(mosquitto.port, site, "single", n, t0)
        for name, gw in gws.items():
            assert _wait_stored(tmp_path / f"{name}.sqlite", n, gw) == n
    finally:
        for gw in gws.values():
            gw.stop()
    for name in gws:
        sites = _rows(tmp_path / f"{name}.sqlite", "SELECT site, COUNT(*) FROM readings GROUP BY site")
        assert sites == [(f"split-{name}", n)]
