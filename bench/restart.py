"""Start-up benchmark: rebuilding the open alerts (and the audit chain's head) from a store's alert log.

    .venv/bin/python -m bench.restart [--alerts 50000] [--open-every 50] [--update docs/benchmarks.md]

A real SQLite store filled with `--alerts` offline alerts (raised, then cleared, except every
`--open-every`-th one, which stays open), sealed in one audit chain; then the gateway's start-up
path (`gateway.checkpoint.load_alerts` with the chain-head fold of `gateway/runtime.py`) is
timed with no checkpoint: the worst case, a lost state directory. The gateway opens its MQTT
connection only after this, so it is the time alarms wait at a restart (issue 9: open alerts
are always rebuilt from the store).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from alerts.lifecycle import AlertBook
from alerts.policy import AlertPolicy
from alerts.state import AlertSubject
from alerts.types import AlertEvent, AlertEventKind
from bench import common
from gateway.checkpoint import Checkpoint, load_alerts
from rules.profiles import ProfileBook
from rules.types import RuleKind, Severity
from storage.sqlite import SqliteStore

BEGIN, END = "<!-- restart:begin -->", "<!-- restart:end -->"


def events(n_alerts: int, open_every: int, t0: float) -> list[AlertEvent]:
    out: list[AlertEvent] = []
    for i in range(n_alerts):
        kinds = [("raised", 0.0)] if i % open_every == 0 else [("raised", 0.0), ("cleared", 60.0)]
        for kind, dt in kinds:
            ev = AlertEvent(
                alert_id=f"A{i:07d}", event=AlertEventKind(kind), severity=Severity.MALFUNCTION,
                rule=RuleKind.OFFLINE, site="kop-1", zone="z", device=f"d{i}", hazard="device", worker=None,
                value=None, threshold=None, unit="", t_s=t0 + 10 * i + dt, since_s=t0 + 10 * i, profile="",
                limit_source="", action="", message="offline", audit_chain="gw", audit_seq=len(out),
                prev_hash="0" * 64, hash=f"{len(out):064x}",
            )  # fmt: skip
            out.append(ev)
    return out


def run(n_alerts: int, open_every: int) -> tuple[int, int, float]:
    """(stored events, open alerts rebuilt, seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "osh.sqlite")
        evs = events(n_alerts, open_every, time.time() - 30 * 86400.0)
        for k in range(0, len(evs), 5000):
            store.write_alert_events(evs[k : k + 5000])
        heads: list[int] = []
        start = time.perf_counter()
        book = load_alerts(
            Checkpoint(Path(tmp) / "state" / "alerts.json", "bench"), store, ProfileBook.load().limits,
            AlertPolicy(), lambda _r: True, lambda r: heads.append(int(r["audit_seq"])),
        )  # fmt: skip
        took = time.perf_counter() - start
        store.close()
        assert max(heads) == len(evs) - 1
        return len(evs), len(book.open_alerts()), took


def checkpoint_cost(n_open: int) -> tuple[float, float, int]:
    """(snapshot s in the gateway's loop, write s in the worker, bytes) for `n_open` open alerts."""
    book = AlertBook()
    for i in range(n_open):
        subject = AlertSubject("kop-1", "z", f"d{i}", "device")
        book.raise_health(subject, RuleKind.OFFLINE, t_s=1e9, now_s=1e9, message=f"d{i} silent for 3 min " * 3)
    with tempfile.TemporaryDirectory() as tmp:
        ck = Checkpoint(Path(tmp) / "alerts.json", "bench")
        start = time.perf_counter()
        snap = book.snapshot()
        snap_s = time.perf_counter() - start
        start = time.perf_counter()
        ck.save(lambda: snap, force=True)
        write_s = time.perf_counter() - start
        return snap_s, write_s, (Path(tmp) / "alerts.json").stat().st_size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=50_000)
    ap.add_argument("--open-every", type=int, default=50)
    ap.add_argument("--checkpoint-alerts", type=int, default=20_000)
    ap.add_argument("--update", type=Path)
    args = ap.parse_args(argv)
    rows = [run(n, args.open_every) for n in (args.alerts // 10, args.alerts)]
    table = "\n".join(f"| {ev:,} | {op:,} | {s:.1f} s | {ev / s:,.0f} |" for ev, op, s in rows)
    snap_s, write_s, size = checkpoint_cost(args.checkpoint_alerts)
    ck_line = (
        f"Alert checkpoint with {args.checkpoint_alerts:,} open alerts ({size / 2**20:.1f} MiB): snapshot "
        f"{snap_s:.2f} s, then JSON encoding + write + fsync {write_s:.2f} s, of which only the encoding "
        "runs in the gateway's loop (the file is written by a worker thread)."
    )
    print(table, ck_line, sep="\n")
    if args.update:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        section = f"""{BEGIN}
## Restart: open alerts rebuilt from the alert log (gateway)

Command: `.venv/bin/python -m bench.restart --alerts {args.alerts} --open-every {args.open_every} \
--checkpoint-alerts {args.checkpoint_alerts}`;
run {when}. Machine: {common.machine()}.

The stored alert log of a SQLite store (offline alerts raised and cleared, one in {args.open_every}
still open, one audit chain) is read once at start-up, with no checkpoint (a lost state directory:
the worst case); the gateway subscribes to MQTT only afterwards, so this is how long alarms wait at a
restart (docs/durability.md, "Gateway state belongs to its store").

| stored alert events | open alerts rebuilt | start-up time | events/s |
|---|---|---|---|
{table}

{ck_line} It is written at most once a second
(less often when slow: at most 5 % of the time).

Most of the time is the store turning rows into records (`storage/records.py`); the fold keeps
only the events of alerts open since their latest clear, so memory follows the open alerts.
{END}"""
        common.update_section(args.update, BEGIN, END, section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
