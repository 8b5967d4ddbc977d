"""`oshmon demo`: the whole system on one machine with nothing installed.

A broker in its own process (mosquitto when installed, else the embedded amqtt broker:
gateway/demo_broker.py), the embedded SQLite store, the gateway and simulated mine sites with
scripted incidents; alerts print live as they arrive over MQTT; meanwhile a second process
backfills last month, and the monthly committee report is written from it. At the end the demo
checks that what happened adds up (gateway/demo_summary.py). Everything lands in one folder.

Load: 3 sites are 69 devices; at 150× speed and a 20 s gas interval, with dust and noise sent as
2-minute series (as real loggers do), that is ~375 messages/s for 60 s: well inside what the broker
path carries on a 2-core machine even next to a busy process (docs/benchmarks.md, "Demo MQTT
path"). The sensors wait for the broker (a bounded in-flight window), so a slow machine stretches
the run a little instead of piling up messages.
"""

from __future__ import annotations

import asyncio
import calendar
import os
import shutil
import signal
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
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from alerts.sinks.config import SinksConfig
from gateway.cli_ops import serve
from gateway.cli_sim import progress_bar
from gateway.config import Settings, load_settings, parse_mqtt_url
from gateway.demo_board import start_board
from gateway.demo_broker import DemoBroker
from gateway.demo_summary import LiveRecord, Verdict, check, expectations, readings_in, silenced, write_summary
from gateway.mqtt import MqttEdge
from gateway.runtime import open_configured_store
from gateway.service import Counters
from rules.errors import OshError
from rules.text import printable
from simulators import Incident, MineSpec, apaced, live_start, scenario, simulate
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
SENSOR_WINDOW = 200  # the simulated sensors' QoS 1 messages awaiting the broker's PUBACK at once
#: The month's backfill: gas loggers upload 10-min series (the same readings in ~40 % of the messages,
#: ~30 % less CPU: it runs beside the live part and the report waits for it).
BACKFILL_GAS_SERIES_S = 600.0
BACKFILL_NOISE_SAMPLE_S = 60.0  # 1-min LAeq values for the month (as dosimeters log them): a third fewer readings
GATEWAY_CATCH_UP_S = 60.0  # after the last message: how long the gateway may take to process the rest


@dataclass
class DemoOptions:
    out: Path
    sites: int = 3
    speed: float = 150.0
    duration_s: float = 2.5 * 3600.0
    interval_s: float = 20.0  # gas readings: every 20 s of mine time
    series_batch_s: float = 120.0  # dust and noise loggers send a series every 2 min of mine time
    seed: int = 1
    report: bool = True
    backfill_sites: int = 1
    broker: str = "auto"
    board: bool = True  # the control-room board beside the demo (gateway/demo_board.py)
    stay: bool = False  # keep broker, gateway and board running after the scenario, until Ctrl-C


@dataclass
class DemoResult:
    live: LiveRecord = field(default_factory=LiveRecord)
    verdict: Verdict | None = None
    report: Path | None = None
    phases: dict[str, float] = field(default_factory=dict)  # seconds since the start, for summary.json

    @property
    def ok(self) -> bool:
        return self.verdict is not None and self.verdict.ok


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
        # /metrics and /healthz on a free port: a gateway or another demo may hold 9108
        http_listen="127.0.0.1:0",
    )


def fresh_dir(out: Path) -> None:
    """The demo starts clean: remove what an earlier demo left in its own folder."""
    for name in ("oshmon.sqlite", "oshmon.sqlite-wal", "oshmon.sqlite-shm", "state", "backfill-state", "report",
                 "profiles", "summary.json", "board-users.json", "board.log"):  # fmt: skip
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _shown(v: object) -> str:
    """Event text from MQTT (ack names and notes in messages): no control characters, no markup."""
    return escape(printable(str(v)))


