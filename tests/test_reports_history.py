"""`reports.history.render`: rows from a real SQLite store as CSV, JSON and a rich table, streamed."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reports.history import render
from rules.types import ChannelKey, Hazard, ReadingBatch
from storage.base import COLUMNS, HistoryQuery, RecordKind
from storage.sqlite import SqliteStore
from tests.report_data import MonthSpec, alert_events, exposures

T0 = 1_793_000_000.0  # 2026-10-25T...Z


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    st = SqliteStore(tmp_path / "osh.db")
    keys = [ChannelKey("kop-1", "north", "gd-1", Hazard.CO), ChannelKey("kop-1", "north", "pm-1", Hazard.NOISE, "w1")]
    n = 1200
    st.write_readings(keys, ReadingBatch(np.arange(n) % 2, T0 + np.arange(n, dtype=np.float64), np.linspace(0, 90, n)))
    st.write_exposures(list(exposures(MonthSpec(workers_per_zone=1, area_devices_per_zone=1), "2026-11"))[:50])
    st.write_alert_events(alert_events(MonthSpec(), "2026-11", 5))
    yield st
    st.close()


def rows(store: SqliteStore, kind: RecordKind) -> list[dict[str, Any]]:
    return list(store.query(HistoryQuery(kind)))


@pytest.mark.parametrize("kind", list(RecordKind))
def test_json_is_an_array_of_row_objects(store: SqliteStore, kind: RecordKind) -> None:
    out = io.StringIO()
    n = render(store.query(HistoryQuery(kind)), kind, "json", out)
    data = json.loads(out.getvalue())
    assert isinstance(data, list) and len(data) == n > 0
    assert all(list(obj) == list(COLUMNS[kind]) for obj in data)
    assert data == json.loads(json.dumps(rows(store, kind)))


@pytest.mark.parametrize("kind", list(RecordKind))
def test_csv_has_every_column_and_row(store: SqliteStore, kind: RecordKind) -> None:
    out = io.StringIO()
    n = render(store.query(HistoryQuery(kind)), kind, "csv", out)
    parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(parsed) == n == len(rows(store, kind))
    assert tuple(parsed[0]) == COLUMNS[kind]
    first = rows(store, kind)[0]
    assert parsed[0]["t"] == first["t"]
    if kind is RecordKind.EXPOSURES:
        assert json.loads(parsed[0]["limits"]) == first["limits"]
        assert parsed[0]["final"] == "true"
    if kind is RecordKind.READINGS:
        assert float(parsed[-1]["value"]) == pytest.approx(90.0)


def test_empty_results_are_valid_documents() -> None:
    out = io.StringIO()
    assert render(iter([]), RecordKind.ALERTS, "json", out) == 0
    assert json.loads(out.getvalue()) == []
    out = io.StringIO()
    render(iter([]), RecordKind.ALERTS, "csv", out)
    assert out.getvalue().strip() == ",".join(COLUMNS[RecordKind.ALERTS])
    out = io.StringIO()
    render(iter([]), RecordKind.ALERTS, "table", out)
    assert "no alerts match" in out.getvalue()


def test_table_shows_values(store: SqliteStore) -> None:
    out = io.StringIO()
    n = render(store.query(HistoryQuery(RecordKind.ALERTS)), RecordKind.ALERTS, "table", out)
    text = out.getvalue()
    assert n == len(rows(store, RecordKind.ALERTS))
    for col in ("event", "severity", "rule", "alert_id"):
        assert col in text.splitlines()[0]
    assert "officer-1" in text and "acknowledged" in text


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_output_is_streamed(fmt: str) -> None:
    """Rows reach `out` while the source is still producing them (nothing is collected first)."""
    out = io.StringIO()
    seen_at: list[int] = []
    template = {c: None for c in COLUMNS[RecordKind.READINGS]}

    def source() -> Iterator[Mapping[str, Any]]:
        for i in range(1500):
            seen_at.append(len(out.getvalue()))
            yield {**template, "t": f"2026-11-01T00:00:{i % 60:02d}Z", "value": float(i)}

    render(source(), RecordKind.READINGS, fmt, out)  # type: ignore[arg-type]
    assert seen_at[-1] > seen_at[0] + 10_000, "rows were held back until the source was exhausted"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="table, csv, json"):
        render(iter([]), RecordKind.READINGS, "xml", io.StringIO())  # type: ignore[arg-type]
