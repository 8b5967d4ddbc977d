"""`not_judged` configuration alerts in the monthly report: they belong with the hazards not judged
(hazard section, "Needs a decision", the serious-events headline), never with device faults.

The alert events have the gateway's shape (gateway/coverage.py: zone "profile", device = the
profile, severity malfunction); shift records come from the engine's record builder under `eu`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.types import AlertEvent, AlertEventKind
from reports.monthly import build_monthly
from rules.profiles import ProfileBook, describe_limits
from rules.records import SegmentTotals, limits_of, make_record
from rules.results import ExposureRecord
from rules.types import ChannelKey, Hazard, RuleKind, Severity
from storage.sqlite import SqliteStore
from tests.test_reports_committee import english_words, visible_words

MONTH, PROFILE, KEY = "2026-11", "eu", b"committee-key"
BOOK = ProfileBook.load()
ROWS = [{"profile": PROFILE, **row} for row in describe_limits(BOOK, PROFILE)]
T0 = datetime.fromisoformat("2026-11-02T06:00:00Z").timestamp()
NOW = datetime.fromisoformat("2026-12-02T08:00:00Z").timestamp()


def shift(hazard: Hazard, day: int, conc: float) -> ExposureRecord:
    start, length = T0 + day * 86400.0, 8 * 3600.0
    seg = SegmentTotals(start, start + length, f"2026-11-{day + 2:02d}/1", (conc * length, 0.0, 0.0, length),
                        conc, conc, 0.0, 480)  # fmt: skip
    key = ChannelKey("kop-1", "face-1", "gd-1", hazard)
    return make_record(key, seg, PROFILE, limits_of(BOOK, PROFILE, hazard), True)


def event(alert_id: str, kind: AlertEventKind, t_s: float, rule: RuleKind, zone: str, device: str, hazard: str,
          **kw: Any) -> AlertEvent:  # fmt: skip
    return AlertEvent(
        alert_id=alert_id, event=kind, severity=Severity.MALFUNCTION, rule=rule, site="kop-1", zone=zone,
        device=device, hazard=hazard, worker=None, value=None, threshold=None, unit="", t_s=t_s, since_s=T0 + 60,
        profile=PROFILE, limit_source="", action="", message=f"{hazard} {rule}", **kw,
    )  # fmt: skip


def alerts() -> list[AlertEvent]:
    out = []
    for i, hazard in enumerate(("co2", "h2s")):  # h2s: measured, but no closed shift this month
        aid = f"nj-{hazard}"
        out.append(event(aid, AlertEventKind.RAISED, T0 + 60, RuleKind.NOT_JUDGED, "profile", PROFILE, hazard))
        out.append(event(aid, AlertEventKind.ACKNOWLEDGED, T0 + 600 + i, RuleKind.NOT_JUDGED, "profile", PROFILE,
                         hazard, by="J. Nowak", note="asked for the national profile"))  # fmt: skip
    out.append(event("off-1", AlertEventKind.RAISED, T0 + 60, RuleKind.OFFLINE, "face-1", "gd-1", "device"))
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    st = SqliteStore(tmp_path_factory.mktemp("db") / "osh.db")
    st.write_exposures([shift(h, d, c) for d in range(10) for h, c in ((Hazard.CO, 5.0), (Hazard.CO2, 900.0))])
    st.write_alert_events(alerts())
    yield st
    st.close()


@pytest.fixture(scope="module")
def report(store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    build_monthly(store, MONTH, "kop-1", "en", out, limits_profile_rows=ROWS, pseudonym_key=KEY, now_s=NOW)
    return out


@pytest.fixture(scope="module")
def site(report: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((report / "summary.json").read_text())["sites"][0]
    return data


def test_a_configuration_alert_is_not_a_device_malfunction(site: dict[str, Any]) -> None:
    assert [(d["zone"], d["device"]) for d in site["devices"]] == [("face-1", "gd-1")]
    assert site["devices"][0]["malfunctions"] == {"offline": 1}
    assert site["quality"]["malfunctions"] == 1


def test_it_is_shown_with_the_hazard_not_judged(site: dict[str, Any], report: Path) -> None:
    hazards = {h["hazard"]: h for h in site["hazards"]}
    assert hazards["co2"]["judged"] is False
    assert (hazards["co2"]["not_judged_alert"]["ack_by"], hazards["co"]["not_judged_alert"]) == ("J. Nowak", None)
    (item,) = [d for d in site["headline"]["decisions"] if d["kind"] == "not_judged"]
    assert item["hazards"] == ["co2", "h2s"]  # h2s is named from its alert alone
    assert site["not_judged"]["by_profile"] == {"eu": ["co2", "h2s"]}
    html = (report / "report.html").read_text(encoding="utf-8")
    assert "The gateway raised a configuration alert about this on" in html
    assert "Acknowledged by J. Nowak after" in html


def test_no_critical_alerts_does_not_read_as_all_safe(site: dict[str, Any]) -> None:
    serious = {i["kind"]: i for i in site["headline"]["serious"]}
    assert serious["serious_alerts"]["critical"] == 0
    assert serious["not_judged"]["hazards"] == ["co2", "h2s"]
    assert "could raise no alert" in serious["not_judged"]["text"]


@pytest.mark.parametrize("lang", ["sr", "ru"])
def test_the_new_sentences_are_translated(store: SqliteStore, tmp_path: Path, lang: str) -> None:
    build_monthly(store, MONTH, "kop-1", lang, tmp_path, limits_profile_rows=ROWS, pseudonym_key=KEY, now_s=NOW)
    data = json.loads((tmp_path / "summary.json").read_text())
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    words = visible_words(html, data)
    assert (words if lang == "ru" else words & english_words()) == set()
    assert "not-judged-alert" in html and "serious-not_judged" in html