def print_event(console: Console, ev: dict[str, object]) -> None:
    sev, kind = _shown(ev.get("severity")), _shown(ev.get("event"))
    where = f"{ev.get('site')}/{ev.get('zone')}/{ev.get('device')}" + (f" ({ev['worker']})" if ev.get("worker") else "")
    t = _shown(str(ev.get("t", ""))[11:19])
    console.print(
        f"[dim]{t}[/] [{SEVERITY_STYLE.get(sev, '')}] {sev.upper():<11}[/] [{EVENT_STYLE.get(kind, '')}]{kind:<12}[/]"
        f" {_shown(where):<28} {_shown(ev.get('message'))}",
        highlight=False,
    )
    if kind == "raised" and ev.get("action"):
        action, source = _shown(ev.get("action")), _shown(ev.get("limit_source"))
        console.print(f"{'':>34}[dim]→ {action}  \\[{source}][/]", highlight=False)


async def _watch_alerts(url: str, prefix: str, console: Console, live: LiveRecord, stop: asyncio.Event) -> None:
    edge = MqttEdge(
        parse_mqtt_url(url),
        "oshmon-demo-board",
        subscriptions=[f"{prefix}/+/alerts", f"{prefix}/deadletter"],
        persistent=False,
        manual_ack=False,
    )
    async with edge:
        while not stop.is_set() or not edge.messages.empty():
            try:
                msg = await asyncio.wait_for(edge.messages.get(), 0.2)
            except TimeoutError:
                continue
            if msg.topic.endswith("/deadletter"):
                live.dead_letters += 1
                console.print(f"[red]dead letter[/] {msg.payload[:300]!r}", highlight=False)
                continue
            ev = orjson.loads(msg.payload)
            live.events.append(ev)
            print_event(console, ev)


async def run_live(opts: DemoOptions, settings: Settings, console: Console) -> tuple[Settings, DemoResult]:
    result = DemoResult()
    live = result.live
    async with DemoBroker(opts.broker) as broker:
        live.broker = broker.kind
        console.print(f"MQTT broker: {broker.kind} on {broker.url}")
        settings = settings.model_copy(update={"mqtt_url": broker.url})
        counters = Counters()
        ready, stop_gw, stop_watch = asyncio.Event(), asyncio.Event(), asyncio.Event()
        gw = asyncio.create_task(serve(settings, ready, stop_gw, counters=counters), name="gateway")
        await _until(ready, gw, 60.0)
        board = start_board(settings, opts.out) if opts.board else None
        try:
            if board is not None:
                console.print(board.hint())
            watch = asyncio.create_task(_watch_alerts(broker.url, settings.topic_prefix, console, live, stop_watch))
            await asyncio.sleep(0.5)  # the alert watcher subscribes before the first alert can come
            t0 = live_start(time.time(), opts.duration_s, opts.speed)
            incidents = await _sensors(opts, settings, broker.url, t0, live, console)
            await _processed(counters, live.published, gw)
            await asyncio.sleep(1.5)  # the gateway's last tick: escalations, clears
            if opts.stay:
                await _until_interrupted(console, board.url if board else None)
        finally:  # also on Ctrl-C: never leave a board process behind
            if board is not None:
                board.stop()
        stop_gw.set()
        await gw
        live.gateway_messages = counters.messages
        await asyncio.sleep(0.5)
        stop_watch.set()
        await watch
    live.readings_stored = stored_readings(settings, t0, t0 + opts.duration_s)
    result.verdict = check(live, expectations(incidents, opts.duration_s), silenced(incidents))
    return settings, result


async def _sensors(
    opts: DemoOptions, settings: Settings, url: str, t0: float, live: LiveRecord, console: Console
) -> tuple[Incident, ...]:
    """Publish the simulated mine, paced to `opts.speed`, waiting for the broker when it is behind."""
    spec = MineSpec(sites=opts.sites, devices_per_hazard=1, workers_per_site=2)
    scen = scenario("demo").resolve(spec.devices())
    console.print(f"[bold]Scenario[/] ({opts.duration_s / 3600:g} h of mine time at {opts.speed:g}× speed):")
    for line in scen.timeline():
        console.print(f"  {line}")
    msgs = simulate(spec, scen, t0, opts.duration_s, opts.interval_s, opts.seed, prefix=settings.topic_prefix,
                    series_batch_s=opts.series_batch_s, chunk_s=300.0)  # fmt: skip
    target = parse_mqtt_url(url)
    edge = MqttEdge(target, "oshmon-demo-sensors", persistent=False, manual_ack=False, window=SENSOR_WINDOW)
    async with edge:
        with progress_bar() as bar:
            task = bar.add_task("mine time", total=opts.duration_s)
            async for m in apaced(msgs, opts.speed):
                await edge.send(m.topic, m.payload, m.qos, m.retain)  # waits while the window is full
                live.published += 1
                live.readings_published += readings_in(m)
                if live.published % 50 == 0:
                    bar.update(task, completed=m.t_s - t0)
        await edge.drain(GATEWAY_CATCH_UP_S)
    return scen.incidents


