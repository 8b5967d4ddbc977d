"""The store contract (storage/base.py), run unchanged against every store on real servers."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alerts.types import AlertEventKind, rfc3339
from rules.results import Averaging
from rules.types import ChannelKey, Hazard, ReadingBatch, RuleKind, Severity
from storage.base import COLUMNS, HistoryQuery, PartialWriteError, RecordKind, Store
from storage.factory import open_store
from tests.services import Influxd
from tests.storage_data import KEYS, T0, alert, batch, exposure, grid

R, E, A = RecordKind.READINGS, RecordKind.EXPOSURES, RecordKind.ALERTS
_db_counter = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", pytest.param("influx", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s = open_store("sqlite", sqlite_path=tmp_path / "osh.db")
    else:
        server: Influxd = request.getfixturevalue("influxd")
        s = open_store("influx", influx_url=server.url, influx_db=f"contract{next(_db_counter)}")
    yield s
    s.close()


def rows(store: Store, kind: RecordKind, **filters: Any) -> list[dict[str, Any]]:
    return list(store.query(HistoryQuery(kind, **filters)))


def test_readings_round_trip_in_time_order(store: Store) -> None:
    b = grid(5)
    store.write_readings(KEYS, b)
    got = rows(store, R)
    assert len(got) == 20
    assert all(tuple(r) == COLUMNS[R] for r in got)
    assert [r["t"] for r in got] == sorted(r["t"] for r in got)
    first = got[0]
    assert first == {
        "t": "2026-11-22T06:00:00Z", "site": "kop-1", "zone": "north-adit", "device": "gd-17",
        "hazard": "ch4", "worker": None, "value": 1000.25, "unit": "%vol",
    }  # fmt: skip
    noise = [r for r in got if r["hazard"] == "noise"]
    assert [r["value"] for r in noise] == [2000.25 + i for i in range(5)]
    assert all(r["worker"] == "w-042" and r["unit"] == "dBA" for r in noise)
    assert all(isinstance(r["value"], float) for r in got)


def test_equal_times_are_ordered_by_tag_set(store: Store) -> None:
    store.write_readings(KEYS, batch([3, 2, 1, 0], [T0] * 4, [1.0, 2.0, 3.0, 4.0]))
    got = rows(store, R)
    assert [(r["site"], r["zone"], r["hazard"]) for r in got] == [
        ("kop-1", "north-adit", "ch4"), ("kop-1", "north-adit", "co"),
        ("kop-1", "south", "noise"), ("kop-2", "shaft", "o2"),
    ]  # fmt: skip


def test_same_series_and_time_overwrites(store: Store) -> None:
    b = grid(3)
    store.write_readings(KEYS, b)
    store.write_readings(KEYS, b)  # an at-least-once duplicate
    store.write_readings(KEYS, batch([0], [T0 + 1], [99.5]))
    got = rows(store, R, hazard="co")
    assert [r["value"] for r in got] == [0.25, 99.5, 2.25]
    assert len(rows(store, R)) == 12


def test_time_is_kept_to_the_millisecond(store: Store) -> None:
    store.write_readings(KEYS, batch([0, 0, 0], [T0 + 0.123, T0 + 0.1234, T0 + 7.5], [1.0, 2.0, 3.0]))
    got = rows(store, R)
    assert [(r["t"], r["value"]) for r in got] == [
        ("2026-11-22T06:00:00.123Z", 2.0), ("2026-11-22T06:00:07.500Z", 3.0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"site": "kop-2"}, 5),
        ({"zone": "north-adit"}, 10),
        ({"device": "pm-3"}, 5),
        ({"worker": "w-042"}, 5),
        ({"hazard": "co"}, 5),
        ({"site": "kop-1", "hazard": "ch4", "t_from_s": T0 + 1, "t_to_s": T0 + 3}, 2),
        ({"t_from_s": T0 + 3.5}, 4),
        ({"t_to_s": T0 + 0.0005}, 4),
        ({"site": "nowhere"}, 0),
        ({"limit": 7}, 7),
        ({"rule": "stel", "severity": "alarm"}, 20),  # alert-only filters do not apply
    ],
)
def test_reading_filters(store: Store, filters: dict[str, Any], expected: int) -> None:
    store.write_readings(KEYS, grid(5))
    got = rows(store, R, **filters)
    assert len(got) == expected
    for name in ("site", "zone", "device", "worker", "hazard"):
        if name in filters:
            assert {r[name] for r in got} <= {filters[name]}
    if "limit" in filters:
        assert got == rows(store, R)[: filters["limit"]]


def test_non_finite_values_are_refused_and_the_rest_stored(store: Store) -> None:
    with pytest.raises(PartialWriteError) as info:
        store.write_readings(KEYS, batch([0, 1, 2, 3], [T0] * 4, [1.0, math.nan, 3.0, math.inf]))
    assert info.value.accepted == 2 and not info.value.retryable
    assert len(info.value.rejected) == 2
    assert "not a finite number" in info.value.rejected[0].reason
    assert [r["value"] for r in rows(store, R)] == [1.0, 3.0]


def test_unstorable_tag_is_refused_with_a_reason(store: Store) -> None:
    keys = [*KEYS, ChannelKey("kop-1", "south", "pm-9", Hazard.CO, worker="bad\nname")]
    with pytest.raises(PartialWriteError) as info:
        store.write_readings(keys, batch([4, 0], [T0, T0], [1.0, 2.0]))
    assert "line break" in info.value.rejected[0].reason
    assert [r["device"] for r in rows(store, R)] == ["gd-17"]


def test_exposures_round_trip_and_final_overwrites_running(store: Store) -> None:
    store.write_exposures([exposure(final=False, twa8=3.0, stel15_max=None)])
    store.write_exposures([exposure(final=True), exposure(KEYS[2], lex8h=86.1, dose_pct=130.0)])
    got = rows(store, E)
    assert all(tuple(r) == COLUMNS[E] for r in got)
    assert [r["hazard"] for r in got] == ["co", "noise"]
    co, noise = got
    assert co == {
        "t": "2026-11-22T06:00:00Z", "site": "kop-1", "zone": "north-adit", "device": "gd-17",
        "hazard": "co", "worker": None, "shift": "2026-11-22/1", "twa8": 12.5, "stel15_max": 40.0,
        "peak": 112.4, "coverage": 0.97, "max_gap_s": 61.0, "lex8h": None, "dose_pct": None,
        "shift_avg": None, "profile": "eu", "limits": {"limit_stel15": 100.0, "limit_twa8": 20.0}, "final": True,
        "sensor_faulty": False,
    }  # fmt: skip
    assert (noise["worker"], noise["lex8h"], noise["dose_pct"]) == ("w-042", 86.1, 130.0)
    assert rows(store, E, worker="w-042") == [noise]
    assert rows(store, E, t_from_s=T0 + 1) == []


def test_a_shift_average_record_keeps_its_shift_average(store: Store) -> None:
    """A 10-h shift under a shift-average limit (30 CFR 70.100): ∫C dt / 10 h is stored exactly."""
    dust = ChannelKey("kop-1", "longwall", "pd-1", Hazard.RESPIRABLE_DUST)
    store.write_exposures([exposure(dust, twa8=1.75, shift_end_s=T0 + 10 * 3600, limits={"limit_shift_avg": 1.5},
                                    averaging=Averaging.SHIFT, shift_avg=1.4)])  # fmt: skip
    (got,) = rows(store, E)
    assert (got["twa8"], got["shift_avg"], got["limits"]) == (1.75, 1.4, {"limit_shift_avg": 1.5})


def test_alert_events_round_trip_with_filters(store: Store) -> None:
    raised = alert()
    acked = alert(AlertEventKind.ACKNOWLEDGED, t_s=T0 + 160, by="J. Nowak", note="fan restarted")
    other = alert(t_s=T0 + 50, key=KEYS[2], rule=RuleKind.LEX8H, severity=Severity.WARNING,
                  alert_id="a-2", value=None, threshold=None, unit="dBA")  # fmt: skip
    store.write_alert_events([raised, acked, other])
    store.write_alert_events([raised])  # a duplicate overwrites
    got = rows(store, A)
    assert all(tuple(r) == COLUMNS[A] for r in got)
    assert [r["alert_id"] for r in got] == ["a-2", "a-1", "a-1"]
    assert got[1] == {**raised.to_wire(), "event": "raised"}
    assert got[1]["t"] == rfc3339(T0 + 100.5) == "2026-11-22T06:01:40.500Z"
    assert got[2] == acked.to_wire()
    assert (got[0]["value"], got[0]["threshold"], got[0]["worker"]) == (None, None, "w-042")
    assert [r["event"] for r in rows(store, A, rule="stel")] == ["raised", "acknowledged"]
    assert [r["alert_id"] for r in rows(store, A, severity="warning")] == ["a-2"]
    assert len(rows(store, A, hazard="co", t_from_s=T0 + 101)) == 1


def test_empty_store_and_empty_writes(store: Store) -> None:
    store.write_readings(KEYS, batch([], [], []))
    store.write_exposures([])
    store.write_alert_events([])
    assert rows(store, R) == rows(store, E) == rows(store, A) == []


def test_large_batch_streams_in_order(store: Store) -> None:
    b = grid(6000, step_s=0.25)  # 24 000 rows: several write chunks and query chunks
    store.write_readings(KEYS, b)
    got = rows(store, R, hazard="o2")
    assert len(got) == 6000
    assert [r["value"] for r in got[:3]] == [3000.25, 3001.25, 3002.25]
    assert got[-1]["t"] == rfc3339(T0 + 5999 * 0.25)


def test_a_point_repeated_within_a_large_batch_keeps_its_last_value(store: Store) -> None:
    b = grid(3000)  # 12 000 rows: written in several chunks (and lanes, on InfluxDB)
    channel = [*b.channel.tolist(), 0, 3]
    store.write_readings(KEYS, batch(channel, [*b.t_s.tolist(), T0, T0], [*b.value.tolist(), -1.0, -3.0]))
    first = rows(store, R, t_to_s=T0 + 0.5)
    assert [(r["hazard"], r["value"]) for r in first] == [
        ("ch4", 1000.25),
        ("co", -1.0),
        ("noise", 2000.25),
        ("o2", -3.0),
    ]


def test_latest_reading_of_every_channel(store: Store) -> None:
    """`latest_readings`: one row per channel, its newest reading at or after the bound (the board)."""
    keys = [ChannelKey("lt-1", "z", "d1", Hazard.CO, None), ChannelKey("lt-1", "z", "d2", Hazard.CH4, "w-7"),
            ChannelKey("lt-2", "z", "d3", Hazard.CO, None)]  # fmt: skip
    t0 = float(int(time.time()) - 3600)  # inside the retention period
    b = ReadingBatch(np.array([0, 0, 1, 1, 2], np.int64), np.array([t0, t0 + 5, t0 + 1, t0 + 9, t0 - 100]),
                         np.array([1.0, 2.0, 0.3, 0.4, 9.0]))  # fmt: skip
    store.write_readings(keys, b)
    got = sorted(store.latest_readings(t0 - 10), key=lambda r: r["device"])
    assert [(r["device"], r["value"], r["worker"] or None) for r in got] == [("d1", 2.0, None), ("d2", 0.4, "w-7")]
    assert [r["device"] for r in store.latest_readings(t0 - 1000, site="lt-2")] == ["d3"]
