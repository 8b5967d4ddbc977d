"""Write-path benchmark: points/s into a local influxd through oshmon vs a plain HTTP post of the
same pre-built line protocol, in one run; plus the SQLite insert rate.

    .venv/bin/python -m bench.write [--points 1000000] [--rounds 3] [--update docs/benchmarks.md]

Both sides write the same readings (1000 series, 1 field, ms precision) as new points into
fresh databases with the same retention policies, over one keep-alive connection, in chunks of
5000 lines; the plain side gets its bodies already built and encoded, oshmon starts from the
engine's arrays (`ReadingBatch`) and does screening, line building, chunking and posting. The
two alternate, `--rounds` times each; medians are reported. Goal (issue 4): ratio >= 0.8 and
>= 200 000 points/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import httpx
import numpy as np

from bench.common import machine, update_section
from rules.types import ChannelKey, Hazard, ReadingBatch
from storage import lineproto as lp
from storage.influx import InfluxConfig, InfluxStore
from storage.sqlite import SqliteStore
from tests.services import Influxd, run_influxd

BEGIN, END = "<!-- write-path:begin -->", "<!-- write-path:end -->"
CHUNK = 5000
T0 = 1_795_327_200.0


def readings(points: int, series: int) -> tuple[list[ChannelKey], ReadingBatch]:
    hazards = list(Hazard)
    keys = [
        ChannelKey("kop-1", f"zone-{i % 20}", f"dev-{i:04d}", hazards[i % len(hazards)],
                   f"w-{i}" if i % 5 == 0 else None)
        for i in range(series)
    ]  # fmt: skip
    steps = points // series
    channel = np.tile(np.arange(series, dtype=np.int64), steps)
    t_s = T0 + np.repeat(np.arange(steps, dtype=np.float64), series)
    value = np.random.default_rng(7).gamma(2.0, 10.0, steps * series).round(3)
    return keys, ReadingBatch(channel, t_s, value)


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def cpu_timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall time, and CPU time of this (client) process, of one run."""
    cpu = time.process_time()
    wall = timed(run)
    return wall, time.process_time() - cpu


class PlainPost:
    """The baseline: pre-built, pre-encoded bodies posted to /write as they are."""

    def __init__(self, client: httpx.Client, bodies: list[bytes], params: dict[str, str]) -> None:
        self.client, self.bodies, self.params = client, bodies, params

    def post(self, body: bytes) -> None:
        self.client.post("/write", params=self.params, content=body).raise_for_status()

    def sequential(self) -> None:
        for body in self.bodies:
            self.post(body)

    def two_connections(self, pool: ThreadPoolExecutor) -> None:
        list(pool.map(self.post, self.bodies))


def influx_rates(server: Influxd, points: int, series: int, rounds: int) -> dict[str, float]:
    keys, batch = readings(points, series)
    bodies = ["\n".join(c).encode() for c in lp.reading_lines(keys, batch, lp.PrefixCache(), CHUNK)]
    results: dict[str, list[float]] = {"plain": [], "oshmon": [], "plain2": []}
    cpu: dict[str, list[float]] = {name: [] for name in results}
    client = httpx.Client(base_url=server.url, timeout=60)
    pool = ThreadPoolExecutor(2)
    for r in range(rounds):
        for db in (f"plain{r}", f"plain2_{r}"):
            InfluxStore(InfluxConfig(url=server.url, db=db)).close()  # same RPs as oshmon's
        store = InfluxStore(InfluxConfig(url=server.url, db=f"oshmon{r}"))
        params = {"rp": "osh_readings", "precision": "ms"}
        runs: dict[str, Callable[[], object]] = {
            "plain": PlainPost(client, bodies, {**params, "db": f"plain{r}"}).sequential,
            "oshmon": partial(store.write_readings, keys, batch),
            "plain2": partial(PlainPost(client, bodies, {**params, "db": f"plain2_{r}"}).two_connections, pool),
        }
        names = list(runs)
        for name in names[r % 3 :] + names[: r % 3]:  # rotate the order between rounds
            wall, used = cpu_timed(runs[name])
            results[name].append(points / wall)
            cpu[name].append(used / points * 1e6)
        store.close()
    client.close()
    pool.shutdown()
    rates = {name: statistics.median(values) for name, values in results.items()}
    rates |= {f"cpu_{name}": statistics.median(values) for name, values in cpu.items()}
    rates["ratio"] = statistics.median(o / p for o, p in zip(results["oshmon"], results["plain"], strict=True))
    rates["ratio2"] = statistics.median(o / p for o, p in zip(results["oshmon"], results["plain2"], strict=True))
    rates["ratio_min"] = min(o / p for o, p in zip(results["oshmon"], results["plain"], strict=True))
    rates["build"] = points / timed(lambda: list(lp.reading_lines(keys, batch, lp.PrefixCache(), CHUNK)))
    return rates