async def _until_interrupted(console: Console, board_url: str | None) -> None:
    """--stay: everything keeps running (the board, the broker's retained alarms) until Ctrl-C."""
    where = f" — the board: {board_url}" if board_url else ""
    console.print(f"[bold]The demo keeps running{where}. Press Ctrl-C to finish (the report follows).[/]")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        await stop.wait()
    finally:
        loop.remove_signal_handler(signal.SIGINT)


async def _until(event: asyncio.Event, task: asyncio.Task[Counters], timeout_s: float) -> None:
    """Wait for `event`; if `task` ends first (the gateway failed to start), raise its error."""
    waiter = asyncio.create_task(event.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task in done:
        task.result()
        raise OshError("the demo's gateway stopped before it was ready")
    if not done:
        raise OshError(f"the demo's gateway did not start within {timeout_s:.0f} s")


async def _processed(counters: Counters, published: int, gw: asyncio.Task[Counters]) -> None:
    """Wait until the gateway has taken in every published message (or give up after a while)."""
    for _ in range(int(GATEWAY_CATCH_UP_S / 0.1)):
        if counters.messages >= published or gw.done():
            return
        await asyncio.sleep(0.1)


def stored_readings(settings: Settings, t0: float, t1: float) -> int:
    """Readings in the store with event times of the live part (counted by SQLite itself)."""
    store = open_configured_store(settings, read_only=True)
    q = HistoryQuery(RecordKind.READINGS, t_from_s=t0, t_to_s=t1 + 1.0)
    try:
        count = getattr(store, "count", None)
        return int(count(q)) if count is not None else sum(1 for _ in store.query(q))
    finally:
        store.close()


def previous_month(now_s: float) -> tuple[str, float, float]:
    now = datetime.fromtimestamp(now_s, UTC)
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    start = datetime(year, month, 1, tzinfo=UTC).timestamp()
    days = calendar.monthrange(year, month)[1]
    return f"{year:04d}-{month:02d}", start, days * 86400.0


def start_backfill(opts: DemoOptions, settings: Settings) -> tuple[subprocess.Popen[bytes], str]:
    """Backfill last month in a second process while the live part runs (SQLite takes both).

    It ends before the live part's mine time begins (only matters in the first hours of a month),
    so the store's readings after the live start are the live part's alone."""
    month, start, duration = previous_month(time.time())
    duration = min(duration, time.time() - opts.duration_s - start)
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
           "--sites", str(opts.backfill_sites), "--scenario", "month", "--seed", str(opts.seed),
           "--gas-series", str(BACKFILL_GAS_SERIES_S), "--noise-sample", str(BACKFILL_NOISE_SAMPLE_S)]  # fmt: skip
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


def summary(console: Console, settings: Settings, opts: DemoOptions, result: DemoResult, started: float) -> None:
    store = open_configured_store(settings, read_only=True)
    try:
        alerts = list(store.query(HistoryQuery(RecordKind.ALERTS)))
        exposures = sum(1 for _ in store.query(HistoryQuery(RecordKind.EXPOSURES)))
    finally:
        store.close()
    live, verdict = result.live, result.verdict
    took = time.time() - started
    table = Table(title="oshmon demo — what happened", show_header=False)
    table.add_row("MQTT broker", live.broker)
    table.add_row("messages published (live)", f"{live.published:,}")
    table.add_row("readings published / stored (live)", f"{live.readings_published:,} / {live.readings_stored:,}")
    by_sev = live.by_severity()
    for sev in ("critical", "alarm", "warning", "malfunction"):
        table.add_row(f"alerts raised live: {sev}", str(by_sev.get(sev, 0)))
    config = sum(1 for e in live.raised() if e.get("rule") == "not_judged")
    table.add_row("  of which configuration (hazard not judged)", str(config))
    table.add_row("alert events received over MQTT", str(len(live.events)))
    table.add_row("dead letters", str(live.dead_letters))
    month_raised = Counter(str(a["severity"]) for a in alerts if a["event"] == "raised")
    table.add_row(
        "alerts in the store (live + last month)", ", ".join(f"{k} {v}" for k, v in sorted(month_raised.items()))
    )
    table.add_row("shift exposure records", f"{exposures:,}")
    table.add_row("data", str(settings.sqlite_path))
    if result.report is not None:
        table.add_row("monthly committee report", str(result.report))
    table.add_row("took", f"{took:.0f} s")
    if verdict is not None:
        table.add_row(
            "check", "[green]adds up[/]" if verdict.ok else "[bold red]" + "; ".join(verdict.problems) + "[/]"
        )
        for note in verdict.gateway_behind:
            table.add_row("note", f"[magenta]{note}[/] (the machine was too busy)")
        extra = {"took_s": round(took, 1), "exposures": exposures, **result.phases}
        write_summary(opts.out / "summary.json", live, verdict, extra)
    console.print(table)
    console.print(try_next(settings, result))


