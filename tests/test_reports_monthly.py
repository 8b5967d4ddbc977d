"""The monthly report against a real SQLite store: its key numbers are recomputed here, from the
stored rows and with code independent of reports/, and compared with summary.json."""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from reports.monthly import NoReportData, build_monthly
from storage.base import HistoryQuery, RecordKind
from storage.sqlite import SqliteStore
from tests.report_data import PROFILE_ROWS, MonthSpec, alert_events, exposures

MONTH, PREV = "2026-11", "2026-10"
KEY = b"committee-key"
NOW = datetime.fromisoformat("2026-12-02T08:00:00Z").timestamp()
PROFILE = PROFILE_ROWS
#: Action levels written out again (the records carry only limits; the profile rows add these).
ACTION = {"co": 10.0, "silica": 0.05, "noise": 80.0}
MIN_COVERAGE = 0.25  # EN 689: at least 2 h of an 8-h shift


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    st = SqliteStore(tmp_path_factory.mktemp("db") / "osh.db")
    st.write_exposures(list(exposures(MonthSpec(gm_scale=0.6, seed=3), PREV)))
    st.write_alert_events(alert_events(MonthSpec(), PREV, 40, seed=5))
    nov = [
        r for r in exposures(MonthSpec(), MONTH)
        if r.key.device != "gd-21" and not (r.key.device == "gd-00" and "-10/" <= r.shift[7:11] < "-20/")
    ]  # fmt: skip
    st.write_exposures(nov)
    st.write_alert_events(alert_events(MonthSpec(), MONTH, 80))
    yield st
    st.close()


