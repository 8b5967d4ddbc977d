"""`oshmon` reading commands on real SQLite files and a real influxd (issue 13 points 5 and 6,
issue 9 point 4): wrong input is an error naming the known values, a missing or unreachable
store is one line and exit 1 and is never created, tables fit the terminal without cutting
an alert_id."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from reports.history import render
from rules.types import ChannelKey, Hazard, ReadingBatch
from storage.base import HistoryQuery, RecordKind
from storage.sqlite import SqliteStore
from tests.mqtt_helpers import ROOT
from tests.report_data import MonthSpec, alert_events, exposures
from tests.services import Influxd, free_port

T0 = 1_793_000_000.0  # 2026-10-25


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "osh.db"
    st = SqliteStore(path)
    keys = [ChannelKey("kop-1", "north", "gd-1", Hazard.CO), ChannelKey("kop-1", "north", "gd-1", Hazard.CH4)]
    n = 100
    st.write_readings(keys, ReadingBatch(np.arange(n) % 2, T0 + np.arange(n, dtype=np.float64), np.linspace(0, 2, n)))
    st.write_exposures(list(exposures(MonthSpec(workers_per_zone=1, area_devices_per_zone=1), "2026-11"))[:60])
    st.write_alert_events(alert_events(MonthSpec(), "2026-11", 12))
    st.close()
    yield path


def oshmon(env: dict[str, str], *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": str(columns), "OSH_MQTT_URL": f"mqtt://127.0.0.1:{free_port()}", **env}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60
    )


def sqlite_env(path: Path) -> dict[str, str]:
    return {"OSH_STORE": "sqlite", "OSH_SQLITE_PATH": str(path), "OSH_STATE_DIR": str(path.parent / "state")}


def one_line_error(done: subprocess.CompletedProcess[str], rc: int) -> str:
    assert done.returncode == rc, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


# ---- point 5: a missing or unreachable store -------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ("history",),
        ("history", "--kind", "alerts"),
        ("report", "monthly", "--month", "2026-11", "--out", "OUT"),
        ("export", "evidence", "--site", "kop-1", "--from", "2026-11-01", "--to", "2026-12-01", "--out", "OUT"),
        ("audit", "verify"),
        ("ack", "01M8NGC7X5Z9BQ1ZR5ZSWZM0KH", "--by", "M. Ortiz"),
    ],
)
def test_missing_sqlite_store_is_named_and_never_created(tmp_path: Path, args: tuple[str, ...]) -> None:
    wrong = tmp_path / "wrong" / "path.db"
    done = oshmon(sqlite_env(wrong), *(str(tmp_path / "out") if a == "OUT" else a for a in args))
    err = one_line_error(done, 1)
    assert str(wrong) in err and "nothing was created" in err
    assert not wrong.exists() and not wrong.parent.exists()


def test_unreachable_influxdb_is_one_line(tmp_path: Path) -> None:
    env = {"OSH_STORE": "influx", "OSH_INFLUX_URL": f"http://127.0.0.1:{free_port()}", "OSH_STATE_DIR": str(tmp_path)}
    for args in (("history",), ("audit", "verify")):
        assert "unreachable" in one_line_error(oshmon(env, *args), 1)


@pytest.mark.integration
def test_missing_influx_database_is_not_created(influxd: Influxd, tmp_path: Path) -> None:
    env = {
        "OSH_STORE": "influx",
        "OSH_INFLUX_URL": influxd.url,
        "OSH_INFLUX_DB": "never_made",
        "OSH_STATE_DIR": str(tmp_path),
    }
    assert "never_made" in one_line_error(oshmon(env, "history", "--kind", "alerts"), 1)
    import httpx

    shown = httpx.post(f"{influxd.url}/query", params={"q": "SHOW DATABASES"}).json()
    assert "never_made" not in str(shown)


# ---- point 5: values checked against the known ones -------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--site", "KOP-1"), "did you mean kop-1?"),
        (("--site", "kop-9"), "known: kop-1"),
        (("--kind", "alerts", "--severity", "crit"), "did you mean critical?"),
        (("--kind", "alerts", "--rule", "peak"), "unknown rule"),
        (("--hazard", "carbon"), "known: ch4, co"),
        (("--severity", "alarm"), "only applies to --kind alerts"),
    ],
)
def test_wrong_filter_values_are_errors_not_empty_results(db: Path, args: tuple[str, ...], expected: str) -> None:
    assert expected in one_line_error(oshmon(sqlite_env(db), "history", *args), 2)


@pytest.mark.parametrize(("given", "stored"), [("CO", "co"), ("methane", "ch4"), ("Carbon-Monoxide", "co")])
def test_hazard_names_are_case_insensitive_with_common_names(db: Path, given: str, stored: str) -> None:
    done = oshmon(sqlite_env(db), "history", "--hazard", given, "--format", "csv")
    assert done.returncode == 0, done.stderr
    hazards = {line.split(",")[4] for line in done.stdout.splitlines()[1:]}
    assert hazards == {stored}


def test_export_of_an_unknown_site_is_an_error_and_writes_nothing(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    args = ("export", "evidence", "--site", "kop-9", "--from", "2026-10-01", "--to", "2026-12-01", "--out", str(out))
    assert "unknown site" in one_line_error(oshmon(sqlite_env(db), *args), 2)
    assert not out.exists()


def test_ack_with_the_broker_down_is_one_line(db: Path) -> None:
    raised = next(e for e in alert_events(MonthSpec(), "2026-11", 1) if e.event == "raised")
    store = SqliteStore(db)
    store.write_alert_events([replace(raised, alert_id="01OPENALERT000000000000000", audit_seq=None, hash=None)])
    store.close()
    done = oshmon(sqlite_env(db), "ack", "01OPENALERT000000000000000", "--by", "M. Ortiz")
    assert "cannot connect to the MQTT broker" in one_line_error(done, 1)


# ---- point 6 / issue 9 point 4: what the terminal shows ---------------------------------------------
@pytest.mark.parametrize("kind", list(RecordKind))
@pytest.mark.parametrize("width", [80, 160])
def test_tables_fit_the_width_and_never_cut_an_alert_id(db: Path, kind: RecordKind, width: int) -> None:
    store = SqliteStore(db)
    out = io.StringIO()
    n = render(store.query(HistoryQuery(kind, newest_first=kind is RecordKind.ALERTS)), kind, "table", out, width=width)
    lines = out.getvalue().splitlines()
    assert n > 0 and all(len(line.rstrip()) <= width for line in lines), max(map(len, lines))
    assert "…" not in out.getvalue()
    if kind is RecordKind.ALERTS:
        tokens = {w for line in lines for w in line.split()}
        stored = {r["alert_id"] for r in store.query(HistoryQuery(kind))}
        assert stored <= tokens, "every alert_id shown whole"
        times = [line[:19] for line in lines[1:] if line[:1].isdigit()]
        assert len(times) == n and times == sorted(times, reverse=True), "newest first"
    if kind is RecordKind.EXPOSURES:
        assert {"limit", "unit", "8-h avg"} <= set(re.split(r"\s{2,}", lines[0].strip()))
    store.close()


def test_wide_shows_every_column(db: Path) -> None:
    done = oshmon(sqlite_env(db), "history", "--kind", "alerts", "--wide")
    header = done.stdout.splitlines()[0]
    for col in ("time (UTC)", "event", "severity", "rule", "site", "zone", "device", "hazard", "value", "limit",
                "by", "note", "alert_id"):  # fmt: skip
        assert col in header


@pytest.mark.parametrize("width", [80, 160])
def test_limits_are_readable_blocks(width: int, tmp_path: Path) -> None:
    done = oshmon({"OSH_STATE_DIR": str(tmp_path)}, "limits", "--profile", "eu", columns=width)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= width for line in lines), max(map(len, lines))
    words = [w for line in lines if line.startswith("    action") for w in line.split()[1:]]
    assert len(words) >= 3, "the action starts on its label's line with several words, not one per line"
    assert "Directive (EU) 2017/164, Annex (CO, 15 min)" in done.stdout.replace("\n", " ").replace("  ", " ")


@pytest.mark.integration
def test_influx_sites_are_checked(influxd: Influxd, tmp_path: Path) -> None:
    from storage.factory import open_store

    db = f"sites_{os.getpid()}"
    st = open_store("influx", influx_url=influxd.url, influx_db=db)
    key = ChannelKey("kop-1", "north", "gd-1", Hazard.CO)
    st.write_readings([key], ReadingBatch(np.zeros(3, np.int64), T0 + np.arange(3.0), np.ones(3)))
    st.close()
    env = {"OSH_STORE": "influx", "OSH_INFLUX_URL": influxd.url, "OSH_INFLUX_DB": db, "OSH_STATE_DIR": str(tmp_path)}
    assert "known: kop-1" in one_line_error(oshmon(env, "history", "--site", "kop-9"), 2)
    done = oshmon(env, "history", "--site", "kop-1", "--format", "csv")
    assert done.returncode == 0 and len(done.stdout.splitlines()) == 4, done.stderr


def test_export_into_a_non_empty_folder_is_one_line(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "full"
    out.mkdir()
    (out / "keep.txt").write_text("do not overwrite")
    args = ("export", "evidence", "--site", "kop-1", "--from", "2026-10-01", "--to", "2026-12-01", "--out", str(out))
    assert "not an empty folder" in one_line_error(oshmon(sqlite_env(db), *args), 2)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_status_names_a_missing_store(tmp_path: Path) -> None:
    wrong = tmp_path / "nowhere.db"
    done = oshmon(sqlite_env(wrong), "status")
    assert done.returncode == 1 and str(wrong) in done.stderr and "Traceback" not in done.stderr
    assert not wrong.exists()


def test_control_characters_never_reach_the_terminal() -> None:
    row = {"t": "2026-11-01T00:00:00Z", "event": "acknowledged", "severity": "alarm", "hazard": "co",
           "alert_id": "01M8NGC7X5Z9BQ1ZR5ZSWZM0KH", "by": "Ana\x1b]0;pwned\x07",
           "note": "ok\n2026 INFO forged"}  # fmt: skip
    out = io.StringIO()
    render(iter([row]), RecordKind.ALERTS, "table", out, width=None)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\\x1b" in text
    assert len(text.strip().splitlines()) == 2, text  # header + one row: the newline did not start a line
