"""Board latency benchmark: the gateway's `raised` event on MQTT → the alarm element on the page.

    .venv/bin/python -m bench.board [--duration 30] [--probe-hz 2] [--load-msgs 100]
                                    [--load-readings 100] [--update docs/benchmarks.md]

A real mosquitto, `oshmon run` (SQLite, `us-msha`) and `oshmon board` as subprocesses, and the
board page open in headless Chromium. A separate process keeps the gateway at `--load-msgs` ×
`--load-readings` readings/s (default 10,000/s, bench/latency.py's load); the probe makes methane
cross the 1.0 %vol alarm level `--probe-hz` times a second, each time on a new device. For each
crossing: the `raised` event's arrival at an MQTT subscriber (this process) and the moment a
MutationObserver in the page first sees the alarm's element (the browser's clock is this
machine's clock). Goal (issue: control-room board): p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import cpu_model, uname, update_section
from bench.latency import Probe, background, gateway_env, stats
from tests.chromium import Page, headless_page
from tests.mqtt_helpers import ROOT, GatewayProcess
from tests.services import free_port, run_mosquitto

BEGIN, END = "<!-- board:begin -->", "<!-- board:end -->"
GOAL_P99_MS = 1000.0
OBSERVER = (
    "window.__seen = {}; new MutationObserver(() => { for (const e of document.querySelectorAll('[data-device]'))"
    " window.__seen[e.dataset.device] ??= Date.now(); }).observe(document.body, {subtree: true, childList: true});"
)


@dataclass
class Result:
    mqtt_to_page: list[float]  # ms
    publish_to_page: list[float]
    load_rate: float  # readings/s offered during the probes


@contextlib.contextmanager
def board(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, **env, "OSH_BOARD_LISTEN": f"127.0.0.1:{port}", "OSH_BOARD_PUBLIC_READ": "true"}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gateway", "board"], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.time() + 60
        while time.time() < end:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


def page_times(page: Page) -> dict[str, float]:
    seen = page.evaluate("window.__seen") or {}
    return {dev: ms / 1000.0 for dev, ms in seen.items()}


def run(args: argparse.Namespace) -> Result:
    with run_mosquitto() as broker, tempfile.TemporaryDirectory(prefix="osh-bench-board-") as tmp:
        env = gateway_env(broker, Path(tmp), None)
        gw = GatewayProcess(env, Path(tmp) / "gw.log").start(broker.port)
        probe = Probe(broker.port)
        try:
            with board(env, Path(tmp) / "board.log") as base, headless_page("chromium", Path(tmp) / "chr") as page:
                page.call("Page.navigate", url=base + "/")
                page.wait_event("Page.loadEventFired")
                page.evaluate(OBSERVER)
                with background(broker.port, args.load_msgs, args.load_readings, args.devices) as sent:
                    time.sleep(args.warmup)
                    first, t0 = sent.value, time.time()
                    probe.run("board", args.duration, args.probe_hz)
                    rate = (sent.value - first) * args.load_readings / (time.time() - t0)
                    time.sleep(2.0)
                    seen = page_times(page)
        finally:
            probe.close()
            gw.stop()
        mine = [d for d in probe.sent if d.startswith("pr-board-")]
        missing = [d for d in mine if d not in seen]
        if missing:
            raise RuntimeError(f"{len(missing)} of {len(mine)} alarms never reached the page")
        return Result([(seen[d] - probe.got[d]) * 1000 for d in mine],
                      [(seen[d] - probe.sent[d]) * 1000 for d in mine], rate)  # fmt: skip


def report(args: argparse.Namespace, r: Result, load_avg: str) -> str:
    a, b = stats(r.mqtt_to_page), stats(r.publish_to_page)
    verdict = "met" if a["p99"] <= GOAL_P99_MS else "NOT met"
    cmd = (f".venv/bin/python -m bench.board --duration {args.duration:g} --probe-hz {args.probe_hz:g} "
           f"--load-msgs {args.load_msgs:g} --load-readings {args.load_readings}")  # fmt: skip
    return "\n".join([
        BEGIN,
        "## Board latency (control room)",
        "",
        f"Command: `{cmd}` (or `python -m bench board`); run {time.strftime('%Y-%m-%d %H:%M %Z')}.",
        f"Machine: `{uname()}`; nproc {os.cpu_count()}; CPU {cpu_model()}; Python {platform.python_version()};",
        f"load average {load_avg} (1-min, before/after).",
        "",
        "mosquitto, `oshmon run` (SQLite, `us-msha`), `oshmon board` and headless Chromium with the board page, all",
        f"on this machine; a separate process offers the gateway {r.load_rate:,.0f} readings/s.",
        f"{args.probe_hz:g} methane crossings a second for {args.duration:g} s, each a new alarm; per alarm: the",
        "`raised` event's arrival at an MQTT subscriber, and the first sight of its element in the page",
        "(MutationObserver, same clock).",
        "",
        "| interval | alarms | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
        f"| `raised` on MQTT → element on the page | {a['n']:.0f} | {a['p50']:.0f} | **{a['p99']:.0f}** "
        f"| {a['max']:.0f} |",
        f"| sensor publish → element on the page | {b['n']:.0f} | {b['p50']:.0f} | {b['p99']:.0f} | {b['max']:.0f} |",
        "",
        f"Goal p99 <= {GOAL_P99_MS:.0f} ms (`raised` → page): **{verdict}**. On an alarm change the board pushes",
        "the alarms alone first (server-sent events), then the whole snapshot; the alarms accumulate (each probe",
        "is a new device), so the last renders hold the most alarm cards. The machine is shared: mind the load",
        "average above (other jobs' test runs); Chromium, the board, the gateway and the load share 2 cores.",
        END,
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--probe-hz", type=float, default=2.0)
    parser.add_argument("--load-msgs", type=float, default=100.0)
    parser.add_argument("--load-readings", type=int, default=100)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--update", type=Path)
    args = parser.parse_args(argv)
    before = os.getloadavg()[0]
    result = run(args)
    section = report(args, result, f"{before:.2f}/{os.getloadavg()[0]:.2f}")
    print(section)
    if args.update:
        update_section(args.update, BEGIN, END, section)
    return 0 if stats(result.mqtt_to_page)["p99"] <= GOAL_P99_MS else 1


if __name__ == "__main__":
    sys.exit(main())
