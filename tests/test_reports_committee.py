"""Issue 14: what a committee reads must be true. A real SQLite store holds a month shaped like the
demo month (a nearly empty month before it, a noise-peak channel, hazards without limits, critical
methane and oxygen alerts with escalations); the numbers are recomputed here from the stored rows."""

from __future__ import annotations

import html as html_lib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from alerts.types import AlertEvent, AlertEventKind
from reports.charts import HAZARD_STYLE, OKABE_ITO, alerts_figure, distribution_figure, trend_figure
from reports.i18n import DOMAIN, LOCALE_DIR, Lang
from reports.labels import COLUMN
from reports.monthly import NoReportData, build_monthly
from rules.results import ExposureRecord
from rules.types import ChannelKey, Hazard, RuleKind, Severity
from storage.base import HistoryQuery, RecordKind
from storage.sqlite import SqliteStore
from tests.report_data import PROFILE_ROWS, SHIFT_S, MonthSpec, exposures, shifts_of

MONTH, PREV = "2026-10", "2026-09"
KEY = b"committee"
NOW = datetime.fromisoformat("2026-11-02T08:00:00Z").timestamp()
#: The demo-mine levels for methane and oxygen (reading by reading, no shift limit).
LEVEL_ROWS = [
    {"hazard": "ch4", "rule": "level", "severity": "alarm", "threshold": "1", "unit": "%vol", "direction": "above",
     "label": "methane 1.0 %", "source": "30 USC 863(h)(2)", "action": "Change the ventilation"},
    {"hazard": "ch4", "rule": "level", "severity": "critical", "threshold": "1.5", "unit": "%vol",
     "direction": "above", "label": "methane 1.5 %", "source": "30 USC 863(h)(2)", "action": "Withdraw"},
    {"hazard": "o2", "rule": "level", "severity": "critical", "threshold": "19.5", "unit": "%vol",
     "direction": "below", "label": "oxygen", "source": "30 CFR 75.321(a)(1)", "action": "Withdraw"},
]  # fmt: skip
PROFILE = PROFILE_ROWS + LEVEL_ROWS


def record(key: ChannelKey, shift: str, start: float, twa8: float, coverage: float = 1.0) -> ExposureRecord:
    return ExposureRecord(
        key=key, shift=shift, shift_start_s=start, shift_end_s=start + SHIFT_S, twa8=twa8, stel15_max=twa8 * 2,
        peak=twa8 * 3, coverage=coverage, max_gap_s=0.0, lex8h=None, dose_pct=None, profile="eu", limits={},
        final=True, sensor_faulty=False,
    )  # fmt: skip


def extra_channels(month: str) -> Iterator[ExposureRecord]:
    """Methane (levels only), H2S (no limit at all) and a noise-peak channel that reports rarely."""
    for shift, start in shifts_of(month):
        yield record(ChannelKey("kop-1", "face-3", "gd-m1", Hazard.CH4), shift, start, 0.2)
        yield record(ChannelKey("kop-1", "face-3", "gd-m1", Hazard.H2S), shift, start, 0.5)
        yield record(ChannelKey("kop-1", "face-3", "nd-1", Hazard.NOISE_PEAK), shift, start, 120.0, coverage=0.1)


def event(alert_id: str, kind: AlertEventKind, sev: Severity, hazard: str, t: float, since: float,
          value: float, threshold: float, **extra: Any) -> AlertEvent:  # fmt: skip
    return AlertEvent(
        alert_id,
        kind,
        sev,
        RuleKind.LEVEL,
        "kop-1",
        "face-3",
        "gd-m1",
        hazard,
        None,
        value,
        threshold,
        "%vol",
        t,
        since,
        "eu",
        "30 USC 863(h)(2)",
        "Withdraw",
        "test",
        extra.get("by"),
        extra.get("note"),
    )


SINCE = datetime.fromisoformat("2026-10-02T09:30:00Z").timestamp()
O2_SINCE = datetime.fromisoformat("2026-10-14T10:00:00Z").timestamp()


