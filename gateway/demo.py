"""`oshmon demo`: the whole system on one machine with nothing installed.

An embedded broker (amqtt), the embedded SQLite store, the gateway and simulated mine sites with
scripted incidents; alerts print live as they arrive over MQTT; then a month of history is
backfilled and the monthly committee report is written. Everything lands in one folder.
"""

from __future__ import annotations

import asyncio
import calendar
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from alerts.sinks.config import SinksConfig
from gateway.broker import EmbeddedBroker
from gateway.cli_ops import serve
from gateway.cli_sim import progress_bar
from gateway.config import Settings, load_settings, parse_mqtt_url
from gateway.mqtt import MqttEdge
from gateway.runtime import open_configured_store
from rules.errors import OshError
from simulators import MineSpec, apaced, live_start, scenario, simulate
from storage.base import HistoryQuery, RecordKind

#: The demo's limit profile: shipped with oshmon (rules/profiles/eu-mine.toml), the EU limits plus
#: methane, oxygen and CO2 levels of US coal mine law, each with its real source. The same
#: profile is the README's first-run choice: methane and oxygen are judged out of the box.
DEMO_PROFILE = "eu-mine"

SEVERITY_STYLE = {
    "critical": "bold white on red",
    "alarm": "bold red",
    "warning": "yellow",
    "malfunction": "magenta",
}
EVENT_STYLE = {"raised": "bold", "escalated": "bold", "acknowledged": "cyan", "cleared": "green"}


@dataclass
class DemoOptions:
    out: Path
    sites: int = 3
    speed: float = 150.0
    duration_s: float = 2.5 * 3600.0
    interval_s: float = 5.0
    seed: int = 1
    report: bool = True
    backfill_sites: int = 1


@dataclass
class DemoResult:
    published: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    events: int = 0
    dead_letters: int = 0
    readings: int = 0
    report: Path | None = None


def demo_settings(opts: DemoOptions) -> Settings:
    """The demo's settings; the broker's URL is filled in once the embedded broker runs."""
    return load_settings(
        None,
        mqtt_client_id="oshmon-demo-gateway",
        store="sqlite",
        sqlite_path=opts.out / "oshmon.sqlite",
        state_dir=opts.out / "state",
        profile=DEMO_PROFILE,
        log_level="WARNING",
        sinks=SinksConfig(),  # the demo prints what arrives over MQTT itself
    )


def fresh_dir(out: Path) -> None:
    """The demo starts clean: remove what an earlier demo left in its own folder."""
    for name in ("oshmon.sqlite", "oshmon.sqlite-wal", "oshmon.sqlite-shm", "state", "report", "profiles"):
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def print_event(console: Console, ev: dict[str, object]) -> None:
    sev, kind = str(ev.get("severity")), str(ev.get("event"))
    where = f"{ev.get('site')}/{ev.get('zone')}/{ev.get('device')}" + (f" ({ev['worker']})" if ev.get("worker") else "")
    t = str(ev.get("t", ""))[11:19]
    console.print(
        f"[dim]{t}[/] [{SEVERITY_STYLE.get(sev, '')}] {sev.upper():<11}[/] [{EVENT_STYLE.get(kind, '')}]{kind:<12}[/]"
        f" {where:<28} {ev.get('message')}",
        highlight=False,
    )
    if kind == "raised" and ev.get("action"):
        console.print(f"{'':>34}[dim]→ {ev.get('action')}  [{ev.get('limit_source')}][/]", highlight=False)


async def _watch_alerts(url: str, prefix: str, console: Console, result: DemoResult, stop: asyncio.Event) -> None:
    edge = MqttEdge(
        parse_mqtt_url(url),
        "oshmon-demo-board",
        subscriptions=[f"{prefix}/+/alerts", f"{prefix}/deadletter"],
        persistent=False,
        manual_ack=False,
    )
    async with edge:
        while not stop.is_set():
            try:
                msg = await asyncio.wait_for(edge.messages.get(), 0.2)
            except TimeoutError:
                continue
            if msg.topic.endswith("/deadletter"):
                result.dead_letters += 1
                continue
            ev = orjson.loads(msg.payload)
            result.events += 1
            if ev.get("event") == "raised":
                result.alerts[str(ev.get("severity"))] += 1
            print_event(console, ev)


