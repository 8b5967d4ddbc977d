"""SqliteStore specifics: durability settings, concurrency, retention, the factory."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from rules.errors import ConfigError, StoreError
from storage.base import HistoryQuery, RecordKind
from storage.factory import open_store
from storage.records import Retention
from storage.sqlite import SqliteStore
from tests.storage_data import KEYS, T0, alert, batch, exposure, grid

R = RecordKind.READINGS


def count(store: SqliteStore, kind: RecordKind = R) -> int:
    return sum(1 for _ in store.query(HistoryQuery(kind)))


def test_file_uses_wal_and_full_sync(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "osh.db")
    assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    store.close()


def test_data_survives_reopening(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "osh.db")
    store.write_readings(KEYS, grid(10))
    store.write_alert_events([alert()])
    store.close()
    again = SqliteStore(tmp_path / "osh.db")
    assert count(again) == 40
    assert count(again, RecordKind.ALERTS) == 1
    again.write_readings(KEYS, grid(10))  # series ids found again, not duplicated
    assert count(again) == 40
    again.close()


@pytest.mark.parametrize(
    "q",
    [
        HistoryQuery(RecordKind.READINGS),
        HistoryQuery(RecordKind.READINGS, t_from_s=T0 + 3, t_to_s=T0 + 7),
        HistoryQuery(RecordKind.READINGS, device=KEYS[1].device, limit=5),
        HistoryQuery(RecordKind.ALERTS),
    ],
)
def test_count_is_the_number_of_rows_query_returns(tmp_path: Path, q: HistoryQuery) -> None:
    store = SqliteStore(tmp_path / "osh.db")
    store.write_readings(KEYS, grid(10))
    store.write_alert_events([alert()])
    assert store.count(q) == len(list(store.query(q))) > 0
    store.close()


def test_other_process_reads_while_this_one_writes(tmp_path: Path) -> None:
    path = tmp_path / "osh.db"
    store = SqliteStore(path)
    store.write_readings(KEYS, grid(100))
    # An open write transaction must not block the reader (WAL): it sees the last commit.
    with store._writing() as db:
        db.execute("DELETE FROM reading")
        code = (
            "import sys; from pathlib import Path; from storage.sqlite import SqliteStore;"
            "from storage.base import HistoryQuery, RecordKind;"
            "s = SqliteStore(Path(sys.argv[1]));"
            "print(sum(1 for _ in s.query(HistoryQuery(RecordKind.READINGS))))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60, check=False
        )
    assert (out.returncode, out.stdout.strip()) == (0, "400"), out.stderr
    assert count(store) == 0
    store.close()


def test_threads_write_and_read_concurrently(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "osh.db")
    errors: list[BaseException] = []
    seen: list[int] = []

    def writer(offset: int) -> None:
        try:
            for i in range(20):
                b = grid(50)
                store.write_readings(KEYS, batch(b.channel, b.t_s + offset + i * 100, b.value))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def reader() -> None:
        try:
            for _ in range(20):
                seen.append(count(store))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(o,)) for o in (0, 10_000)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert count(store) == 2 * 20 * 200
    assert len(seen) == 40 and all(s % 200 == 0 for s in seen)  # readers saw whole commits only
    store.close()


def test_retention_prunes_by_kind(tmp_path: Path) -> None:
    now = [T0 + 10 * 86_400]
    retention = Retention(readings_days=7, exposures_days=400, alerts_days=0)
    store = SqliteStore(tmp_path / "osh.db", retention=retention, clock=lambda: now[0])
    store.write_readings(KEYS, batch([0, 0], [T0, T0 + 5 * 86_400], [1.0, 2.0]))
    store.write_exposures([exposure()])
    store.write_alert_events([alert()])
    assert count(store) == 1  # the 10-day-old reading went with the first write
    assert store.prune() == 0
    now[0] = T0 + 500 * 86_400
    assert store.prune() == 2  # the other reading and the exposure; alerts kept forever
    assert count(store) == 0 and count(store, RecordKind.EXPOSURES) == 0
    assert count(store, RecordKind.ALERTS) == 1
    store.close()


@pytest.mark.parametrize("field", ["alerts_days", "exposures_days"])
def test_retention_below_one_year_is_refused_for_records(field: str) -> None:
    with pytest.raises(ConfigError, match=r"30 CFR 75\.351\(p\)"):
        Retention(**{field: 90})
    assert Retention(readings_days=30).readings_days == 30
    assert Retention().alerts_days >= 365 and Retention().exposures_days >= 365


def test_factory(tmp_path: Path) -> None:
    store = open_store("sqlite", sqlite_path=tmp_path / "sub" / "x.db")
    assert isinstance(store, SqliteStore) and (tmp_path / "sub" / "x.db").exists()
    store.close()
    with pytest.raises(ConfigError, match="expected 'influx' or 'sqlite'"):
        open_store("postgres")


def test_unwritable_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot open SQLite store"):
        SqliteStore(tmp_path / "file" / "osh.db")


def test_schema_is_readable_with_plain_sqlite(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "osh.db")
    store.write_readings(KEYS, grid(2))
    store.close()
    with sqlite3.connect(tmp_path / "osh.db") as db:
        got = db.execute("SELECT site, hazard, value FROM readings ORDER BY t_ms, value").fetchall()
    assert got[:2] == [("kop-1", "co", 0.25), ("kop-1", "ch4", 1000.25)]
    assert np.isclose(sum(v for *_, v in got), sum(grid(2).value.tolist()))


def test_a_version_3_store_gains_the_shift_average_column_and_keeps_its_exposures(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite"
    store = SqliteStore(path)
    store.write_exposures([exposure()])
    store.close()
    with sqlite3.connect(path) as db:  # back to the version-3 layout: no shift_avg column
        db.execute("ALTER TABLE exposure DROP COLUMN shift_avg")
        db.execute("PRAGMA user_version = 3")
    store = SqliteStore(path)
    try:
        (old,) = store.query(HistoryQuery(RecordKind.EXPOSURES))
        store.write_exposures([exposure(shift="2026-11-22/2", shift_avg=1.4)])
        got = list(store.query(HistoryQuery(RecordKind.EXPOSURES)))
    finally:
        store.close()
    assert (old["twa8"], old["shift_avg"]) == (12.5, None)
    assert [r["shift_avg"] for r in got] == [None, 1.4]
