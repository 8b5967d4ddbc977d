"""Monthly report benchmark: one site, 1,000 channels, 30 days, from a real SQLite store.

    .venv/bin/python -m bench.report [--channels 1000] [--days 30] [--history 3] [--rounds 3]
                                     [--update docs/benchmarks.md]

The report reads shift exposure records and alert events (never raw readings): 1,000 channels
× 30 days × 3 shifts = 90,000 exposure rows. `--history N` also stores N earlier months, which
the trend section (this month and the 3 before it, by default) and last month's comparison
read. Goal: under 30 s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from alerts.types import AlertEvent, AlertEventKind
from bench.common import machine, update_section
from reports.monthly import build_monthly
from rules.profiles import ProfileBook, describe_limits
from rules.records import limits_of
from rules.results import ExposureRecord
from rules.types import ChannelKey, Hazard, RuleKind, Severity
from storage.sqlite import SqliteStore

BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
GOAL_S = 30.0
SITE = "bench-1"
MONTH = "2026-11"
SHIFT_HOURS = (6, 14, 22)
PROFILE = "eu"
BOOK = ProfileBook.load()
#: Hazards of the channels, in turn, with a typical shift value; limits come from the EU profile
#: exactly as the engine writes them into records (`rules.records.limits_of`).
HAZARDS: tuple[tuple[Hazard, dict[str, float], float], ...] = tuple(
    (h, limits_of(BOOK, PROFILE, h), typical)
    for h, typical in ((Hazard.CO, 4.0), (Hazard.SILICA, 0.03), (Hazard.DPM, 0.02), (Hazard.NOISE, 80.0))
)
ZONES = 25
ALERTS_PER_CHANNEL_MONTH = 3


def channel_keys(channels: int) -> list[tuple[ChannelKey, dict[str, float], float]]:
    out = []
    for i in range(channels):
        hazard, limits, typical = HAZARDS[i % len(HAZARDS)]
        device = f"dev-{i // len(HAZARDS):04d}"
        worker = f"w-{i:04d}" if i % 5 == 0 else None  # every fifth channel a personal monitor
        out.append((ChannelKey(SITE, f"zone-{i % ZONES:02d}", device, hazard, worker), limits, typical))
    return out


def month_shifts(month: str) -> list[tuple[str, float]]:
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    out, day = [], start
    while day.month == start.month:
        for n, h in enumerate(SHIFT_HOURS, start=1):
            out.append((f"{day:%Y-%m-%d}/{n}", (day + timedelta(hours=h)).timestamp()))
        day += timedelta(days=1)
    return out


def exposures(channels: int, month: str, days: int, seed: int) -> list[ExposureRecord]:
    rng = np.random.default_rng(seed)
    shifts = month_shifts(month)[: days * len(SHIFT_HOURS)]
    recs = []
    for key, limits, typical in channel_keys(channels):
        noise = key.hazard is Hazard.NOISE
        vals = rng.normal(typical, 3.0, len(shifts)) if noise else typical * rng.lognormal(0.0, 0.7, len(shifts))
        cov = np.where(rng.random(len(shifts)) < 0.02, 0.1, 1.0)
        for (shift, start), v, c in zip(shifts, vals.tolist(), cov.tolist(), strict=True):
            recs.append(ExposureRecord(
                key=key, shift=shift, shift_start_s=start, shift_end_s=start + 8 * 3600, twa8=v,
                stel15_max=None if noise else 2 * v, peak=3 * v, coverage=c, max_gap_s=0.0,
                lex8h=v if noise else None, profile=PROFILE, limits=limits,
            ))  # fmt: skip
    return recs


def _events(
    alert_id: str, key: ChannelKey, rule: RuleKind, sev: Severity, since: float, ack_after: float | None
) -> list[AlertEvent]:
    def ev(kind: AlertEventKind, t: float, by: str | None = None) -> AlertEvent:
        return AlertEvent(alert_id, kind, sev, rule, key.site, key.zone, key.device, str(key.hazard), key.worker,
                          1.0, 1.0, "", t, since, PROFILE, "source", "action", "message", by)  # fmt: skip

    out = [ev(AlertEventKind.RAISED, since), ev(AlertEventKind.CLEARED, since + 1800)]
    if ack_after is not None:
        out.append(ev(AlertEventKind.ACKNOWLEDGED, since + ack_after, "officer"))
    return out


def alerts(channels: int, month: str, seed: int) -> list[AlertEvent]:
    rng = np.random.default_rng(seed)
    shifts = month_shifts(month)
    keys = channel_keys(channels)
    events = []
    for i in range(channels * ALERTS_PER_CHANNEL_MONTH):
        key = keys[int(rng.integers(len(keys)))][0]
        since = shifts[int(rng.integers(len(shifts)))][1] + float(rng.uniform(0, 8 * 3600))
        rule, sev = (RuleKind.STEL, Severity.ALARM) if i % 4 else (RuleKind.OFFLINE, Severity.MALFUNCTION)
        ack_after = float(rng.exponential(120)) if rng.random() < 0.9 else None
        events += _events(f"{month}-{i}", key, rule, sev, since, ack_after)
    return events


def months_back(month: str, n: int) -> list[str]:
    y, m = (int(p) for p in month.split("-"))
    out = []
    for _ in range(n):
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        out.append(f"{y:04d}-{m:02d}")
    return out


def fill(store: SqliteStore, channels: int, days: int, history: int) -> int:
    rows = 0
    for i, month in enumerate([MONTH, *months_back(MONTH, history)]):
        recs = exposures(channels, month, days if month == MONTH else 28, seed=i)
        for start in range(0, len(recs), 20_000):
            store.write_exposures(recs[start : start + 20_000])
        store.write_alert_events(alerts(channels, month, seed=100 + i))
        rows += len(recs)
    return rows


def run(channels: int, days: int, history: int, rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        rows = fill(store, channels, days, history)
        fill_s = time.perf_counter() - t0
        times = []
        profile_rows = describe_limits(BOOK, PROFILE)
        for r in range(rounds):
            t0 = time.perf_counter()
            out = build_monthly(store, MONTH, SITE, "en", Path(tmp) / f"out{r}", limits_profile_rows=profile_rows,
                                pseudonym_key=b"bench", now_s=time.time())  # fmt: skip
            times.append(time.perf_counter() - t0)
        size = out.stat().st_size
        store.close()
    return {"rows": rows, "fill_s": fill_s, "median_s": statistics.median(times), "max_s": max(times),
            "html_kib": size / 1024}  # fmt: skip


def report(args: argparse.Namespace, results: list[tuple[int, dict[str, float]]]) -> str:
    lines = [
        BEGIN, "## Monthly report (reports)", "",
        f"Command: `.venv/bin/python -m bench.report --channels {args.channels} --days {args.days} "
        f"--rounds {args.rounds}` ({time.strftime('%Y-%m-%d')}).",
        f"Machine: {machine()}.", "",
        f"One site, {args.channels:,} channels ({len(HAZARDS)} hazards with the `eu` profile's limits, {ZONES} zones,",
        f"every fifth a personal monitor), {args.days} days × 3 shifts, {ALERTS_PER_CHANNEL_MONTH} alerts per channel "
        "and month, in a SQLite file.",
        "`build_monthly` end to end: query, statistics, EN 689 per SEG, 6 charts, HTML, summary.json, 8 CSVs;",
        f"median of {args.rounds} runs. It reads exposure records and alert events only, never raw readings, and only",
        "the months of its trend window (this month and the 3 before it): older history costs nothing.",
        "Time grows with the exposure rows read: the trend months are most of it once history is stored.",
        "",
        "| stored history | exposure rows in the store | report time (median) | slowest run | report.html |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for history, r in results:
        label = "this month only" if history == 0 else f"this month + {history} earlier months (trend)"
        lines.append(f"| {label} | {r['rows']:,.0f} | **{r['median_s']:.1f} s** | {r['max_s']:.1f} s "
                     f"| {r['html_kib']:,.0f} KiB |")  # fmt: skip
    worst = max(r["max_s"] for _, r in results)
    verdict = "met" if worst < GOAL_S else "NOT met"
    lines += [
        "",
        f"Goal: under {GOAL_S:.0f} s for 1,000 channels and 30 days: **{verdict}** (slowest run {worst:.1f} s).",
        "The machine is shared (2 cores, other jobs running), so single runs vary.",
        END,
    ]
    return "\n".join(lines)


def update(doc: Path, section: str) -> None:
    update_section(doc, BEGIN, END, section)


def main(argv: list[str] | None = None) -> int:
    doc = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--history", type=int, default=3, help="also run with this many earlier months stored")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--update", type=Path, help="replace the report section of this Markdown file")
    args = parser.parse_args(argv)
    results = []
    for history in sorted({0, args.history}):
        r = run(args.channels, args.days, history, args.rounds)
        print(f"history={history}: {r['rows']:,} rows, fill {r['fill_s']:.1f} s, report median {r['median_s']:.2f} s, "
              f"max {r['max_s']:.2f} s, html {r['html_kib']:.0f} KiB", flush=True)  # fmt: skip
        results.append((history, r))
    section = report(args, results)
    if args.update:
        update(args.update, section)
    else:
        print(section)
    return 0 if max(r["max_s"] for _, r in results) < GOAL_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
