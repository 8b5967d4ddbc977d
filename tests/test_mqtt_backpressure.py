"""Publishing applies back-pressure (issue 9): a broker that falls behind makes the publisher
wait; paho's queue never grows past the window, and nothing is lost or refused.

Before, `publish_nowait` queued without bound: once more than 65,535 QoS 1 messages waited for
their PUBACK, paho ran out of packet ids and answered "Message queue full" (`make demo` crashed
with it). Real mosquitto, stopped with SIGSTOP to play a broker that has fallen behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from gateway.config import parse_mqtt_url
from gateway.mqtt import MqttEdge, PublishError
from tests.mqtt_helpers import Collector
from tests.services import run_mosquitto

pytestmark = pytest.mark.integration

MORE_THAN_PACKET_IDS = 70_000  # paho's packet ids are 16 bit: 65,535 at most in flight


@pytest.mark.slow
async def test_publisher_waits_for_a_stalled_broker_and_loses_nothing() -> None:
    with run_mosquitto() as broker:
        col = Collector(broker.port, ["osh/bp/#"])
        edge = MqttEdge(parse_mqtt_url(broker.url), f"t-bp-{time.time_ns()}", persistent=False, manual_ack=False)
        try:
            async with edge:
                assert broker.proc is not None
                os.kill(broker.proc.pid, signal.SIGSTOP)  # the broker stops answering
                try:
                    sender = asyncio.create_task(_send_all(edge, MORE_THAN_PACKET_IDS))
                    await asyncio.sleep(1.5)
                    assert not sender.done(), "the publisher must wait, not queue without bound"
                    assert edge.outstanding == edge._window  # bounded by the window
                finally:
                    os.kill(broker.proc.pid, signal.SIGCONT)
                await asyncio.wait_for(sender, 120)
                await edge.drain(60)
                assert edge.outstanding == 0
            assert col.wait(lambda c: len(c.messages) >= MORE_THAN_PACKET_IDS, 60), len(col.messages)
            assert len({p for _, _, p, _ in col.messages}) == MORE_THAN_PACKET_IDS  # every one, once
        finally:
            col.close()


async def _send_all(edge: MqttEdge, n: int) -> None:
    for i in range(n):
        await edge.send("osh/bp/z/d/data", str(i).encode(), qos=1)


async def test_refused_message_is_a_clear_error_and_frees_its_slot() -> None:
    with run_mosquitto() as broker:
        edge = MqttEdge(parse_mqtt_url(broker.url), f"t-bp-{time.time_ns()}", persistent=False, manual_ack=False,
                        window=2)  # fmt: skip
        async with edge:
            for _ in range(3):  # more than the window: a leaked slot would block here
                with pytest.raises(PublishError, match="refused"):
                    await asyncio.wait_for(edge.send("osh/bp/+/wild", b"x"), 5)
            await asyncio.wait_for(edge.publish("osh/bp/z/d/data", b"ok"), 10)
            assert edge.outstanding == 0
