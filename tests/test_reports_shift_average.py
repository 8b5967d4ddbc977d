"""Shift-average limits (30 CFR 70.100, us-msha respirable coal dust) in the monthly report and the
`oshmon history` table: 8-, 10- and 12-h shifts are judged on ∫C dt / shift length, never on the
8-h `twa8`, while 8-h limits of the same profile (silica) keep judging `twa8`.

The records are made by the engine's own record builder (`rules.records.make_record` with the
us-msha limits) and stored in a real SQLite file; the expected figures are worked out by hand.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from reports.history import render
from reports.history_table import COLUMNS as HISTORY_COLUMNS
from reports.i18n import Lang
from reports.monthly import build_monthly
from rules.profiles import ProfileBook, describe_limits
from rules.records import SegmentTotals, limits_of, make_record, twa_averaging
from rules.results import ExposureRecord
from rules.types import ChannelKey, Hazard
from storage.base import HistoryQuery, RecordKind
from storage.sqlite import SqliteStore
from tests.test_reports_committee import english_words, visible_words

MONTH, PROFILE, KEY = "2026-11", "us-msha", b"committee-key"
BOOK = ProfileBook.load()
ROWS = [{"profile": PROFILE, **row} for row in describe_limits(BOOK, PROFILE)]
T0 = datetime.fromisoformat("2026-11-02T06:00:00Z").timestamp()
NOW = datetime.fromisoformat("2026-12-02T08:00:00Z").timestamp()
DUST_LIMIT, SILICA_LIMIT = 1.5, 0.05  # mg/m3: 30 CFR 70.100(a); 30 CFR 60.12 (50 µg/m3, 8-h TWA)
#: Per shift length: 8 shifts at 1.4 mg/m3 (below 1.5) and 4 at 1.6 (above), 12 days.
DUST = [1.4] * 8 + [1.6] * 4
#: Silica on 10-h shifts: 0.045 × 10/8 = 0.05625 ≥ 0.05 (above as an 8-h TWA), 0.035 → 0.04375.
SILICA = [0.045] * 6 + [0.035] * 6


def record(site: str, zone: str, hazard: Hazard, day: int, hours: float, conc: float) -> ExposureRecord:
    """A closed shift of `hours` at a constant `conc`, as the engine writes it."""
    start, length = T0 + day * 86400.0, hours * 3600.0
    seg = SegmentTotals(
        start_s=start, end_s=start + length, label=f"2026-11-{day + 2:02d}/1", acc=(conc * length, 0.0, 0.0, length),
        peak=conc, stel_max=conc, silence_max=0.0, n=int(length // 60),
    )  # fmt: skip
    key = ChannelKey(site, zone, f"pd-{zone.split('-')[1]}", hazard)
    limits = limits_of(BOOK, PROFILE, hazard)
    return make_record(key, seg, PROFILE, limits, True, twa_averaging(BOOK, PROFILE, hazard))


def records() -> Iterator[ExposureRecord]:
    for hours in (8, 10, 12):
        for day, conc in enumerate(DUST):
            yield record("kop-1", f"shift-{hours}h", Hazard.RESPIRABLE_DUST, day, hours, conc)
    for day, conc in enumerate(SILICA):
        yield record("kop-1", "shift-10h", Hazard.SILICA, day, 10, conc)
    # kop-2: records written before `shift_avg` was stored; its configuration says 10-h shifts.
    for day, conc in enumerate([1.4] * 6 + [1.6] * 3):
        yield replace(record("kop-2", "shift-10h", Hazard.RESPIRABLE_DUST, day, 10, conc), shift_avg=None)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    st = SqliteStore(tmp_path_factory.mktemp("db") / "osh.db")
    st.write_exposures(list(records()))
    yield st
    st.close()


def build(store: SqliteStore, out: Path, lang: str = "en") -> dict[str, Any]:
    build_monthly(store, MONTH, None, lang, out, limits_profile_rows=ROWS, pseudonym_key=KEY, now_s=NOW,
                  shift_hours={"": 8.0, "kop-2": 10.0})  # fmt: skip
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data


@pytest.fixture(scope="module")
def report(store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report-en")
    build(store, out)
    return out


@pytest.fixture(scope="module")
def summary(report: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((report / "summary.json").read_text())
    return data


def hazard(summary: dict[str, Any], site: str, name: str) -> dict[str, Any]:
    (s,) = (s for s in summary["sites"] if s["site"] == site)
    (hz,) = (h for h in s["hazards"] if h["hazard"] == name)
    return hz


def test_the_engine_stores_the_shift_average_next_to_the_8h_twa(store: SqliteStore) -> None:
    rows = list(store.query(HistoryQuery(RecordKind.EXPOSURES, site="kop-1", hazard="respirable_dust")))
    ten = [r for r in rows if r["zone"] == "shift-10h" and r["shift"] == "2026-11-02/1"]
    assert [(r["twa8"], r["shift_avg"], r["limits"]) for r in ten] == [
        (pytest.approx(1.75), pytest.approx(1.4), {"limit_shift_avg": DUST_LIMIT})
    ]


def test_dust_is_judged_on_the_shift_average_for_8_10_and_12_hour_shifts(summary: dict[str, Any]) -> None:
    dust = hazard(summary, "kop-1", "respirable_dust")
    assert (dust["metric"], dust["limit"], dust["judged"]) == ("shift_avg", DUST_LIMIT, True)
    by_zone = {z["zone"]: (z["shifts"], z["above_limit"], z["max"]) for z in dust["zones"]}
    # On twa8 the 10-h shifts at 1.4 would read 1.75 and the 12-h ones 2.1: all 12 "above".
    assert by_zone == {z: (12, 4, pytest.approx(1.6)) for z in ("shift-8h", "shift-10h", "shift-12h")}
    assert dust["above_limit"] == 12 and dust["share_above_limit"] == pytest.approx(12 / 36)
    assert dust["mean"] == pytest.approx((8 * 1.4 + 4 * 1.6) / 12)


def test_en689_tests_the_shift_averages_against_the_shift_limit(summary: dict[str, Any]) -> None:
    segs = {s["label"]: s for s in hazard(summary, "kop-1", "respirable_dust")["segs"]}
    gm = math.exp((8 * math.log(1.4) + 4 * math.log(1.6)) / 12)
    for zone in ("shift-8h", "shift-10h", "shift-12h"):
        assert (segs[zone]["oelv"], segs[zone]["n"]) == (DUST_LIMIT, 12)
        assert segs[zone]["gm"] == pytest.approx(gm)


def test_an_8h_limit_of_the_same_profile_still_judges_the_8h_twa(summary: dict[str, Any]) -> None:
    silica = hazard(summary, "kop-1", "silica")
    assert (silica["metric"], silica["limit"]) == ("twa8", pytest.approx(SILICA_LIMIT))
    assert silica["above_limit"] == 6  # 0.045 mg/m3 over 10 h = 0.05625 as an 8-h TWA
    assert silica["max"] == pytest.approx(0.045 * 10 / 8)


def test_a_record_without_a_stored_shift_average_uses_the_site_shift_length(summary: dict[str, Any]) -> None:
    dust = hazard(summary, "kop-2", "respirable_dust")
    assert (dust["metric"], dust["shifts"], dust["above_limit"]) == ("shift_avg", 9, 3)
    assert dust["max"] == pytest.approx(1.6)


def test_the_shift_table_and_the_html_say_shift_average(summary: dict[str, Any], report: Path) -> None:
    with (report / "shifts.csv").open(encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    cols = summary["labels"]["columns"]
    ten = [r for r in got if r[cols["zone"]] == "shift-10h" and r[cols["hazard"]] == "respirable_dust"]
    assert {r[cols["metric"]] for r in ten} == {"shift_avg"}
    assert sorted({round(float(r[cols["value"]]), 6) for r in ten}) == [1.4, 1.6]
    assert sorted({round(float(r[cols["twa8"]]), 6) for r in ten}) == [1.75, 2.0]
    html = (report / "report.html").read_text(encoding="utf-8")
    assert "shift average:" in html and "This limit is a shift average" in html


@pytest.mark.parametrize("lang", ["sr", "ru"])
def test_shift_average_is_translated(store: SqliteStore, tmp_path: Path, lang: str) -> None:
    data = build(store, tmp_path / lang, lang)
    label = Lang(lang).gettext("shift average")
    assert label != "shift average" and data["labels"]["metric"]["shift_avg"] == label
    html = (tmp_path / lang / "report.html").read_text(encoding="utf-8")
    assert f"{label}:" in html and "shift average" not in html
    # the legal citation (US MSHA, 30 CFR 70.100) and the second site's name ("kop-2") are not English text
    words = visible_words(html, data) - {"US", "MSHA", "CFR", "kop"}
    assert (words if lang == "ru" else words & english_words()) == set()


def test_history_table_judges_the_shift_average(store: SqliteStore) -> None:
    def table(width: int | None, **filters: str) -> list[str]:
        q = HistoryQuery(RecordKind.EXPOSURES, site="kop-1", **filters)
        out = io.StringIO()
        render(store.query(q), RecordKind.EXPOSURES, "table", out, width=width)
        return out.getvalue().splitlines()

    narrow = table(80, zone="shift-12h", hazard="respirable_dust")
    assert all(len(line) <= 80 for line in narrow)
    assert "8-h avg  shift avg" in narrow[0]
    # 2026-11-02/1: 1.4 mg/m3 over 12 h: twa8 2.1, shift average 1.4 against the 1.5 shift-average limit
    assert "2.1        1.4  1.5 shift avg  mg/m3" in narrow[1]
    cells = cells_of(store, zone="shift-12h", hazard="respirable_dust")
    assert (cells["8-h avg"], cells["shift avg"], cells["limit"], cells["% of limit"]) == (
        "2.1",
        "1.4",
        "1.5 shift avg",
        "93",
    )
    # an 8-h limit (silica) is judged on twa8; its shift-average column is empty and left out
    cells = cells_of(store, hazard="silica")
    assert (cells["shift avg"], cells["limit"], cells["% of limit"]) == ("", "0.05", "112")
    assert "shift avg" not in table(None, hazard="silica")[0]


def cells_of(store: SqliteStore, **filters: str) -> dict[str, str]:
    """The `oshmon history` cells of the first matching exposure row, by column header."""
    row = next(iter(store.query(HistoryQuery(RecordKind.EXPOSURES, site="kop-1", **filters))))
    return {c.header: c.cell(row) for c in HISTORY_COLUMNS[RecordKind.EXPOSURES]}