async def run_live(opts: DemoOptions, settings: Settings, console: Console) -> tuple[Settings, DemoResult]:
    result = DemoResult()
    async with EmbeddedBroker() as broker:
        settings = settings.model_copy(update={"mqtt_url": broker.url})
        ready, stop_gw, stop_watch = asyncio.Event(), asyncio.Event(), asyncio.Event()
        gw = asyncio.create_task(serve(settings, ready, stop_gw), name="gateway")
        await asyncio.wait_for(ready.wait(), 60)
        watch = asyncio.create_task(_watch_alerts(broker.url, settings.topic_prefix, console, result, stop_watch))
        await asyncio.sleep(0.3)
        t0 = live_start(time.time(), opts.duration_s, opts.speed)
        spec = MineSpec(sites=opts.sites, devices_per_hazard=1, workers_per_site=2)
        scen = scenario("demo")
        console.print(f"[bold]Scenario[/] ({opts.duration_s / 3600:g} h of mine time at {opts.speed:g}× speed):")
        for line in scen.resolve(spec.devices()).timeline():
            console.print(f"  {line}")
        msgs = simulate(spec, scen, t0, opts.duration_s, opts.interval_s, opts.seed, prefix=settings.topic_prefix)
        edge = MqttEdge(parse_mqtt_url(broker.url), "oshmon-demo-sensors", persistent=False, manual_ack=False)
        async with edge:
            with progress_bar() as bar:
                task = bar.add_task("mine time", total=opts.duration_s)
                async for m in apaced(msgs, opts.speed):
                    await edge.send(m.topic, m.payload, m.qos, m.retain)  # waits while the window is full
                    result.published += 1
                    if result.published % 50 == 0:
                        bar.update(task, completed=m.t_s - t0)
            await edge.drain(60)
        await asyncio.sleep(2.0)  # let the gateway finish the last batch
        stop_gw.set()
        counters = await gw
        result.readings = counters.readings
        await asyncio.sleep(0.5)
        stop_watch.set()
        await watch
    return settings, result


def previous_month(now_s: float) -> tuple[str, float, float]:
    now = datetime.fromtimestamp(now_s, UTC)
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    start = datetime(year, month, 1, tzinfo=UTC).timestamp()
    days = calendar.monthrange(year, month)[1]
    return f"{year:04d}-{month:02d}", start, days * 86400.0


