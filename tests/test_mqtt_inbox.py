"""paho's thread hands messages to the event loop in bursts (issue 12): one loop wake-up per burst,
not one `call_soon_threadsafe` per message; nothing lost, arrival order kept, acks still manual."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from gateway.config import parse_mqtt_url
from gateway.mqtt import InboundMessage, Inbox, MqttEdge
from tests.mqtt_helpers import Publisher
from tests.services import Mosquitto


def _msg(i: int) -> InboundMessage:
    return InboundMessage("osh/s/z/d/data", str(i).encode(), 1, False, i, 1, 0.0)


async def test_inbox_from_another_thread_loses_no_wakeup_and_keeps_order() -> None:
    inbox = Inbox()
    inbox.bind(asyncio.get_running_loop())
    n = 20_000

    def produce() -> None:
        for i in range(n):
            inbox.put_threadsafe(_msg(i))
            if i % 997 == 0:
                time.sleep(0.001)  # bursts with pauses: the consumer often finds the inbox empty

    thread = threading.Thread(target=produce)
    thread.start()
    got: list[int] = []
    while len(got) < n:
        await asyncio.wait_for(inbox.wait(), 10)  # a lost wake-up would hang here
        got += [int(m.payload) for m in inbox.take(500)]
    thread.join()
    assert got == list(range(n))
    assert inbox.empty() and inbox.qsize() == 0
    assert 0 < inbox.wakeups < n


async def test_inbox_get_and_get_nowait_behave_like_a_queue() -> None:
    inbox = Inbox()
    inbox.bind(asyncio.get_running_loop())
    with pytest.raises(asyncio.QueueEmpty):
        inbox.get_nowait()
    waiter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    threading.Thread(target=inbox.put_threadsafe, args=(_msg(7),)).start()
    assert (await asyncio.wait_for(waiter, 5)).mid == 7
    assert inbox.take(10) == []


@pytest.mark.integration
async def test_a_backlog_arrives_in_order_with_few_loop_wakeups_and_acks_stay_manual(mosquitto: Mosquitto) -> None:
    target, client_id, n = parse_mqtt_url(mosquitto.url), f"t-inbox-{time.time_ns()}", 3000
    subs = ["osh/inbox/#"]
    async with MqttEdge(target, client_id, subscriptions=subs):
        pass  # the persistent session now exists; the broker queues for it while it is away
    pub = Publisher(mosquitto.port)
    try:
        for i in range(n):
            pub.send("osh/inbox/z/d/data", str(i).encode(), wait=i == n - 1)
    finally:
        pub.close()
    async with MqttEdge(target, client_id, subscriptions=subs) as edge:
        got: list[InboundMessage] = []
        while len(got) < n:
            await asyncio.wait_for(edge.messages.wait(), 30)
            got += edge.messages.take(n)
            await asyncio.sleep(0.02)  # busy like the gateway (decoding, writing) while more arrive
        assert [int(m.payload) for m in got] == list(range(n))  # QoS 1, one publisher: broker order kept
        # before: one call_soon_threadsafe (a self-pipe write and a loop wake-up) per message
        assert edge.messages.wakeups <= n // 10, edge.messages.wakeups
        edge.ack_many(got[: n // 2])  # one write of 1500 PUBACKs
        await asyncio.sleep(0.5)
    async with MqttEdge(target, client_id, subscriptions=subs) as edge:  # the unacked half comes again
        again: list[InboundMessage] = []
        end = time.monotonic() + 30
        while len(again) < n - n // 2 and time.monotonic() < end:
            await asyncio.wait_for(edge.messages.wait(), 30)
            again += edge.messages.take(n)
        assert sorted(int(m.payload) for m in again) == list(range(n // 2, n))
        for m in again:
            edge.ack(m)
        await asyncio.sleep(0.5)
