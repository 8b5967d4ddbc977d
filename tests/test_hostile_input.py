"""Hostile input against the running gateway (issue 15 points 6-8, issue 9 point 3, issue 13 point 8).

Real mosquitto, `oshmon run` as a subprocess, a real SQLite file. docs/security.md ("Hostile
input") maps each threat to the test here that shows it is handled.
"""

from __future__ import annotations

import re
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.codec import MAX_PAYLOAD_BYTES
from storage.base import HistoryQuery, RecordKind
from storage.sqlite import SqliteStore
from tests.mqtt_helpers import Collector, Publisher, gateway
from tests.services import Mosquitto, run_mosquitto
from tests.test_gateway_integration import env_for

pytestmark = pytest.mark.integration
DEPLOY_CONF = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto.conf"


def readings(db: Path, device: str) -> list[dict[str, Any]]:
    store = SqliteStore(db)
    try:
        return list(store.query(HistoryQuery(RecordKind.READINGS, device=device)))
    finally:
        store.close()


def dead_from(col: Collector, device: str) -> list[dict[str, Any]]:
    return [d for d in col.json_on("/deadletter") if f"/{device}/" in d["topic"]]


HOSTILE = [
    (b'{"t": %d, "hazard": "co", "value": true, "unit": "ppm"}', "value: must be a JSON number"),
    (b'{"t": %d, "hazard": "co", "value": "12.5", "unit": "ppm"}', "value: must be a JSON number"),
    (b'{"t": %d, "hazard": "co", "value": 1, "unit": "ppm", "seq": true}', "seq: must be a JSON integer"),
    (b'{"t": %d, "hazard": "co", "value": 1, "value": 999, "unit": "ppm"}', 'key "value" appears twice'),
    (b'{"t": %d, "hazard": "co", "hazard": "h2s", "value": 1, "unit": "ppm"}', 'key "hazard" appears twice'),
    (
        b'{"t": %d, "hazard": "co", "value": 1, "unit": "ppm", "readings": [{"hazard":"h2s","value":5,"unit":"x"}]}',
        "mixes 'value' and 'readings'",
    ),
    (b'{"hazard": "co", "unit": "ppm", "t0": %d, "dt": 1e-9, "values": [1, 2, 3]}', "dt=1e-09 s"),
]