def serious_events() -> list[AlertEvent]:
    crit, o2 = Severity.CRITICAL, "o2"
    return [
        event("ch4-1", AlertEventKind.RAISED, crit, "ch4", SINCE, SINCE, 1.51, 1.5),
        event("ch4-1", AlertEventKind.RAISED, crit, "ch4", SINCE + 20, SINCE, 1.62, 1.5),
        event("ch4-1", AlertEventKind.ESCALATED, crit, "ch4", SINCE + 60, SINCE, 1.58, 1.5),
        event(
            "ch4-1",
            AlertEventKind.ACKNOWLEDGED,
            crit,
            "ch4",
            SINCE + 600,
            SINCE,
            0.9,
            1.5,
            by="officer-7",
            note="power cut, face evacuated",
        ),
        event("ch4-1", AlertEventKind.CLEARED, crit, "ch4", SINCE + 1800, SINCE, 0.8, 1.5),
        event("o2-1", AlertEventKind.RAISED, crit, o2, O2_SINCE, O2_SINCE, 18.9, 19.5),
        event("o2-1", AlertEventKind.RAISED, crit, o2, O2_SINCE + 30, O2_SINCE, 18.5, 19.5),
        event(
            "o2-1",
            AlertEventKind.ACKNOWLEDGED,
            crit,
            o2,
            O2_SINCE + 45,
            O2_SINCE,
            19.0,
            19.5,
            by="officer-2",
            note="ventilation door closed",
        ),
        event("o2-1", AlertEventKind.CLEARED, crit, o2, O2_SINCE + 900, O2_SINCE, 20.5, 19.5),
        AlertEvent(
            "gap-1",
            AlertEventKind.RAISED,
            Severity.MALFUNCTION,
            RuleKind.GAP,
            "kop-1",
            "face-3",
            "gd-m1",
            "device",
            None,
            360.0,
            100.0,
            "readings",
            O2_SINCE,
            O2_SINCE,
            "eu",
            "",
            "",
            "gap",
        ),  # never acked
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    st = SqliteStore(tmp_path_factory.mktemp("db") / "osh.db")
    prev = [r for r in exposures(MonthSpec(gm_scale=0.5, seed=3), PREV) if r.shift >= f"{PREV}-30/"]  # one day
    st.write_exposures(prev)
    st.write_exposures(list(exposures(MonthSpec(), MONTH)) + list(extra_channels(MONTH)))
    st.write_alert_events(serious_events())
    yield st
    st.close()


def build(store: SqliteStore, out: Path, lang: str = "en", site: str | None = "kop-1") -> dict[str, Any]:
    build_monthly(store, MONTH, site, lang, out, limits_profile_rows=PROFILE, pseudonym_key=KEY, now_s=NOW)
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data


@pytest.fixture(scope="module")
def summary(store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build(store, tmp_path_factory.mktemp("en"))


def site_of(summary: dict[str, Any]) -> dict[str, Any]:
    site: dict[str, Any] = summary["sites"][0]
    return site


def stored(store: SqliteStore, kind: RecordKind) -> list[dict[str, Any]]:
    return list(store.query(HistoryQuery(kind, site="kop-1")))


def valid_count(rows: list[dict[str, Any]], month: str) -> int:
    return sum(
        1 for r in rows if r["final"] and r["shift"].startswith(month) and not r["sensor_faulty"]
        and r["coverage"] >= 0.25 and r["hazard"] != "noise_peak"
    )  # fmt: skip


def test_headline_does_not_compare_with_a_nearly_empty_month(store: SqliteStore, summary: dict[str, Any]) -> None:
    """Seen: "Worse: alarms 11 (last month 0)" against a month with 62 shift records."""
    rows = stored(store, RecordKind.EXPOSURES)
    now, before = valid_count(rows, MONTH), valid_count(rows, PREV)
    head = site_of(summary)["headline"]
    assert 0 < before < now / 10
    assert head["comparison"]["kind"] == "not_comparable"
    assert (head["comparison"]["now"], head["comparison"]["before"]) == (now, before)
    assert f"{before:,}" in head["comparison"]["text"] and f"{now:,}" in head["comparison"]["text"]
    assert head["worse"] == [] and head["better"] == []


def test_decisions_are_per_hazard_channel_without_auxiliary_channels(summary: dict[str, Any]) -> None:
    """Seen: "4 devices delivered less than 90 %" from their noise_peak channel, named by id only."""
    site = site_of(summary)
    assert all(c["hazard"] != "noise_peak" for c in site["channels"])
    assert "noise_peak" not in {h["hazard"] for h in site["hazards"]}
    for d in site["devices"]:
        assert d["device"] != "nd-1" or d["completeness"] is None  # only a peak channel: no completeness
    low = [i for i in site["headline"]["decisions"] if i["kind"] == "low_completeness"]
    for item in low:
        for c in item["channels"]:
            assert c["hazard"] != "noise_peak"
            assert f"{c['device']} in {c['zone']}" in item["text"]


def test_unknown_site_is_an_error_and_an_empty_month_says_no_data(store: SqliteStore, tmp_path: Path) -> None:
    """Seen: `--site kop-9` → "Nothing this month needs a decision by the committee." """
    with pytest.raises(NoReportData, match=r"'kop-9'.*sites with records in 2026-10: kop-1"):
        build(store, tmp_path / "kop9", site="kop-9")
    assert not (tmp_path / "kop9" / "report.html").exists()
    empty = tmp_path / "nov"
    build_monthly(store, "2026-11", "kop-1", "en", empty, limits_profile_rows=PROFILE, pseudonym_key=KEY, now_s=NOW)
    data = json.loads((empty / "summary.json").read_text())
    kinds = [i["kind"] for i in data["sites"][0]["headline"]["decisions"]]
    assert kinds[0] == "no_data" and "none" not in kinds
    assert "Nothing this month needs a decision" not in (empty / "report.html").read_text()


def test_cli_unknown_site_is_one_line_and_no_report(store: SqliteStore, tmp_path: Path) -> None:
    env = {"OSH_STORE": "sqlite", "OSH_SQLITE_PATH": str(store.path), "OSH_STATE_DIR": str(tmp_path / "state"),
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    cmd = [sys.executable, "-m", "gateway", "report", "monthly", "--month", MONTH, "--site", "kop-9",
           "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0, done.stderr  # the CLI's own --site check (exit 2) or NoReportData (exit 1)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("oshmon: error:") and "'kop-9'" in lines[0], lines
    assert not (tmp_path / "out" / "report.html").exists()


def test_serious_events_are_listed_one_by_one_with_the_log_figures(store: SqliteStore, summary: dict[str, Any]) -> None:
    """Seen: five critical alerts only as "instant level · critical · 5", "Escalated 0"."""
    site = site_of(summary)
    events = stored(store, RecordKind.ALERTS)
    listed = {a["alert_id"]: a for a in site["serious_alerts"]}
    assert set(listed) == {"ch4-1", "o2-1"}
    ch4 = listed["ch4-1"]
    assert ch4["escalations"] == sum(1 for e in events if e["alert_id"] == "ch4-1" and e["event"] == "escalated")
    assert (ch4["peak_value"], ch4["threshold"], ch4["direction"]) == (1.62, 1.5, "above")  # not the ack's 0.9
    assert (ch4["time_to_ack_s"], ch4["duration_s"]) == (600.0, 1800.0)
    assert (ch4["ack_by"], ch4["ack_note"]) == ("officer-7", "power cut, face evacuated")
    o2 = listed["o2-1"]
    assert (o2["peak_value"], o2["direction"]) == (18.5, "below")  # the lowest oxygen, not the highest
    head = {i["kind"]: i for i in site["headline"]["serious"]}
    assert (head["serious_alerts"]["critical"], head["serious_alerts"]["escalated"]) == (2, 1)
    assert site["alerts"]["escalated"] == 1


def test_stel_and_shift_limit_exceedances_by_hazard_and_zone_reach_the_headline(
    store: SqliteStore, summary: dict[str, Any]
) -> None:
    """Seen: "shifts with a 15-minute average above its limit: 8" for CO never reached the headline."""
    rows = [r for r in stored(store, RecordKind.EXPOSURES) if r["shift"].startswith(MONTH) and r["hazard"] == "co"
            and r["final"] and not r["sensor_faulty"] and r["coverage"] >= 0.25]  # fmt: skip
    per_zone: dict[str, int] = {}
    for r in rows:
        if r["stel15_max"] >= r["limits"]["limit_stel15"]:
            per_zone[r["zone"]] = per_zone.get(r["zone"], 0) + 1
    assert sum(per_zone.values()) > 0
    head = {(i["kind"], i.get("hazard")): i for i in site_of(summary)["headline"]["serious"]}
    stel = head[("stel_exceeded", "co")]
    assert stel["count"] == sum(per_zone.values())
    assert {z["zone"]: z["stel"] for z in stel["zones"] if z["stel"]} == per_zone
    for zone, n in per_zone.items():
        assert f"{zone}: {n}" in stel["text"]


def test_hazards_without_a_limit_are_not_judged_and_never_green(store: SqliteStore, tmp_path: Path) -> None:
    """Seen: CH4, CO2, H2S, NO, NO2 with "limit value –" and all-green histograms."""
    data = build(store, tmp_path / "r")
    site = site_of(data)
    hz = {h["hazard"]: h for h in site["hazards"]}
    assert site["profiles"] == ["eu"]
    assert not hz["h2s"]["judged"] and not hz["ch4"]["judged"] and hz["co"]["judged"]
    assert [t["threshold"] for t in hz["ch4"]["instant_levels"]] == [1.0, 1.5]
    items = [i for i in site["headline"]["decisions"] if i["kind"] == "not_judged"]
    assert [(i["profile"], i["hazards"]) for i in items] == [("eu", ["h2s"])]  # methane is watched by levels
    page = (tmp_path / "r" / "report.html").read_text()
    section = page[page.index('data-hazard="h2s"') :]
    section = section[: section.index("</section>")]
    assert "Not judged: no limit in profile eu." in section and 'class="not-judged"' in section
    assert OKABE_ITO["sky_blue"].lower() not in section.lower()  # no "below the action level" bins


def test_en689_uses_well_covered_shifts_and_lists_the_others(store: SqliteStore, summary: dict[str, Any]) -> None:
    """Seen: shifts with coverage 0.25 in the test with gaps as zero."""
    rows = [r for r in stored(store, RecordKind.EXPOSURES) if r["shift"].startswith(MONTH) and r["final"]
            and r["hazard"] == "co" and r["zone"] == "face-3"]  # fmt: skip
    used = [r for r in rows if not r["sensor_faulty"] and r["coverage"] >= 0.75]
    seg = next(s for h in site_of(summary)["hazards"] if h["hazard"] == "co" for s in h["segs"]
               if s["seg"] == "kop-1/face-3/co")  # fmt: skip
    assert (seg["n"], seg["shifts_total"]) == (len(used), len(rows))
    assert len(seg["excluded_shifts"]) == len(rows) - len(used) > 0
    assert sum(seg["excluded_by_reason"].values()) == len(rows) - len(used)
    assert summary["en689_min_coverage"] == 0.75


# -- translations ------------------------------------------------------------------------------

#: Words that may stay in any language: standards, symbols, file names, abbreviations of units.
ALLOWED = {"EN", "UTL95", "GM", "GSD", "LEX", "CSV", "CO", "CH", "NO", "SO", "ppm", "dB", "mg", "csv", "json",
           "summary", "en689_excluded", "devices", "workers", "alerts", "UTC"}  # fmt: skip


def visible_words(page: str, data: dict[str, Any]) -> set[str]:
    """Latin words of the visible text, less what comes from the data (names, ids, sources, notes)."""
    body = re.sub(r"<(style|svg|head)\b.*?</\1>", " ", page, flags=re.S)
    text = html_lib.unescape(re.sub(r"<[^>]+>", " ", body))
    site = data["sites"][0]
    names: set[str] = {site["site"], *site["profiles"]}
    for hz in site["hazards"]:
        names |= {z["zone"] for z in hz["zones"]} | {w["worker"] for w in hz["workers"]}
        for seg in hz["segs"]:
            names |= {e["device"] for e in seg["excluded_shifts"]} | {e["worker"] for e in seg["excluded_shifts"]}
    names |= {d["device"] for d in site["devices"]} | {r.get("source", "") for r in data["limits_profile"]}
    for a in [*site["serious_alerts"], *site.get("not_judged", {}).get("alerts", [])]:
        names |= {a["ack_by"] or "", a["ack_note"] or "", a["device"], a["zone"]}
    for name in sorted(names, key=len, reverse=True):
        if name:
            text = text.replace(name, " ")
    return set(re.findall(r"[A-Za-z][A-Za-z0-9_]+", text)) - ALLOWED


def english_words() -> set[str]:
    """Every English word of the catalogue and every code, less those Serbian uses too."""
    words: set[str] = set()
    with (LOCALE_DIR / f"{DOMAIN}.pot").open("rb") as fh:
        for m in read_po(fh):
            for msgid in m.id if isinstance(m.id, tuple | list) else (m.id,):
                words |= set(re.findall(r"[A-Za-z]{3,}", str(msgid)))
    words |= {"stel", "twa", "twa_projected", "above", "below", "level", "alarm", "critical", "warning", "vol"}
    sr = Lang("sr").tr._catalog  # type: ignore[attr-defined]
    serbian = {w.lower() for v in sr.values() for w in re.findall(r"[A-Za-z]{3,}", v)}
    return {w for w in words if w.lower() not in serbian}


@pytest.mark.parametrize("lang", ["sr", "ru"])
def test_no_english_left_in_translated_reports(store: SqliteStore, tmp_path: Path, lang: str) -> None:
    """Seen: the appendix entirely English in sr/ru, codes like `stel`, `above`, "%vol" untranslated."""
    data = build(store, tmp_path / lang, lang)
    page = (tmp_path / lang / "report.html").read_text()
    words = visible_words(page, data)
    leaked = words if lang == "ru" else words & english_words()
    assert leaked == set(), f"English in the {lang} report: {sorted(leaked)}"
    assert "%vol" not in page
    header = (tmp_path / lang / "shifts.csv").read_text().splitlines()[0]
    assert "site" not in header and data["csv_columns"]["shifts.csv"][0][0] == "site"
    assert set(data["labels"]["columns"]) == set(COLUMN)


def test_the_leak_check_catches_english() -> None:
    """Negative control: an untranslated sentence and a rule code are found."""
    data = {"sites": [{"site": "kop-1", "profiles": [], "hazards": [], "devices": [], "serious_alerts": []}],
            "limits_profile": []}  # fmt: skip
    found = visible_words("<p>Nije ocenjeno: stel above</p><p>Needs a decision</p>", data)
    assert {"stel", "above", "Needs", "decision"} <= found & english_words()


def test_serbian_never_acknowledged() -> None:
    assert Lang("sr").gettext("never acknowledged") == "nikada nije potvrđeno"


# -- charts ------------------------------------------------------------------------------------


def overlaps(fig: Any, legend: Any, axes: list[Any]) -> bool:
    fig.draw_without_rendering()  # runs the constrained layout
    box = legend.get_window_extent()
    return any(box.overlaps(ax.get_window_extent()) for ax in axes)


def test_legends_sit_outside_every_plot(summary: dict[str, Any]) -> None:
    """Seen: the noise chart's limit line crossed its legend."""
    site = site_of(summary)
    lang = Lang("en")
    noise = next(h for h in site["hazards"] if h["hazard"] == "noise")
    for fig in (distribution_figure(noise, lang), trend_figure(site["trend"], lang),
                alerts_figure(site["alerts"]["by_rule_severity"], lang)):  # fmt: skip
        assert fig.legends, "every chart with lines has a legend"
        assert not overlaps(fig, fig.legends[0], fig.axes)


def test_each_hazard_keeps_one_style_distinct_in_colour_and_greyscale() -> None:
    """Seen: the trend chart reused colours (CO and silica orange, CO2 and SO2 green)."""
    styles = list(HAZARD_STYLE.values())
    assert {c for c, _, _ in styles} <= set(OKABE_ITO.values())
    assert len({m for _, m, _ in styles}) == len(styles)  # a marker per hazard: apart in greyscale
    assert len({(c, d) for c, _, d in styles}) == len(styles)  # colour + dash also unique
    assert set(HAZARD_STYLE) == {h.value for h in Hazard}


def test_trend_chart_uses_the_fixed_hazard_colours(summary: dict[str, Any]) -> None:
    fig = trend_figure(site_of(summary)["trend"], Lang("en"))
    for line in fig.axes[0].get_lines():
        hazard = next(h for h, name in (("co", "Carbon monoxide (CO)"), ("silica", "Respirable crystalline silica"),
                                        ("noise", "Noise")) if name == line.get_label())  # fmt: skip
        assert line.get_color() == HAZARD_STYLE[hazard][0]
        assert line.get_marker() == HAZARD_STYLE[hazard][1]


def test_print_css_has_a_running_footer_and_keeps_headings_with_content(summary: dict[str, Any], tmp_path: Path,
                                                                          store: SqliteStore) -> None:  # fmt: skip
    build(store, tmp_path / "p")
    page = (tmp_path / "p" / "report.html").read_text()
    assert "counter(page)" in page and "counter(pages)" in page
    assert re.search(r'@page site-1 \{ @bottom-left \{ content: "Site kop-1 · October 2026"; \} \}', page)
    assert "#site-1, header.cover { page: site-1; }" in page  # the cover shares the first site's page
    assert ".keep { break-inside: avoid; }" in page


def test_every_code_a_reader_can_meet_has_a_name() -> None:
    """Codes never reach the page: every rule, severity, direction, hazard and canonical unit is named."""
    from reports.vocab import DIRECTION, HAZARD, RULE, SEVERITY, UNIT
    from rules.results import Direction
    from rules.types import CANONICAL_UNIT

    assert {r.value for r in RuleKind} <= set(RULE)
    assert {s.value for s in Severity} <= set(SEVERITY)
    assert {d.value for d in Direction} <= set(DIRECTION)
    assert {h.value for h in Hazard} | {"device", "sink", "store"} <= set(HAZARD)
    assert set(CANONICAL_UNIT.values()) <= set(UNIT)
    units = {"s", "d", "readings", "messages", "incidents", "devices"}  # health/configuration alerts
    assert units <= set(UNIT)
