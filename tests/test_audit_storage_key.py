"""Issue 15 point 3: every alert event has its own storage key; `audit verify` lists every break.

Two acknowledgements in the same millisecond used to share every tag and the time stamp, so the
second overwrote the first in SQLite and in InfluxDB, and the untouched chain then failed to
verify. Both stores are real (a SQLite file, Debian's influxd).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.config import Settings, load_settings
from gateway.runtime import Runtime, verify_audit_chain
from rules.results import ConditionBatch
from rules.types import RULE_CODE, SEVERITY_BY_CODE, ChannelKey, Hazard, RuleKind
from storage.base import HistoryQuery, RecordKind
from storage.sqlite import SqliteStore
from tests.services import Influxd

_db_counter = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", pytest.param("influx", marks=pytest.mark.integration)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    common: dict[str, Any] = {"state_dir": tmp_path / "state", "mqtt_client_id": "gw-key", "profile": "us-msha"}
    if request.param == "sqlite":
        return load_settings(None, store="sqlite", sqlite_path=tmp_path / "osh.sqlite", **common)
    server: Influxd = request.getfixturevalue("influxd")
    return load_settings(None, store="influx", influx_url=server.url, influx_db=f"key{next(_db_counter)}", **common)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.build(settings)
    yield rt
    rt.close()


def _raise_ch4_alarm(rt: Runtime, t_s: float) -> str:
    ch = rt.engine.registry.id_for(ChannelKey("kop-1", "z1", "d1", Hazard.CH4))
    lim = next(i for i, x in enumerate(rt.book.limits) if x.hazard is Hazard.CH4 and x.rule is RuleKind.LEVEL)
    sev = SEVERITY_BY_CODE.index(rt.book.limits[lim].severity)
    rows = ConditionBatch(
        np.array([ch]), np.array([RULE_CODE[RuleKind.LEVEL]], np.int8), np.array([sev], np.int8),
        np.array([rt.book.limits[lim].threshold * 2]), np.array([rt.book.limits[lim].threshold]),
        np.array([t_s]), np.array([lim], np.int32),
    )  # fmt: skip
    [raised] = rt.alerts.on_conditions(rows, rt.engine.registry, rt.book.limits, t_s)
    rt.record_events([raised])
    return raised.alert_id


def test_two_acks_in_the_same_millisecond_are_both_stored(runtime: Runtime, settings: Settings) -> None:
    t = float(int(time.time()) - 600)
    alert_id = _raise_ch4_alarm(runtime, t)
    now = t + 30.0001  # both acks in one millisecond
    first, err1 = runtime.acknowledge(alert_id, "shift boss A", "ventilation checked", now)
    second, err2 = runtime.acknowledge(alert_id, "foreman B", "found a leaking valve", now + 0.0002)
    assert first is not None and second is not None, (err1, err2)
    runtime.record_events([first, second])
    acks = [r for r in runtime.store.query(HistoryQuery(RecordKind.ALERTS)) if r["event"] == "acknowledged"]
    assert [(r["by"], r["audit_seq"]) for r in acks] == [("shift boss A", 1), ("foreman B", 2)]
    assert acks[0]["t"] == acks[1]["t"]
    ok, message = verify_audit_chain(settings)
    assert ok, message


def test_an_old_sqlite_store_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the version-2 layout: the key had no audit part
        db.executescript(
            "CREATE TABLE alert (site TEXT NOT NULL, zone TEXT NOT NULL, device TEXT NOT NULL, hazard TEXT NOT NULL,"
            " worker TEXT NOT NULL DEFAULT '', rule TEXT NOT NULL, severity TEXT NOT NULL, event TEXT NOT NULL,"
            " t_ms INTEGER NOT NULL, alert_id TEXT, value REAL, threshold REAL, unit TEXT, since_s REAL,"
            " profile TEXT, limit_source TEXT, action TEXT, message TEXT, by TEXT, note TEXT, audit_chain TEXT,"
            " audit_seq INTEGER, prev_hash TEXT, hash TEXT,"
            " PRIMARY KEY (site, zone, device, hazard, worker, rule, severity, event, t_ms));"
            "INSERT INTO alert (site, zone, device, hazard, rule, severity, event, t_ms, alert_id, audit_chain,"
            " audit_seq) VALUES ('kop-1', 'z', 'd', 'co', 'level', 'alarm', 'raised', 1000, 'A', 'gw', 0),"
            " ('kop-1', 'z', 'd', 'co', 'level', 'alarm', 'cleared', 2000, 'A', NULL, NULL);"
            "PRAGMA user_version = 2;"
        )
    store = SqliteStore(path)
    try:
        got = list(store.query(HistoryQuery(RecordKind.ALERTS)))
        assert [(r["event"], r["audit_chain"], r["audit_seq"]) for r in got] == [
            ("raised", "gw", 0), ("cleared", None, None),
        ]  # fmt: skip
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        keys = [r[0] for r in db.execute("SELECT audit_key FROM alert ORDER BY t_ms")]
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 3
    assert keys == ["gw:000000000000", ""]
