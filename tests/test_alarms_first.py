"""Alarms first: urgent alert traffic overtakes a backlog of malfunction traffic (publisher and sinks)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from alerts.sinks.base import Delivery
from alerts.sinks.dispatcher import Dispatcher
from alerts.types import AlertEvent, AlertEventKind
from gateway.publisher import AlertPublisher
from rules.types import RuleKind, Severity

T0 = 1_800_000_000.0
BASE = AlertEvent(
    "a0", AlertEventKind.RAISED, Severity.MALFUNCTION, RuleKind.OFFLINE, "kop-1", "z1", "d0", "device", None,
    None, None, "", T0, T0, "", "", "", "offline",
)  # fmt: skip


class SlowEdge:
    """Records publish order; every PUBACK takes `delay_s`."""

    def __init__(self, delay_s: float = 0.001) -> None:
        self.order: list[str] = []
        self.delay_s = delay_s

    async def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, wait_s: float = 30.0
    ) -> None:
        self.order.append(topic)
        await asyncio.sleep(self.delay_s)


async def test_publisher_sends_an_urgent_message_before_a_routine_backlog() -> None:
    edge = SlowEdge()
    pub = AlertPublisher(edge, window=4)
    for i in range(200):
        pub.submit(f"routine/{i}", b"x", urgent=False)
    stop = asyncio.Event()
    task = asyncio.create_task(pub.run(stop))
    await asyncio.sleep(0.01)
    pub.submit("urgent/critical", b"x", urgent=True, retain=True)
    pub.submit("urgent/state", b"x", urgent=True, retain=True)
    stop.set()
    await task
    assert len(edge.order) == 202 and pub.idle()
    pos = edge.order.index("urgent/critical")
    assert pos < 40, f"the critical message went out after {pos} routine ones"
    assert edge.order[pos + 1] == "urgent/state"  # order kept within a lane
    assert [t for t in edge.order if t.startswith("routine/")] == [f"routine/{i}" for i in range(200)]


class Slow:
    name = "slow"

    def __init__(self) -> None:
        self.got: list[AlertEvent] = []

    async def send(self, delivery: Delivery) -> None:
        self.got.append(delivery.event)
        await asyncio.sleep(0.001)

    async def aclose(self) -> None:
        pass


async def test_a_sink_delivers_alarms_before_queued_malfunctions() -> None:
    sink = Slow()
    async with Dispatcher([sink], queue_size=1000) as d:
        for i in range(300):
            d.submit(replace(BASE, alert_id=f"m{i}", device=f"d{i}"))
        await asyncio.sleep(0.01)
        d.submit(replace(BASE, alert_id="crit", severity=Severity.CRITICAL, rule=RuleKind.LEVEL, hazard="ch4"))
        assert await d.drain(10)
    ids = [e.alert_id for e in sink.got]
    assert len(ids) == 301 and ids.index("crit") < 20


async def test_a_full_sink_queue_drops_routine_deliveries_first() -> None:
    sink = Slow()
    d = Dispatcher([sink], queue_size=5)  # not started: nothing is delivered while we fill it
    d.submit(replace(BASE, alert_id="crit", severity=Severity.CRITICAL))
    for i in range(10):
        d.submit(replace(BASE, alert_id=f"m{i}"))
    assert d.counts["dropped:slow"] == 6
    async with d:
        assert await d.drain(5)
    assert [e.alert_id for e in sink.got] == ["crit", "m6", "m7", "m8", "m9"]
