"""Capacity of the demo's MQTT path: simulated sensors → broker → a consumer that acks each message.

    .venv/bin/python -m bench.demo_path [--messages 20000] [--update docs/benchmarks.md]

The demo's own pieces: the sensors publish with `MqttEdge.send` (QoS 1, back-pressure window),
the consumer is an `MqttEdge` with manual acks (as the gateway), the payloads are the demo's
(`simulate(..., scenario("demo"))`). Three brokers: amqtt on the publisher's own event loop
(how `oshmon demo` ran before issue 9), amqtt in its own process, and mosquitto. The figure that
matters is messages/s end to end; CPU is this process (sensors + consumer) and the broker's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import machine, update_section
from gateway.broker import EmbeddedBroker
from gateway.config import parse_mqtt_url
from gateway.demo_broker import DemoBroker, find_mosquitto
from gateway.mqtt import MqttEdge
from simulators import MineSpec, scenario, simulate

BEGIN, END = "<!-- demo-path:begin -->", "<!-- demo-path:end -->"
WINDOW = 500


@dataclass(frozen=True, slots=True)
class Result:
    broker: str
    messages: int
    wall_s: float
    client_cpu_s: float
    broker_cpu_s: float | None

    @property
    def rate(self) -> float:
        return self.messages / self.wall_s


@contextlib.asynccontextmanager
async def broker_url(kind: str) -> AsyncIterator[str]:
    if kind == "amqtt-same-loop":
        async with EmbeddedBroker() as b:
            yield b.url
    else:
        async with DemoBroker("amqtt" if kind == "amqtt-process" else "mosquitto") as d:
            yield d.url


async def one_run(kind: str, payloads: list[tuple[str, bytes]]) -> Result:
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    async with broker_url(kind) as url:
        target = parse_mqtt_url(url)
        consumer = MqttEdge(target, f"bench-gw-{time.time_ns()}", subscriptions=["osh/#"], persistent=False)
        sensors = MqttEdge(target, f"bench-sensors-{time.time_ns()}", persistent=False, manual_ack=False, window=WINDOW)
        async with consumer, sensors:
            await asyncio.sleep(0.3)
            cpu0, t0 = time.process_time(), time.perf_counter()
            got = asyncio.create_task(_consume(consumer, len(payloads)))
            for topic, payload in payloads:
                await sensors.send(topic, payload)
            await sensors.drain(300)
            await asyncio.wait_for(got, 300)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (children.ru_utime + children.ru_stime) - (children0.ru_utime + children0.ru_stime)
    return Result(kind, len(payloads), wall, cpu, None if kind == "amqtt-same-loop" else child_cpu)


async def _consume(edge: MqttEdge, n: int) -> None:
    for _ in range(n):
        msg = await edge.messages.get()
        edge.ack(msg)


def demo_payloads(n: int) -> list[tuple[str, bytes]]:
    spec = MineSpec(sites=3, devices_per_hazard=1, workers_per_site=2)
    msgs = simulate(spec, scenario("demo"), time.time() - 86400.0, 3 * 3600.0, 5.0, 1)
    out = [(m.topic.replace("/status", "/statux"), m.payload) for m, _ in zip(msgs, range(n), strict=False)]
    return out  # statuses renamed: retained messages would pile up across runs of one broker


def report(results: list[Result], rounds: int, n: int) -> str:
    rows = "\n".join(
        f"| {r.broker} | {r.rate:,.0f} | {r.client_cpu_s / r.messages * 1e4:.1f} | "
        + (f"{r.broker_cpu_s / r.messages * 1e4:.1f} |" if r.broker_cpu_s is not None else "(in the client) |")
        for r in results
    )
    return f"""{BEGIN}
## Demo MQTT path (`oshmon demo`)

Command: `.venv/bin/python -m bench.demo_path --messages {n} --rounds {rounds}` ({time.strftime("%Y-%m-%d")}).
Machine: {machine()}.

{n:,} of the demo's messages (QoS 1, ~160 bytes) from an `MqttEdge` publisher with a {WINDOW}-message
back-pressure window, through the broker, to an `MqttEdge` consumer that acks each one (no storage,
no rules: this is the MQTT path alone). Best of {rounds} rounds; CPU per 10,000 messages.

| broker | messages/s end to end | sensors + consumer CPU s | broker CPU s |
|---|---|---|---|
{rows}

Before issue 9 `oshmon demo` published ~1,750 messages/s through amqtt on its own loop: at 5.5 CPU s
per 10,000 messages that loop needed a whole core for MQTT alone, before the gateway's own work, so
it fell behind and crashed. Now it publishes ~375 messages/s (3 sites, 20 s gas interval, 2-minute
dust and noise series, 150× speed), about a quarter of what amqtt carries in its own process and a
ninth of mosquitto, leaving CPU for the gateway, the sensors and the backfill on 2 cores.
Chosen: mosquitto when installed, else amqtt in its own process (gateway/demo_broker.py).
{END}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--update", type=Path, help="replace the demo-path section of this Markdown file")
    args = parser.parse_args(argv)
    payloads = demo_payloads(args.messages)
    kinds = ["amqtt-same-loop", "amqtt-process"] + (["mosquitto"] if find_mosquitto() else [])
    best: dict[str, Result] = {}
    for _ in range(args.rounds):
        for kind in kinds:
            r = asyncio.run(one_run(kind, payloads))
            print(f"{kind}: {r.rate:,.0f} msg/s, client CPU {r.client_cpu_s:.1f} s, broker CPU {r.broker_cpu_s}")
            if kind not in best or r.rate > best[kind].rate:
                best[kind] = r
    section = report(list(best.values()), args.rounds, args.messages)
    print(section)
    if args.update:
        update_section(args.update, BEGIN, END, section)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    sys.exit(main())