def try_next(settings: Settings, result: DemoResult) -> Panel:
    """Commands that work on what the demo left behind (all of them run as printed)."""
    db = settings.sqlite_path
    exe = "oshmon" if shutil.which("oshmon") else sys.argv[0]  # `make demo` does not put .venv/bin on PATH
    env = f"OSH_SQLITE_PATH={db} OSH_STATE_DIR={settings.state_path}"
    lines = [
        f"{env} {exe} history --kind alerts --severity critical",
        f"{env} {exe} status",
        f"{env} {exe} audit verify",
    ]
    lines.append(f"{exe} demo --stay    # keeps the control-room board (and the broker) running until Ctrl-C")
    if result.report is not None:
        month = previous_month(time.time())[0]
        lines += [
            f"{env} {exe} history --kind exposures --site kop-1 --hazard noise --format table",
            f"{env} {exe} report monthly --month {month} --site kop-1 --lang sr --out oshmon-demo/rs",
        ]
    return Panel("\n".join(lines), title="try next")


def run_demo(opts: DemoOptions) -> DemoResult:
    console = Console()
    started = time.time()
    fresh_dir(opts.out)
    console.print(Panel("oshmon demo: MQTT broker, SQLite store, gateway, simulated mine sites", style="bold"))
    settings = demo_settings(opts)
    backfill = start_backfill(opts, settings) if opts.report else None
    try:
        settings, result = asyncio.run(run_live(opts, settings, console))
        result.phases["live_s"] = round(time.time() - started, 1)
        if backfill is not None:
            result.report = month_report(opts, settings, console, *backfill)
            result.phases["report_done_s"] = round(time.time() - started, 1)
    finally:
        if backfill is not None and backfill[0].poll() is None:
            backfill[0].terminate()
    summary(console, settings, opts, result, started)
    return result


def demo_cmd(
    out: Annotated[Path, typer.Option(help="Folder for the demo's data and report.")] = Path("oshmon-demo"),
    sites: Annotated[int, typer.Option(help="Simulated mine sites.", min=1, max=20)] = 3,
    speed: Annotated[float, typer.Option(help="Mine time runs this many times faster.", min=1)] = 150.0,
    hours: Annotated[float, typer.Option(help="Hours of mine time to simulate live.", min=0.1)] = 2.5,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    report: Annotated[bool, typer.Option(help="Backfill last month and write the committee report.")] = True,
    broker: Annotated[
        str, typer.Option(help="auto (mosquitto when installed, else the embedded amqtt), mosquitto or amqtt.")
    ] = "auto",
    board: Annotated[bool, typer.Option(help="Start the control-room board (oshmon board) beside the demo.")] = True,
    stay: Annotated[bool, typer.Option(help="Keep broker, gateway and board running until Ctrl-C.")] = False,
) -> None:
    """The whole system on one machine, about a minute; ends with a monthly report and a check
    that it adds up (exit 1 if not)."""
    opts = DemoOptions(out=out, sites=sites, speed=speed, duration_s=hours * 3600.0, seed=seed, report=report,
                       broker=broker, board=board, stay=stay)  # fmt: skip
    if not run_demo(opts).ok:
        raise typer.Exit(1)