@pytest.fixture(scope="module")
def report(store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report-en")
    build_monthly(store, MONTH, "kop-1", "en", out, limits_profile_rows=PROFILE, pseudonym_key=KEY, now_s=NOW)
    return out


@pytest.fixture(scope="module")
def summary(report: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((report / "summary.json").read_text())
    return data


def site_of(summary: dict[str, Any]) -> dict[str, Any]:
    assert [s["site"] for s in summary["sites"]] == ["kop-1"]
    site: dict[str, Any] = summary["sites"][0]
    return site


def stored(store: SqliteStore, kind: RecordKind) -> list[dict[str, Any]]:
    return list(store.query(HistoryQuery(kind, site="kop-1")))


def valid_shifts(store: SqliteStore, month: str, hazard: str) -> list[dict[str, Any]]:
    return [
        r for r in stored(store, RecordKind.EXPOSURES)
        if r["final"] and r["shift"].startswith(month) and r["hazard"] == hazard
        and not r["sensor_faulty"] and r["coverage"] >= MIN_COVERAGE
    ]  # fmt: skip


def value_and_limits(r: dict[str, Any]) -> tuple[float, float, float]:
    """(value, action, limit): noise judged on LEX,8h (lower action value), others on TWA8."""
    lim = r["limits"]
    if r["hazard"] == "noise":
        return r["lex8h"], ACTION["noise"], lim["limit_lex8h"]
    return r["twa8"], ACTION[r["hazard"]], lim["limit_twa8"]


@pytest.mark.parametrize("hazard", ["co", "silica", "noise"])
def test_shares_per_hazard_and_zone_match_the_stored_shifts(
    store: SqliteStore, summary: dict[str, Any], hazard: str
) -> None:
    rows = valid_shifts(store, MONTH, hazard)
    hz = next(h for h in site_of(summary)["hazards"] if h["hazard"] == hazard)
    per_zone: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for r in rows:
        per_zone[r["zone"]].append(value_and_limits(r))
    everything = [x for xs in per_zone.values() for x in xs]
    assert hz["shifts"] == len(everything) > 100
    assert hz["above_action"] == sum(v >= a for v, a, _ in everything)
    assert hz["above_limit"] == sum(v >= lim for v, _, lim in everything)
    assert hz["share_above_limit"] == pytest.approx(hz["above_limit"] / len(everything))
    assert hz["max"] == pytest.approx(max(v for v, _, _ in everything))
    zones = {z["zone"]: z for z in hz["zones"]}
    assert set(zones) == set(per_zone)
    for zone, xs in per_zone.items():
        assert zones[zone]["shifts"] == len(xs)
        assert zones[zone]["share_above_action"] == pytest.approx(sum(v >= a for v, a, _ in xs) / len(xs))


def independent_utl(values: list[float]) -> float:
    """UTL95,70 = exp(ȳ + k s), k = t'_0.70(n−1, 1.6449·√n)/√n — written out again here."""
    n = len(values)
    logs = [math.log(v) for v in values]
    k = stats.nct(df=n - 1, nc=stats.norm.ppf(0.95) * math.sqrt(n)).ppf(0.70) / math.sqrt(n)
    return math.exp(statistics.fmean(logs) + k * statistics.stdev(logs))


@pytest.mark.parametrize("hazard", ["co", "silica"])
def test_en689_per_seg_matches_an_independent_utl(store: SqliteStore, summary: dict[str, Any], hazard: str) -> None:
    by_zone: dict[str, list[float]] = defaultdict(list)
    for r in valid_shifts(store, MONTH, hazard):
        by_zone[r["zone"]].append(r["twa8"])
    oelv = {"co": 20.0, "silica": 0.1}[hazard]
    segs = {s["seg"]: s for h in site_of(summary)["hazards"] if h["hazard"] == hazard for s in h["segs"]}
    assert set(segs) == {f"kop-1/{z}/{hazard}" for z in by_zone}
    for zone, values in by_zone.items():
        seg = segs[f"kop-1/{zone}/{hazard}"]
        utl = independent_utl(values)
        assert (seg["n"], seg["method"], seg["oelv"]) == (len(values), "statistical", oelv)
        assert seg["utl"] == pytest.approx(utl, rel=1e-9)
        assert seg["verdict"] == ("compliant" if utl < oelv else "non_compliant")
    verdicts = {s["verdict"] for s in segs.values()}
    assert verdicts == {"compliant", "non_compliant"}, "the data should exercise both verdicts"


def test_alert_handling_matches_the_stored_events(store: SqliteStore, summary: dict[str, Any]) -> None:
    events: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in stored(store, RecordKind.ALERTS):
        events[e["alert_id"]].append(e)
    ack_times: dict[tuple[str, str], list[float]] = defaultdict(list)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    unacked = 0
    for evs in events.values():
        since = min(datetime.fromisoformat(e["since"]).timestamp() for e in evs)
        if not evs[0]["since"].startswith(MONTH):
            continue
        key = (evs[0]["rule"], evs[0]["severity"])  # the generator never escalates
        counts[key] += 1
        acks = [datetime.fromisoformat(e["t"]).timestamp() for e in evs if e["event"] == "acknowledged"]
        if acks:
            ack_times[key].append(min(acks) - since)
        else:
            unacked += 1
    alerts = site_of(summary)["alerts"]
    assert alerts["alerts"] == sum(counts.values()) > 70  # a few start on 1 December
    assert alerts["unacknowledged"] == unacked > 0
    every = [t for ts in ack_times.values() for t in ts]
    assert alerts["ack_median_s"] == pytest.approx(statistics.median(every), abs=1e-3)
    assert alerts["ack_worst_s"] == pytest.approx(max(every), abs=1e-3)
    for row in alerts["by_rule_severity"]:
        key = (row["rule"], row["severity"])
        assert row["alerts"] == counts[key]
        if ack_times[key]:
            assert row["ack_median_s"] == pytest.approx(statistics.median(ack_times[key]), abs=1e-3)


def test_completeness_per_device(store: SqliteStore, summary: dict[str, Any]) -> None:
    site = site_of(summary)
    devices = {d["device"]: d for d in site["devices"]}
    month_rows = [r for r in stored(store, RecordKind.EXPOSURES) if r["shift"].startswith(MONTH)]
    site_shifts = len({r["shift"] for r in month_rows})
    assert site["quality"]["site_shifts"] == site_shifts == 90
    gd00 = [r for r in month_rows if r["device"] == "gd-00"]
    expected = sum(r["coverage"] for r in gd00) / (2 * site_shifts)  # two hazards, area monitor
    assert devices["gd-00"]["completeness"] == pytest.approx(expected)
    assert devices["gd-00"]["completeness"] < 0.7
    assert devices["gd-21"]["completeness"] == 0.0  # reported in October, silent in November
    assert {"gd-00", "gd-21"} <= {c["device"] for c in site["quality"]["low_completeness"]}
    assert site["quality"]["faulty_shifts"] == sum(1 for r in month_rows if r["sensor_faulty"])


def test_headline_compares_with_last_month(store: SqliteStore, summary: dict[str, Any]) -> None:
    site = site_of(summary)
    assert site["previous_data"] is True
    worse = {(i["kind"], i.get("hazard")): i for i in site["headline"]["worse"]}
    co = worse[("share_above_action", "co")]
    prev_rows = valid_shifts(store, PREV, "co")
    prev_share = sum(v >= a for v, a, _ in map(value_and_limits, prev_rows)) / len(prev_rows)
    assert co["before"] == pytest.approx(prev_share)
    assert co["now"] > co["before"]
    kinds = {i["kind"] for i in site["headline"]["decisions"]}
    assert {"en689_non_compliant", "unacknowledged", "low_completeness"} <= kinds
    trend = {m["month"]: m for m in site["trend"]}
    assert list(trend) == ["2026-08", "2026-09", PREV, MONTH]
    assert [trend[m]["data"] for m in trend] == [False, False, True, True]
    assert trend[PREV]["hazards"]["co"]["share_above_action"] == pytest.approx(prev_share)


def test_csv_tables_hold_the_same_numbers(report: Path, summary: dict[str, Any]) -> None:
    def read(name: str) -> list[dict[str, str]]:
        """Rows by column key: the header holds labels; summary.json maps them back to keys."""
        keys = [key for key, _label in summary["csv_columns"][name]]
        with (report / name).open(newline="") as fh:
            reader = csv.reader(fh)
            assert next(reader) == [label for _key, label in summary["csv_columns"][name]]
            return [dict(zip(keys, row, strict=True)) for row in reader]

    assert set(summary["files"]) == {p.name for p in report.iterdir()}
    site = site_of(summary)
    shifts = read("shifts.csv")
    assert sum(1 for r in shifts if r["valid"] == "true") == sum(h["shifts"] for h in site["hazards"])
    segs = read("segs.csv")
    by_seg = {s["seg"]: s for h in site["hazards"] for s in h["segs"]}
    assert len(segs) == len(by_seg)
    for row in segs:
        assert float(row["utl"]) == pytest.approx(by_seg[row["seg"]]["utl"])
        assert row["verdict"] == by_seg[row["seg"]]["verdict"]
    assert len(read("alerts.csv")) == site["alerts"]["alerts"]
    assert len(read("devices.csv")) == len(site["devices"])


def test_workers_are_pseudonymised_everywhere(store: SqliteStore, report: Path, tmp_path: Path) -> None:
    for path in report.iterdir():
        assert "worker-0" not in path.read_text(encoding="utf-8"), path.name
    shifts = (report / "shifts.csv").read_text()
    assert "W-" in shifts
    again = tmp_path / "again"
    build_monthly(store, MONTH, "kop-1", "en", again, limits_profile_rows=PROFILE, pseudonym_key=KEY, now_s=NOW)
    assert (again / "workers.csv").read_text() == (report / "workers.csv").read_text()  # stable
    other = tmp_path / "other"
    build_monthly(store, MONTH, "kop-1", "en", other, limits_profile_rows=PROFILE, pseudonym_key=b"x", now_s=NOW)
    assert (other / "workers.csv").read_text() != (report / "workers.csv").read_text()
    named = tmp_path / "named"
    build_monthly(store, MONTH, "kop-1", "en", named, limits_profile_rows=None, pseudonym_key=b"",
                  now_s=NOW, pseudonymise=False)  # fmt: skip
    assert "worker-00" in (named / "workers.csv").read_text()


@pytest.mark.parametrize(
    ("lang", "expected", "absent"),
    [
        ("sr", ["Mesečni izveštaj o bezbednosti i zdravlju na radu", "Novembar 2026", "Potrebna je odluka"],
         ["Needs a decision", "Monthly safety and health report"]),
        ("ru", ["Ежемесячный отчёт по охране труда", "Ноябрь 2026", "Требуется решение"],
         ["Needs a decision", "Shift exposures against limits"]),
    ],
)  # fmt: skip
def test_languages_translate_text_and_localise_numbers(
    store: SqliteStore, summary: dict[str, Any], tmp_path: Path, lang: str, expected: list[str], absent: list[str]
) -> None:
    html = build_monthly(
        store, MONTH, "kop-1", lang, tmp_path, limits_profile_rows=PROFILE, pseudonym_key=KEY, now_s=NOW
    ).read_text(encoding="utf-8")
    for text in expected:
        assert text in html
    for text in absent:
        assert text not in html
    share = site_of(summary)["hazards"][0]["share_above_action"]
    localised = f"{share * 100:.1f}".replace(".", ",")
    assert localised in html  # decimal comma in both languages
    assert f'lang="{lang}"' in html


def test_empty_month_and_bad_input(store: SqliteStore, tmp_path: Path) -> None:
    with pytest.raises(NoReportData, match="no site has records in 2026-03"):
        build_monthly(
            store, "2026-03", "kop-1", "en", tmp_path / "none", limits_profile_rows=None, pseudonym_key=KEY, now_s=NOW
        )
    html = build_monthly(
        store, "2027-01", "kop-1", "en", tmp_path / "empty", limits_profile_rows=None, pseudonym_key=KEY, now_s=NOW
    ).read_text()
    assert "No shift exposure records this month." in html
    assert "No alerts this month." in html
    assert "No data for this month." in html
    with pytest.raises(ValueError, match="language"):
        build_monthly(store, MONTH, None, "de", tmp_path / "x", limits_profile_rows=None, pseudonym_key=KEY, now_s=NOW)
    with pytest.raises(ValueError, match="pseudonym key"):
        build_monthly(store, MONTH, None, "en", tmp_path / "y", limits_profile_rows=None, pseudonym_key=b"", now_s=NOW)