def start_backfill(opts: DemoOptions, settings: Settings) -> tuple[subprocess.Popen[bytes], str]:
    """Backfill last month in a second process while the live part runs (SQLite takes both)."""
    month, start, duration = previous_month(time.time())
    env = {
        **os.environ,
        "OSH_STORE": "sqlite",
        "OSH_SQLITE_PATH": str(settings.sqlite_path),
        "OSH_STATE_DIR": str(opts.out / "backfill-state"),
        "OSH_MQTT_CLIENT_ID": "oshmon-demo-backfill",
        "OSH_PROFILE": settings.profile,
        "OSH_PROFILE_DIRS": orjson.dumps([str(p) for p in settings.profile_dirs]).decode(),
        "OSH_SINKS": '{"sinks": []}',
        "OSH_LOG_LEVEL": "WARNING",
    }
    end = datetime.fromtimestamp(start + duration, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cmd = [sys.executable, "-m", "gateway", "backfill", "--days", f"{duration / 86400:g}", "--end", end,
           "--sites", str(opts.backfill_sites), "--scenario", "month", "--seed", str(opts.seed)]  # fmt: skip
    log = (opts.out / "backfill.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, month


def month_report(
    opts: DemoOptions, settings: Settings, console: Console, proc: subprocess.Popen[bytes], month: str
) -> Path:
    from gateway.runtime import profile_book, pseudonym_key
    from reports.monthly import build_monthly
    from rules.profiles import describe_limits

    if proc.poll() is None:
        console.print(f"Waiting for the backfill of {month} to finish…")
    if proc.wait() != 0:
        tail = (opts.out / "backfill.log").read_text(errors="replace")[-800:]
        raise OshError(f"the backfill of {month} failed: {tail}")
    store = open_configured_store(settings, read_only=True)
    try:
        return build_monthly(
            store,
            month,
            "kop-1",
            "en",
            opts.out / "report",
            limits_profile_rows=describe_limits(profile_book(settings), settings.profile),
            pseudonym_key=pseudonym_key(settings).get_secret_value().encode(),
            now_s=time.time(),
        )
    finally:
        store.close()


def summary(console: Console, settings: Settings, result: DemoResult, started: float) -> None:
    store = open_configured_store(settings, read_only=True)
    try:
        alerts = list(store.query(HistoryQuery(RecordKind.ALERTS)))
        exposures = sum(1 for _ in store.query(HistoryQuery(RecordKind.EXPOSURES)))
    finally:
        store.close()
    table = Table(title="oshmon demo — what happened", show_header=False)
    table.add_row("messages published (live)", f"{result.published:,}")
    table.add_row("readings stored (live)", f"{result.readings:,}")
    for sev in ("critical", "alarm", "warning", "malfunction"):
        table.add_row(f"alerts raised live: {sev}", str(result.alerts.get(sev, 0)))
    table.add_row("alert events received over MQTT", str(result.events))
    table.add_row("dead letters", str(result.dead_letters))
    month_raised = Counter(str(a["severity"]) for a in alerts if a["event"] == "raised")
    table.add_row(
        "alerts in the store (live + last month)", ", ".join(f"{k} {v}" for k, v in sorted(month_raised.items()))
    )
    table.add_row("shift exposure records", f"{exposures:,}")
    table.add_row("data", str(settings.sqlite_path))
    if result.report is not None:
        table.add_row("monthly committee report", str(result.report))
    table.add_row("took", f"{time.time() - started:.0f} s")
    console.print(table)
    db = settings.sqlite_path
    exe = "oshmon" if shutil.which("oshmon") else sys.argv[0]  # `make demo` does not put .venv/bin on PATH
    console.print(
        Panel(
            f"OSH_SQLITE_PATH={db} {exe} history --kind alerts --severity critical\n"
            f"OSH_SQLITE_PATH={db} {exe} history --kind exposures --site kop-1 --hazard noise\n"
            f"OSH_SQLITE_PATH={db} {exe} report monthly --month {previous_month(time.time())[0]} --lang sr --out rs\n"
            f"OSH_SQLITE_PATH={db} {exe} export evidence --site kop-1 --from 2026-01-01 --to 2027-01-01 --out ev",
            title="try next",
        )
    )


def run_demo(opts: DemoOptions) -> DemoResult:
    console = Console()
    started = time.time()
    fresh_dir(opts.out)
    console.print(Panel("oshmon demo: embedded broker, SQLite store, gateway, simulated mine sites", style="bold"))
    settings = demo_settings(opts)
    backfill = start_backfill(opts, settings) if opts.report else None
    try:
        settings, result = asyncio.run(run_live(opts, settings, console))
        if backfill is not None:
            result.report = month_report(opts, settings, console, *backfill)
    finally:
        if backfill is not None and backfill[0].poll() is None:
            backfill[0].terminate()
    summary(console, settings, result, started)
    return result


def demo_cmd(
    out: Annotated[Path, typer.Option(help="Folder for the demo's data and report.")] = Path("oshmon-demo"),
    sites: Annotated[int, typer.Option(help="Simulated mine sites.", min=1, max=20)] = 3,
    speed: Annotated[float, typer.Option(help="Mine time runs this many times faster.", min=1)] = 150.0,
    hours: Annotated[float, typer.Option(help="Hours of mine time to simulate live.", min=0.1)] = 2.5,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    report: Annotated[bool, typer.Option(help="Backfill last month and write the committee report.")] = True,
) -> None:
    """The whole system on embedded defaults, about a minute; ends with a monthly report."""
    run_demo(DemoOptions(out=out, sites=sites, speed=speed, duration_s=hours * 3600.0, seed=seed, report=report))