def test_payloads_that_change_meaning_are_dead_lettered_and_nothing_is_stored(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Issue 9 point 3, issue 15 point 6: each of these was stored (as 1.0, 999, h2s, seq 1, ...)."""
    col = Collector(mosquitto.port, ["osh/deadletter"])
    pub = Publisher(mosquitto.port)
    t = int(time.time()) - 60
    try:
        with gateway(env_for(mosquitto, tmp_path), mosquitto.port, tmp_path / "gw.log") as gw:
            for raw, _ in HOSTILE:
                pub.send("osh/kop-1/z/gd-strict/data", raw % t)
            pub.send("osh/kop-1/z/gd-strict/data", {"t": t + 1, "hazard": "co", "value": 12.5, "unit": "ppm"})
            assert col.wait(lambda c: len(dead_from(c, "gd-strict")) == len(HOSTILE), 20), gw.tail()
            errors = [d["error"] for d in dead_from(col, "gd-strict")]
            for (_, reason), error in zip(HOSTILE, errors, strict=True):
                assert reason in error
            db = tmp_path / "osh.sqlite"
            assert col.wait(lambda _: len(readings(db, "gd-strict")) == 1, 10)
            (row,) = readings(db, "gd-strict")
            assert (row["hazard"], row["value"]) == ("co", 12.5)
    finally:
        col.close()
        pub.close()


def oversized(size: int) -> bytes:
    head = b'{"t": 1, "hazard": "co", "unit": "ppm", "value": 1, "pad": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def test_oversized_payload_is_dead_lettered_unparsed_and_the_next_reading_stored(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Issue 15 point 7, gateway side (a broker without a packet limit): 300 KiB → dead letter with
    the size and only the first KiB; the valid reading right after it is stored."""
    col = Collector(mosquitto.port, ["osh/deadletter"])
    pub = Publisher(mosquitto.port)
    try:
        with gateway(env_for(mosquitto, tmp_path), mosquitto.port, tmp_path / "gw.log") as gw:
            pub.send("osh/kop-1/z/gd-big/data", oversized(300 * 1024))
            pub.send("osh/kop-1/z/gd-big/data", {"t": time.time() - 5, "hazard": "co", "value": 3.0, "unit": "ppm"})
            assert col.wait(lambda c: len(dead_from(c, "gd-big")) == 1, 20), gw.tail()
            (dead,) = dead_from(col, "gd-big")
            assert dead["payload_bytes"] == 300 * 1024
            assert "307200 bytes" in dead["error"] and "256 KiB" in dead["error"]
            assert len(dead["payload"]) <= 1024
            assert col.wait(lambda _: len(readings(tmp_path / "osh.sqlite", "gd-big")) == 1, 10)
    finally:
        col.close()
        pub.close()


def shipped_packet_limit() -> int:
    found = re.search(r"^max_packet_size (\d+)$", DEPLOY_CONF.read_text(), re.M)
    assert found, "deploy/mosquitto.conf must set max_packet_size (SPEC §2.1: 256 KiB payloads)"
    return int(found.group(1))


def test_shipped_broker_config_refuses_oversized_packets_and_passes_every_valid_one(tmp_path: Path) -> None:
    """Issue 15 point 7, broker side: with deploy/mosquitto.conf's max_packet_size, 300 KiB never
    reaches the gateway (the sender is disconnected); a payload just over 256 KiB still does and is
    dead-lettered; a valid reading from another device is stored."""
    limit = shipped_packet_limit()
    topic = "osh/kop-1/" + "z" * 64 + "/" + "d" * 64 + "/data"  # the longest topic the contract allows
    assert MAX_PAYLOAD_BYTES + len(topic) + 2 + 2 + 5 + 64 < limit < MAX_PAYLOAD_BYTES + 16 * 1024
    with run_mosquitto(f"max_packet_size {limit}\n") as broker:
        col = Collector(broker.port, ["osh/deadletter"])
        big, ok = Publisher(broker.port), Publisher(broker.port)
        try:
            with gateway(env_for(broker, tmp_path), broker.port, tmp_path / "gw.log") as gw:
                big.send("osh/kop-1/z/gd-huge/data", oversized(300 * 1024), qos=0)
                assert _wait(lambda: not big.client.is_connected(), 10), "the broker must drop the sender"
                ok.send(topic, oversized(MAX_PAYLOAD_BYTES + 1))
                ok.send("osh/kop-1/z/gd-fine/data", {"t": time.time() - 5, "hazard": "co", "value": 3.0, "unit": "ppm"})
                assert col.wait(lambda c: len(dead_from(c, "d" * 64)) == 1, 20), gw.tail()
                assert dead_from(col, "d" * 64)[0]["payload_bytes"] == MAX_PAYLOAD_BYTES + 1
                assert col.wait(lambda _: len(readings(tmp_path / "osh.sqlite", "gd-fine")) == 1, 10)
                assert not dead_from(col, "gd-huge"), "300 KiB must not reach the gateway"
                assert "oversize" in (broker.dir / "mosquitto.log").read_text()
        finally:
            col.close()
            big.client.loop_stop()
            ok.close()


def _wait(pred: Any, timeout: float) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return bool(pred())


def test_huge_topic_gives_a_small_dead_letter_and_log_line(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Issue 15 point 8: a 60 KB topic gave a 180 KB dead letter and log line."""
    col = Collector(mosquitto.port, ["osh/deadletter"])
    pub = Publisher(mosquitto.port)
    log = tmp_path / "gw.log"
    try:
        with gateway(env_for(mosquitto, tmp_path), mosquitto.port, log) as gw:
            topic = "osh/kop-1/z/" + "L" * 60_000 + "/data"
            pub.send(topic, b'{"t": 1, "hazard": "co", "value": 1, "unit": "ppm"}')
            assert col.wait(lambda c: any("LLLL" in d["topic"] for d in c.json_on("/deadletter")), 20), gw.tail()
            raw = next(p for _, t, p, _ in col.messages if b"LLLL" in p)
            assert len(raw) < 3000, f"dead letter of {len(raw)} bytes"
            assert f"[{len(topic)} chars]" in raw.decode()
            time.sleep(0.5)
            assert max(len(line) for line in log.read_text().splitlines()) < 2000
    finally:
        col.close()
        pub.close()


def test_repeated_dead_letters_are_logged_once_with_all_published(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Issue 13 point 8: a sensor with a wrong clock wrote 14,040 identical warnings in a minute.
    Now the first is logged, the rest are counted (summary when the minute ends); every one of them
    is still on osh/deadletter."""
    col = Collector(mosquitto.port, ["osh/deadletter"])
    pub = Publisher(mosquitto.port)
    log = tmp_path / "gw.log"
    future = time.time() + 3600
    try:
        with gateway(env_for(mosquitto, tmp_path), mosquitto.port, log) as gw:
            for i in range(300):
                value = {"t": future + i, "hazard": "co", "value": 1.0, "unit": "ppm"}
                pub.send("osh/kop-1/z/gd-clock/data", value, wait=i == 299)
            assert col.wait(lambda c: len(dead_from(c, "gd-clock")) == 300, 30), gw.tail()
            assert all("in the future" in d["error"] for d in dead_from(col, "gd-clock"))
            time.sleep(1.5)  # a tick or two: nothing more is logged within the minute
            lines = [ln for ln in log.read_text().splitlines() if "gd-clock" in ln]
            assert len(lines) == 1, lines[:5]
            assert "in the future" in lines[0]
    finally:
        col.close()
        pub.close()


def test_control_characters_in_an_ack_do_not_reach_the_log_raw(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Issue 15 point 8: ESC/OSC sequences and newlines in ack `by`/`note` reached the log raw and
    could forge log lines."""
    col = Collector(mosquitto.port, ["osh/+/alerts", "osh/deadletter"])
    pub = Publisher(mosquitto.port)
    log = tmp_path / "gw.log"
    t0 = int(time.time()) - 1800
    try:
        with gateway(env_for(mosquitto, tmp_path), mosquitto.port, log) as gw:
            for i in range(120):
                pub.send("osh/kop-1/z/gd-ack/data", {"t": t0 + 10 * i, "hazard": "co", "value": 150.0, "unit": "ppm"})
            assert col.wait(lambda c: any(a["device"] == "gd-ack" for a in c.json_on("/alerts")), 30), gw.tail()
            alert_id = next(a["alert_id"] for a in col.json_on("/alerts") if a["device"] == "gd-ack")
            forged = "2026-11-30 09:00:00,000 INFO oshmon: all alarms cleared"
            ack = {"alert_id": alert_id, "by": "Ana\x1b]0;owned\x07\x1b[2J", "note": f"fan on\n{forged}"}
            pub.send("osh/kop-1/ack", ack)
            acked = lambda c: any(a["event"] == "acknowledged" for a in c.json_on("/alerts"))  # noqa: E731
            assert col.wait(lambda c: acked(c) or any("ack" in d["topic"] for d in c.json_on("/deadletter")), 20)
            time.sleep(0.5)
            text = log.read_text()
            assert "\x1b" not in text and "\x07" not in text
            assert not any(line.startswith(forged) for line in text.splitlines())
            # the checkpoint holds ack names and notes: private to the gateway's user (issue 15 point 8)
            state = tmp_path / "state"
            assert stat.S_IMODE(state.stat().st_mode) == 0o700
            assert all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in state.rglob("*") if p.is_file())
    finally:
        col.close()
        pub.close()


async def test_the_mqtt_edge_keeps_only_the_head_of_an_oversized_message(mosquitto: Mosquitto) -> None:
    """Issue 15 point 7: a 100 MB payload sat whole in the gateway's queue (99 → 396 MiB). Now the
    MQTT thread keeps its first KiB and its size; nothing bigger than 256 KiB is ever queued."""
    import asyncio

    from gateway.config import parse_mqtt_url
    from gateway.mqtt import OVERSIZE_HEAD_BYTES, MqttEdge

    edge = MqttEdge(parse_mqtt_url(mosquitto.url), f"t-big-{time.time_ns()}", subscriptions=["osh/big/#"],
                    persistent=False)  # fmt: skip
    pub = Publisher(mosquitto.port)
    try:
        async with edge:
            await asyncio.sleep(0.3)  # subscribed
            pub.send("osh/big/z/d/data", oversized(8 * 2**20))
            pub.send("osh/big/z/d/data", oversized(MAX_PAYLOAD_BYTES))
            first = await asyncio.wait_for(edge.messages.get(), 20)
            second = await asyncio.wait_for(edge.messages.get(), 20)
    finally:
        pub.close()
    assert first.oversize_bytes == 8 * 2**20 and len(first.payload) == OVERSIZE_HEAD_BYTES
    assert second.oversize_bytes == 0 and len(second.payload) == MAX_PAYLOAD_BYTES
