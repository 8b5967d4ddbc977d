"""The embedded amqtt broker of `oshmon demo`, exercised with a real paho-mqtt 2 client."""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import threading
from collections import defaultdict
from collections.abc import Iterable

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import EmbeddedBroker
from rules.errors import ConfigError

TIMEOUT_S = 10.0


class Paho:
    """A paho client running its network loop in a thread; awaits without blocking the broker."""

    def __init__(self, client_id: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self._connected.set()
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.put(m)

    async def connect(self, port: int) -> None:
        await asyncio.to_thread(self.client.connect, "127.0.0.1", port, 30)
        self.client.loop_start()
        assert await asyncio.to_thread(self._connected.wait, TIMEOUT_S)

    async def subscribe(self, topic: str) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert await asyncio.to_thread(self._subscribed.wait, TIMEOUT_S)

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        await asyncio.to_thread(info.wait_for_publish, TIMEOUT_S)  # QoS 1: returns on PUBACK
        assert info.is_published()

    async def next(self) -> mqtt.MQTTMessage:
        return await asyncio.to_thread(self.messages.get, True, TIMEOUT_S)

    async def close(self) -> None:
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)


async def test_publish_subscribe_qos1_and_retained(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with EmbeddedBroker() as broker:
        assert broker.port > 0 and broker.url == f"mqtt://127.0.0.1:{broker.port}"
        sensor, board = Paho("gd-17"), Paho("board")
        await sensor.connect(broker.port)
        await sensor.publish("osh/kop-1/face-2/gd-17/status", b'{"state":"online"}', retain=True)
        await board.connect(broker.port)
        await board.subscribe("osh/kop-1/#")
        retained = await board.next()
        assert (retained.topic, retained.payload, retained.retain) == (
            "osh/kop-1/face-2/gd-17/status",
            b'{"state":"online"}',
            True,
        )
        await sensor.publish("osh/kop-1/face-2/gd-17/data", b'{"t":1,"hazard":"co","value":3,"unit":"ppm"}')
        live = await board.next()
        assert (live.topic, live.qos, live.retain) == ("osh/kop-1/face-2/gd-17/data", 1, False)
        assert live.payload.startswith(b'{"t":1')
        await sensor.close()
        await board.close()
    assert not [r for r in caplog.records if r.name.startswith("amqtt")], caplog.text
    with pytest.raises(RuntimeError, match="not running"):
        _ = broker.port


async def test_zero_length_retained_message_clears_it() -> None:
    async with EmbeddedBroker() as broker:
        officer = Paho("officer")
        await officer.connect(broker.port)
        topic = "osh/kop-1/alarms/face-2/gd-17/co/stel"
        await officer.publish(topic, b'{"state":"raised"}', retain=True)
        await officer.publish(topic, b"", retain=True)
        late = Paho("late-board")
        await late.connect(broker.port)
        await late.subscribe("osh/kop-1/alarms/#")
        await officer.publish("osh/kop-1/alarms/marker", b"m", retain=False)
        first = await late.next()
        assert first.topic == "osh/kop-1/alarms/marker"  # nothing retained arrived before it
        await officer.close()
        await late.close()


async def test_stops_cleanly_with_a_client_still_connected() -> None:
    broker = EmbeddedBroker()
    await broker.start()
    client = Paho("still-here")
    await client.connect(broker.port)
    await asyncio.wait_for(broker.stop(), TIMEOUT_S)
    await broker.stop()  # idempotent
    await asyncio.to_thread(client.client.loop_stop)
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", 0))


async def test_a_taken_port_is_a_config_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            async with EmbeddedBroker(port=port):
                pass
    assert not caplog.records, caplog.text  # one-line reason, no traceback logged by amqtt


def per_topic(messages: Iterable[tuple[str, bytes | bytearray]]) -> dict[str, list[bytes | bytearray]]:
    """MQTT keeps the order of one publisher's messages per topic, not across topics."""
    out: dict[str, list[bytes | bytearray]] = defaultdict(list)
    for topic, payload in messages:
        out[topic].append(payload)
    return out


async def test_a_simulated_mine_passes_through_whole() -> None:
    from simulators import MineSpec, scenario, simulate

    msgs = list(simulate(MineSpec(), scenario("silent-sensor"), 1795410000.0, 900.0, 5.0, seed=3))
    data = [m for m in msgs if m.topic.endswith("/data")]
    async with EmbeddedBroker() as broker, EmbeddedBroker() as other:
        assert other.port != broker.port
        gateway, sensors = Paho("gateway"), Paho("sensors")
        await gateway.connect(broker.port)
        await gateway.subscribe("osh/+/+/+/data")
        await sensors.connect(broker.port)
        for m in msgs:
            sensors.client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)
        await sensors.publish("osh/kop-1/x/y/data", b"end")  # QoS 1 and in order: all went before
        got = [await gateway.next() for _ in range(len(data) + 1)]
        assert per_topic((g.topic, g.payload) for g in got[:-1]) == per_topic((m.topic, m.payload) for m in data)
        board = Paho("late-board")
        await board.connect(broker.port)
        await board.subscribe("osh/+/+/+/status")
        retained = [await board.next() for _ in MineSpec().devices()]
        states = {m.topic: orjson.loads(m.payload)["state"] for m in retained}
        assert states.pop("osh/kop-1/north-adit/gd-1/status") == "offline"  # silent since +10 min
        assert set(states.values()) == {"online"} and len(states) == len(retained) - 1
        for c in (gateway, sensors, board):
            await c.close()