def sqlite_rates(points: int, series: int) -> dict[int, float]:
    keys, batch = readings(points, series)
    out = {}
    for size in (5000, 50_000):
        with tempfile.TemporaryDirectory() as tmp:
            store = SqliteStore(Path(tmp) / "bench.db")

            def run(s: SqliteStore = store, n: int = size) -> None:
                for i in range(0, len(batch), n):
                    sl = slice(i, i + n)
                    s.write_readings(keys, ReadingBatch(batch.channel[sl], batch.t_s[sl], batch.value[sl]))

            out[size] = len(batch) / timed(run)
            store.close()
    return out


def report(
    args: argparse.Namespace, influx: dict[str, float], sqlite: dict[int, float], version: str, load: str
) -> str:
    ratio = influx["ratio"]
    verdict = "met" if ratio >= 0.8 and influx["oshmon"] >= 200_000 else "NOT met"
    return "\n".join([
        BEGIN,
        "## Write path (storage)",
        "",
        f"Command: `.venv/bin/python -m bench.write --points {args.points} --series {args.series} "
        f"--rounds {args.rounds}` ({time.strftime('%Y-%m-%d')}), or `make bench`.",
        f"Machine: {machine()}; influxd {version} on loopback (started by `tests.services.run_influxd`); "
        f"load average {load} (1-min, before/after: other jobs share the machine).",
        "",
        f"{args.points:,} readings of {args.series} series (1 float field, ms precision) written as new",
        "points into a fresh database each time; the three paths alternate, in rotating order,",
        f"{args.rounds} rounds; medians. Client CPU is this Python process's CPU time per million points.",
        "",
        "| path | points/s | client CPU s / 1M points |",
        "|---|---|---|",
        f"| plain HTTP post of the pre-built line protocol, 5 000-line bodies, 1 connection "
        f"| {influx['plain']:,.0f} | {influx['cpu_plain']:.2f} |",
        f"| **oshmon `InfluxStore.write_readings`** from the engine's arrays (2 lanes) "
        f"| **{influx['oshmon']:,.0f}** | {influx['cpu_oshmon']:.2f} |",
        f"| plain post of the same bodies over 2 concurrent connections (reference) "
        f"| {influx['plain2']:,.0f} | {influx['cpu_plain2']:.2f} |",
        f"| oshmon line building alone, no I/O | {influx['build']:,.0f} | |",
        f"| SQLite `SqliteStore.write_readings`, 5 000-row batches (WAL, synchronous=FULL) | {sqlite[5000]:,.0f} | |",
        f"| SQLite `SqliteStore.write_readings`, 50 000-row batches | {sqlite[50_000]:,.0f} | |",
        "",
        f"oshmon / plain post (median of the per-round ratios): **{ratio:.2f}** (lowest round "
        f"{influx['ratio_min']:.2f}); goal >= 0.8 and >= 200 000 points/s: **{verdict}**.",
        "oshmon formats every line itself (the extra client CPU above) and hides part of that cost",
        "behind its 2 concurrent lanes; against a plain post that also uses 2 connections the ratio",
        f"is {influx['ratio2']:.2f}.",
        "The machine is shared (2 cores, other jobs running), so single runs vary by ±25 %; with a",
        "load average well above 2 every figure drops and the ratio with it (oshmon needs more client CPU).",
        END,
    ])  # fmt: skip


def update(doc: Path, section: str) -> None:
    update_section(doc, BEGIN, END, section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--update", type=Path, help="replace the write-path section of this Markdown file")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    with run_influxd() as server:
        version = httpx.get(f"{server.url}/ping").headers.get("X-Influxdb-Version", "?")
        influx = influx_rates(server, args.points, args.series, args.rounds)
    sqlite = sqlite_rates(min(args.points, 500_000), args.series)
    load = f"{load_before:.1f}/{os.getloadavg()[0]:.1f}"
    section = report(args, influx, sqlite, version, load)
    print(section)
    if args.update:
        update(args.update, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
