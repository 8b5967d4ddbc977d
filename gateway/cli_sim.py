"""`oshmon simulate` and `oshmon backfill`: simulated mine sites, live over MQTT or straight in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from gateway.backfill import backfill
from gateway.cli_opts import ConfigOpt
from gateway.config import Settings, load_settings, parse_mqtt_url
from gateway.mqtt import MqttEdge
from gateway.runtime import Runtime
from gateway.timeparse import parse_cli_time
from rules.errors import ConfigError
from simulators import SCENARIO_NAMES, MineSpec, Scenario, SimMessage, apaced, live_start, scenario, simulate

PUBLISH_WINDOW = 500  # QoS 1 publishes awaiting PUBACK at once (back-pressure)
BACKFILL_SERIES_S = 600.0  # dust/noise series: one message per device per 10 min in a backfill


SitesOpt = Annotated[int, typer.Option(help="Number of mine sites.", min=1)]
DevicesOpt = Annotated[int, typer.Option(help="Devices of each kind per zone.", min=1)]
WorkersOpt = Annotated[int, typer.Option(help="Workers with personal monitors per site.", min=0)]
ScenarioOpt = Annotated[str, typer.Option("--scenario", help=f"One of: {', '.join(SCENARIO_NAMES)}.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed (same seed, same readings).")]


def mine_spec(sites: int, devices: int, workers: int, noise_sample_s: float = 10.0) -> MineSpec:
    try:
        return MineSpec(
            sites=sites, devices_per_hazard=devices, workers_per_site=workers, noise_sample_s=noise_sample_s
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def pick_scenario(name: str) -> Scenario:
    try:
        return scenario(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        transient=True,
    )


def simulate_cmd(
    sites: SitesOpt = 2,
    devices: DevicesOpt = 1,
    workers: WorkersOpt = 2,
    scenario_name: ScenarioOpt = "demo",
    seed: SeedOpt = 1,
    speed: Annotated[float, typer.Option(help="Event time runs this many times faster than the clock.")] = 1.0,
    duration: Annotated[float, typer.Option(help="Event-time length in seconds.", min=1)] = 3 * 3600.0,
    interval: Annotated[float, typer.Option(help="Seconds between gas readings.", min=0.1)] = 5.0,
    start: Annotated[str | None, typer.Option(help="Event-time start (RFC 3339); default: now.")] = None,
    url: Annotated[str | None, typer.Option(help="Broker URL (default OSH_MQTT_URL).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Publish simulated sensors (gas, dust, noise, personal monitors) with scripted incidents."""
    settings = load_settings(config)
    if speed <= 0:
        raise ConfigError("--speed must be > 0")
    spec = mine_spec(sites, devices, workers)
    scen = pick_scenario(scenario_name)
    t0 = parse_cli_time(start, "--start") if start else live_start(time.time(), duration, speed)
    msgs = simulate(spec, scen, t0, duration, interval, seed, prefix=settings.topic_prefix)
    sent = asyncio.run(_publish(url or settings.mqtt_url, msgs, speed, t0, duration))
    typer.echo(f"published {sent} messages ({sites} sites, scenario {scenario_name}, seed {seed})")


async def _publish(url: str, msgs: Iterable[SimMessage], speed: float, t0: float, duration: float) -> int:
    edge = MqttEdge(
        parse_mqtt_url(url), f"oshmon-sim-{time.time_ns()}"[:64], persistent=False, manual_ack=False,
        window=PUBLISH_WINDOW,
    )  # fmt: skip
    sent = 0
    async with edge:
        with progress_bar() as bar:
            task = bar.add_task("simulating", total=duration)
            async for m in apaced(msgs, speed):
                await edge.send(m.topic, m.payload, m.qos, m.retain)  # waits while the window is full
                sent += 1
                if sent % 200 == 0:
                    bar.update(task, completed=m.t_s - t0)
            await edge.drain()
    return sent


def backfill_cmd(
    days: Annotated[float, typer.Option(help="Days of data to generate.", min=0.01)] = 30.0,
    end: Annotated[str | None, typer.Option(help="End (YYYY-MM-DD or RFC 3339); default: now.")] = None,
    sites: SitesOpt = 2,
    devices: DevicesOpt = 1,
    workers: WorkersOpt = 2,
    scenario_name: ScenarioOpt = "month",
    seed: SeedOpt = 1,
    interval: Annotated[float, typer.Option(help="Seconds between gas readings.", min=1)] = 60.0,
    gas_series: Annotated[
        float | None, typer.Option(help="Gas loggers send a series per hazard every this many seconds.", min=1)
    ] = None,
    noise_sample: Annotated[float, typer.Option(help="Seconds of one noise LAeq value (at most 60).")] = 10.0,
    config: ConfigOpt = None,
) -> None:
    """Fill the configured store with simulated history, straight through the rules (no broker)."""
    settings = load_settings(config)
    t_end = parse_cli_time(end, "--end") if end else time.time()
    spec, scen = mine_spec(sites, devices, workers, noise_sample), pick_scenario(scenario_name)
    counts = run_backfill(settings, spec, scen, t_end - days * 86400.0, days * 86400.0, interval, seed, gas_series)
    where = settings.sqlite_path if settings.store == "sqlite" else settings.influx_url
    typer.echo(
        f"backfilled {counts['readings']} readings, {counts['alert_events']} alert events "
        f"into {settings.store} ({where})"
    )


def run_backfill(
    settings: Settings,
    spec: MineSpec,
    scen: Scenario,
    t0: float,
    duration: float,
    interval: float,
    seed: int,
    gas_series_s: float | None = None,
) -> dict[str, int]:
    """Simulate [t0, t0 + duration) and push it through a Runtime built from `settings`.

    `gas_series_s`: gas loggers upload series too (fewer messages, the same readings)."""
    rt = Runtime.build(settings)
    try:
        msgs = simulate(
            spec,
            scen,
            t0,
            duration,
            interval,
            seed,
            prefix=settings.topic_prefix,
            series_batch_s=BACKFILL_SERIES_S,
            gas_series_s=gas_series_s,
        )
        with progress_bar() as bar:
            task = bar.add_task("backfilling", total=duration)
            return backfill(rt, msgs, progress=lambda t: bar.update(task, completed=t - t0))
    finally:
        rt.close()
