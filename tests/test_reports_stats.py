"""Unit tests of the report's pure parts on rows built here: limits, shift table, shares,
SEGs, alert lifecycles, monitoring quality and the headline."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from reports.alert_stats import alert_summary, lifecycles
from reports.decisions import decisions
from reports.exposure_stats import SegSpec, figures, hazard_summary, histogram, seg_rows
from reports.headline import changes
from reports.i18n import Lang
from reports.monthly import month_bounds
from reports.profile_limits import profile_tiers
from reports.quality import channel_rows, device_rows, quality_summary
from reports.shifts import judge, limit_tiers, parse_exposures, pseudonym
from reports.trend import previous_months

KEY = b"test-key"


def expo(
    zone: str = "z1", device: str = "d1", hazard: str = "co", worker: str | None = None, shift: str = "2026-11-01/1",
    twa8: float = 5.0, coverage: float = 1.0, final: bool = True, faulty: bool = False,
    limits: dict[str, float] | None = None, **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    row = {
        "t": shift[:10] + "T06:00:00Z", "site": "s1", "zone": zone, "device": device, "hazard": hazard,
        "worker": worker, "shift": shift, "twa8": twa8, "stel15_max": twa8 * 2, "peak": twa8 * 3,
        "coverage": coverage, "max_gap_s": 0.0, "lex8h": None, "dose_pct": None, "profile": "eu",
        "limits": {"limit_twa8": 20.0, "limit_action_twa8": 10.0} if limits is None else limits,
        "final": final, "sensor_faulty": faulty,
    }  # fmt: skip
    row.update(extra)
    return row


def shifts(n: int, month: str = "2026-11") -> list[str]:
    return [f"{month}-{1 + i // 3:02d}/{1 + i % 3}" for i in range(n)]


# -- limits -----------------------------------------------------------------------------------


def test_limit_tiers_read_prefixed_and_action_keys() -> None:
    tiers = limit_tiers(
        {"limit_twa8": 20.0, "limit_action_twa8": 10.0, "limit_stel15": 100.0, "limit_lower_action_lex8h": 80.0,
         "limit_upper_action_lex8h": 85.0, "limit_lex8h": 87.0, "limit_dose_pct": 100.0, "limit_whatever": 1.0}
    )  # fmt: skip
    assert tiers == {
        ("limit", "twa8"): 20.0,
        ("action", "twa8"): 10.0,
        ("limit", "stel15"): 100.0,
        ("action", "lex8h"): 80.0,  # the lower action value is reached first
        ("limit", "lex8h"): 87.0,
        ("limit", "dose"): 100.0,
    }


def test_judge_uses_lex8h_for_noise_and_no_en689() -> None:
    j = judge("noise", {"limit_lex8h": 87.0, "action_lex8h": 80.0})
    assert (j.metric, j.limit, j.action) == ("lex8h", 87.0, 80.0)
    assert math.isnan(j.oelv)
    co = judge("co", {"limit_twa8": 20.0})
    assert (co.metric, co.limit, co.oelv) == ("twa8", 20.0, 20.0)
    assert math.isnan(co.action)
    o2 = judge("o2", {"limit_twa8": 19.5})
    assert math.isnan(o2.oelv)


# -- shift table ------------------------------------------------------------------------------


def test_parse_keeps_final_latest_rows_of_the_month_and_pseudonymises() -> None:
    rows = [
        expo(shift="2026-11-01/1", twa8=1.0, final=False),  # running value: ignored
        expo(shift="2026-11-01/1", twa8=2.0),
        expo(shift="2026-11-01/1", twa8=3.0),  # recomputed later: the latest wins
        expo(shift="2026-10-31/3", twa8=9.0),  # other month
        expo(shift="2026-11-02/1", twa8=4.0, worker="alice"),
    ]
    t = parse_exposures(rows, {"2026-11"}, KEY)
    assert sorted(t.value.tolist()) == [3.0, 4.0]
    assert set(t.worker.tolist()) == {"", pseudonym("alice", KEY)}
    assert pseudonym("alice", KEY) == pseudonym("alice", KEY) != pseudonym("alice", b"other")
    assert "alice" not in t.worker.tolist()
    assert parse_exposures(rows, {"2026-11"}, None).worker.tolist().count("alice") == 1


def test_validity_excludes_faulty_and_short_coverage() -> None:
    rows = [expo(coverage=1.0), expo(shift="2026-11-01/2", coverage=0.24), expo(shift="2026-11-01/3", faulty=True)]
    t = parse_exposures(rows, None, KEY)
    f = figures(t)
    assert (f["shifts"], f["excluded"], f["excluded_faulty"]) == (1, 2, 1)


def test_figures_count_at_or_above_thresholds() -> None:
    values = [5.0, 10.0, 15.0, 20.0, 25.0]  # action 10, limit 20
    t = parse_exposures([expo(shift=s, twa8=v) for s, v in zip(shifts(5), values, strict=True)], None, KEY)
    f = figures(t)
    assert (f["above_action"], f["above_limit"]) == (4, 2)
    assert f["share_above_action"] == pytest.approx(0.8)
    assert f["share_above_limit"] == pytest.approx(0.4)
    assert f["mean"] == pytest.approx(15.0)
    assert f["max"] == 25.0
    assert f["p95"] == pytest.approx(np.quantile(values, 0.95))
    assert f["above_stel"] is None  # no STEL limit in these records


def test_share_is_none_without_a_threshold() -> None:
    t = parse_exposures([expo(limits={"limit_twa8": 20.0})], None, KEY)
    f = figures(t)
    assert f["share_above_action"] is None and f["above_action"] is None
    assert f["share_above_limit"] == 0.0


def test_noise_mean_is_energy_average() -> None:
    rows = [
        expo(hazard="noise", shift=s, lex8h=v, limits={"limit_lex8h": 87.0, "action_lex8h": 80.0})
        for s, v in zip(shifts(2), [80.0, 90.0], strict=True)
    ]
    f = figures(parse_exposures(rows, None, KEY))
    assert f["mean"] == pytest.approx(10 * math.log10((10**8 + 10**9) / 2))
    assert f["above_limit"] == 1


def test_histogram_counts_every_valid_shift_once() -> None:
    vals = [0.5, 1.0, 3.0, 19.0, 21.0, 80.0]
    t = parse_exposures([expo(shift=s, twa8=v) for s, v in zip(shifts(6), vals, strict=True)], None, KEY)
    h = histogram(t, 20.0, 10.0)
    assert sum(h["counts"]) == len(vals)
    assert h["edges"][0] == 0.0 and h["edges"][-1] >= 25.0


def test_seg_default_is_site_zone_hazard_and_configurable() -> None:
    rows = [
        expo(zone=z, device=f"d{i}", shift=s, twa8=1.0 + i) for z in ("a", "b", "c") for i, s in enumerate(shifts(6))
    ]
    t = parse_exposures(rows, None, KEY)
    assert [r["seg"] for r in seg_rows(t, SegSpec())] == ["s1/a/co", "s1/b/co", "s1/c/co"]
    pooled = seg_rows(t, SegSpec(zone_groups={"a": "face", "b": "face"}))
    assert [(r["seg"], r["n"]) for r in pooled] == [("s1/c/co", 6), ("s1/face/co", 12)]
    assert seg_rows(t, SegSpec(fields=("site", "hazard")))[0]["label"] == ""
    with pytest.raises(ValueError, match="hazard"):
        SegSpec(fields=("site", "zone"))


def test_seg_uses_twa8_against_the_lowest_oelv() -> None:
    vals = [2.0, 3.0, 1.0, 4.0, 2.5, 1.5]
    rows = [expo(shift=s, twa8=v) for s, v in zip(shifts(6), vals, strict=True)]
    rows[0]["limits"] = {"limit_twa8": 15.0}
    seg = seg_rows(parse_exposures(rows, None, KEY), SegSpec())[0]
    assert seg["oelv"] == 15.0
    y = np.log(vals)
    assert seg["utl"] == pytest.approx(math.exp(y.mean() + 2.187 * y.std(ddof=1)), rel=1e-3)
    assert seg["method"] == "statistical" and seg["verdict"] == "compliant"


def test_hazard_summary_lists_zones_and_workers() -> None:
    rows = [expo(zone="z1", worker="w1", shift=s, twa8=25.0) for s in shifts(3)]
    rows += [expo(zone="z2", device="d2", shift=s, twa8=2.0) for s in shifts(3)]
    hz = hazard_summary(parse_exposures(rows, None, KEY), SegSpec())
    assert [z["zone"] for z in hz["zones"]] == ["z1", "z2"]
    assert [(w["worker"], w["above_limit"]) for w in hz["workers"]] == [(pseudonym("w1", KEY), 3)]
    assert {s["seg"]: s["verdict"] for s in hz["segs"]} == {"s1/z1/co": "non_compliant", "s1/z2/co": "no_decision"}


# -- alerts -----------------------------------------------------------------------------------


def alert(
    alert_id: str, event: str, t: str, severity: str = "alarm", rule: str = "stel", **extra: Any
) -> dict[str, Any]:
    row = {
        "t": t, "alert_id": alert_id, "event": event, "severity": severity, "rule": rule, "site": "s1",
        "zone": "z1", "device": "d1", "hazard": "co", "worker": None, "value": 110.0, "threshold": 100.0,
        "unit": "ppm", "since": extra.pop("since", t), "profile": "eu", "limit_source": "src", "action": "",
        "message": "", "by": None, "note": None,
    }  # fmt: skip
    row.update(extra)
    return row


def test_alert_lifecycles_and_time_to_acknowledge() -> None:
    rows = [
        alert("a", "raised", "2026-11-01T10:00:00Z"),
        alert("a", "escalated", "2026-11-01T10:05:00Z", severity="critical", since="2026-11-01T10:00:00Z"),
        alert("a", "acknowledged", "2026-11-01T10:10:00Z", by="ana", note="fan", since="2026-11-01T10:00:00Z"),
        alert("b", "raised", "2026-11-02T10:00:00Z"),
        alert("b", "acknowledged", "2026-11-02T10:02:00Z", by="bo", since="2026-11-02T10:00:00Z"),
        alert("c", "raised", "2026-11-03T10:00:00Z", severity="warning", rule="level"),
        alert("c", "cleared", "2026-11-03T11:00:00Z", severity="warning", rule="level"),
        alert("d", "raised", "2026-11-04T10:00:00Z"),
    ]
    lives = lifecycles(reversed(rows))  # any order
    assert [a.alert_id for a in lives] == ["a", "b", "c", "d"]
    a = lives[0]
    assert (a.severity, a.escalations, a.ack_by, a.ack_note, a.time_to_ack_s) == ("critical", 1, "ana", "fan", 600.0)
    s = alert_summary(lives)
    assert (s["alerts"], s["acknowledged"], s["unacknowledged"]) == (4, 2, 2)
    assert s["ack_median_s"] == pytest.approx(360.0)
    assert s["ack_worst_s"] == 600.0
    assert (s["urgent"], s["urgent_unacknowledged"]) == (3, 1)
    assert [a["alert_id"] for a in s["unacknowledged_alerts"]] == ["c", "d"]
    rows_by = {(r["rule"], r["severity"]): r for r in s["by_rule_severity"]}
    assert rows_by[("stel", "critical")]["alerts"] == 1
    assert rows_by[("stel", "alarm")]["ack_median_s"] == 120.0


def test_alert_row_names_the_highest_tier_and_the_worst_value_in_the_limits_direction() -> None:
    """Issue 13: a critical row gave the alarm tier's threshold and source; O2's worst value was the highest."""
    o2 = {"hazard": "o2", "rule": "level", "unit": "%vol", "since": "2026-11-01T10:00:00Z"}
    rows = [
        alert("o", "raised", "2026-11-01T10:00:00Z", value=19.3, threshold=19.5, limit_source="alarm-src", **o2),
        alert("o", "escalated", "2026-11-01T10:01:00Z", severity="critical", value=17.8, threshold=18.0,
              limit_source="critical-src", reason="severity_rise", **o2),
        alert("o", "escalated", "2026-11-01T10:02:00Z", severity="critical", value=18.2, threshold=18.0,
              limit_source="critical-src", reason="unacknowledged", **o2),
        alert("o", "acknowledged", "2026-11-01T10:10:00Z", severity="critical", value=20.9, threshold=18.0,
              limit_source="critical-src", by="ana", **o2),
    ]  # fmt: skip
    [o] = lifecycles(reversed(rows))
    assert (o.severity, o.threshold, o.limit_source) == ("critical", 18.0, "critical-src")
    assert o.peak_value == 17.8  # the lowest: a "below" limit
    assert (o.escalations, o.severity_rises, o.time_to_ack_s) == (1, 1, 600.0)
    [co] = lifecycles([alert("c", "raised", "2026-11-01T10:00:00Z", value=120.0, peak=150.0)])
    assert co.peak_value == 150.0  # the events' own worst value wins


# -- quality ----------------------------------------------------------------------------------


def test_completeness_area_vs_personal_and_missing_devices() -> None:
    site_shifts = shifts(6)
    rows = [expo(device="area", shift=s, coverage=1.0) for s in site_shifts[:3]]  # 3 of 6 shifts
    rows += [expo(device="pm", worker="w", shift=s, coverage=0.5) for s in site_shifts[::3]]  # worn 2 shifts
    rows += [expo(device="other", shift=s) for s in site_shifts]
    t = parse_exposures(rows, None, KEY)
    cal = lifecycles([
        alert("k", "raised", "2026-11-01T00:00:00Z", severity="malfunction", rule="calibration_due", device="pm"),
        alert("o", "raised", "2026-11-01T00:00:00Z", severity="malfunction", rule="offline", device="area"),
        alert("o", "cleared", "2026-11-01T01:00:00Z", severity="malfunction", rule="offline", device="area"),
    ])  # fmt: skip
    devices = {d["device"]: d for d in device_rows(t, [("z1", "gone")], cal, open_at_s=2e9)}
    assert devices["area"]["completeness"] == pytest.approx(0.5)
    assert devices["pm"]["completeness"] == pytest.approx(0.5)
    assert devices["other"]["completeness"] == pytest.approx(1.0)
    assert devices["gone"]["completeness"] == 0.0
    assert devices["pm"]["calibration_overdue"] and not devices["area"]["calibration_overdue"]
    assert devices["area"]["malfunctions"] == {"offline": 1}
    channels = channel_rows(t, parse_exposures([expo(device="gone", shift="2026-10-01/1")], None, KEY))
    q = quality_summary(list(devices.values()), channels, 6)
    assert [(c["device"], c["hazard"], c["completeness"]) for c in q["low_completeness"]] == [
        ("gone", "co", 0.0), ("area", "co", 0.5), ("pm", "co", 0.5)]  # fmt: skip
    assert q["calibration_overdue"] == [{"zone": "z1", "device": "pm"}]


# -- headline ---------------------------------------------------------------------------------


def hz(share_action: float, share_limit: float, segs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"hazard": "co", "unit": "ppm", "share_above_action": share_action, "share_above_limit": share_limit,
            "above_limit": 1, "segs": segs or [], "shifts": 100, "judged": True, "profiles": ["eu"]}  # fmt: skip


def seg(verdict: str, utl: float | None = 25.0) -> dict[str, Any]:
    return {"seg": "s1/z1/co", "label": "z1", "verdict": verdict, "utl": utl, "oelv": 20.0, "gm": 5.0}


NO_ALERTS = {"urgent": 0, "ack_median_s": None, "urgent_unacknowledged": 0}


def test_changes_report_meaningful_moves_only() -> None:
    lang = Lang("en")
    prev = {
        "hazards": {"co": {"share_above_action": 0.02, "share_above_limit": 0.05, "shifts": 90}},
        "segs": {"s1/z1/co": "compliant"},
        "alerts": {"urgent": 10, "ack_median_s": 300.0},
    }
    out = changes(lang, [hz(0.09, 0.055, [seg("non_compliant")])], prev, {"urgent": 4, "ack_median_s": 290.0}, True)
    worse = [i["kind"] for i in out["worse"]]
    assert worse == ["en689_verdict", "share_above_action"]  # limit share moved only 0.5 points
    assert [i["kind"] for i in out["better"]] == ["urgent_alerts"]
    assert "9.0%" in out["worse"][1]["text"] and "2.0%" in out["worse"][1]["text"]
    assert "Carbon monoxide (CO), z1" in out["worse"][0]["text"]


def test_decisions_name_non_compliant_groups_and_follow_ups() -> None:
    lang = Lang("en")
    quality = {"calibration_overdue": [{"zone": "z1", "device": "gd-1"}], "low_completeness": []}
    items = decisions(lang, [hz(0, 0, [seg("non_compliant")])], {**NO_ALERTS, "urgent_unacknowledged": 2}, quality,
                      has_data=True)  # fmt: skip
    kinds = [i["kind"] for i in items]
    assert kinds == ["en689_non_compliant", "unacknowledged", "calibration_overdue"]
    assert "upper estimate of a high shift is 25.0 ppm" in items[0]["text"]
    assert "gd-1 (z1)" in items[2]["text"]
    assert items[1]["text"].startswith("2 alarms were never acknowledged")
    none = decisions(
        lang,
        [hz(0, 0, [seg("compliant")])],
        NO_ALERTS,
        {"calibration_overdue": [], "low_completeness": []},
        has_data=True,
    )
    assert [i["kind"] for i in none] == ["none"]


def test_russian_plural_forms_in_headline() -> None:
    lang = Lang("ru")
    q: dict[str, list[str]] = {"calibration_overdue": [], "low_completeness": []}
    texts = [decisions(lang, [], {**NO_ALERTS, "urgent_unacknowledged": n}, q, has_data=True)[0]["text"]
             for n in (1, 3, 5, 21)]  # fmt: skip
    assert texts[0].startswith("1 тревога так и не была")
    assert texts[1].startswith("3 тревоги")
    assert texts[2].startswith("5 тревог ")
    assert texts[3].startswith("21 тревога")


# -- calendar ---------------------------------------------------------------------------------


def test_months_and_bounds() -> None:
    assert previous_months("2026-02", 3) == ["2025-12", "2026-01", "2026-02"]
    start, end = month_bounds("2026-12")
    assert end - start == 31 * 86400


def test_hazards_without_shift_limits_and_msha_noise_dose() -> None:
    ch4 = hazard_summary(
        parse_exposures([expo(hazard="ch4", shift=s, limits={}) for s in shifts(4)], None, KEY), SegSpec()
    )
    assert (ch4["limit"], ch4["action"], ch4["share_above_limit"], ch4["segs"]) == (None, None, None, [])
    assert sum(ch4["histogram"]["counts"]) == 4
    rows = [
        expo(hazard="noise", shift=s, lex8h=None, dose_pct=d, limits={"limit_dose_pct": 100.0, "action_dose_pct": 50.0})
        for s, d in zip(shifts(4), [20.0, 60.0, 120.0, 90.0], strict=True)
    ]
    noise = hazard_summary(parse_exposures(rows, None, KEY), SegSpec())
    assert (noise["metric"], noise["unit"], noise["above_action"], noise["above_limit"]) == ("dose", "%", 3, 1)
    assert noise["segs"] == []  # EN 689 is for chemical agents


def test_profile_rows_fill_the_tiers_a_record_lacks() -> None:
    rows = [
        {"profile": "eu", "hazard": "noise", "rule": "lex8h", "severity": "warning", "threshold": "85"},
        {"profile": "eu", "hazard": "noise", "rule": "lex8h", "severity": "warning", "threshold": "80"},
        {"profile": "eu", "hazard": "noise", "rule": "lex8h", "severity": "alarm", "threshold": "87"},
        {"profile": "eu", "hazard": "co", "rule": "level", "severity": "alarm", "threshold": "200"},
        {
            "profile": "eu",
            "hazard": "o2",
            "rule": "twa",
            "severity": "alarm",
            "threshold": "19.5",
            "direction": "below",
        },
        {"hazard": "co", "rule": "twa", "severity": "warning", "threshold": "10"},
    ]
    tiers = profile_tiers(rows)
    assert tiers == {
        ("eu", "noise"): {("action", "lex8h"): 80.0, ("limit", "lex8h"): 87.0},
        ("", "co"): {("action", "twa8"): 10.0},
    }
    recs = [
        expo(hazard="noise", shift="2026-11-01/1", lex8h=82.0, limits={"limit_lex8h": 86.0}),  # record's limit wins
        expo(shift="2026-11-01/2", twa8=12.0, limits={"limit_twa8": 20.0}),  # any profile: action 10
    ]
    t = parse_exposures(recs, None, KEY, tiers)
    assert (t.limit.tolist(), t.action.tolist()) == ([86.0, 20.0], [80.0, 10.0])


def test_serious_headline_says_none_plainly() -> None:
    from reports.headline import serious

    lang = Lang("en")
    assert serious(lang, [], [])[0]["text"] == "No critical or escalated alerts this month."
    one = [{"severity": "alarm", "escalations": 2}]
    assert serious(lang, one, [])[0]["text"].startswith("Critical alerts: 0; escalated alerts: 1.")
