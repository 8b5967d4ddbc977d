"""`oshmon report monthly`: the social-dialogue committee's monthly summary.

Reads only shift exposure records and alert events through the `Store` interface (never raw
readings), so a month of 1,000 channels is about 90,000 rows. Writes into `out_dir`:
report.html (self-contained, charts inline, A4 print layout), summary.json (every number of
the report) and CSV tables. The month of a shift is the date in its shift id (site time);
alerts belong to the UTC month their condition started in.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from alerts.types import rfc3339
from reports import headline
from reports.alert_stats import AlertLife, alert_summary, lifecycles, not_judged_alerts
from reports.anchors import audit_heads
from reports.charts import alerts_svg, distribution_svg, trend_svg
from reports.decisions import decisions, unjudged
from reports.exposure_stats import AUXILIARY_HAZARDS, EN689_MIN_COVERAGE, SegSpec, groups, hazard_summary
from reports.files import prepare_out_dir, write_bytes, write_text
from reports.i18n import Lang
from reports.labels import labels
from reports.monthly_files import write_tables
from reports.profile_limits import instant_levels, profile_tiers
from reports.quality import channel_rows, device_rows, quality_summary
from reports.render import MAX_HTML_ROWS, clean_floats, render_html
from reports.serious import exceedances, serious_alerts
from reports.shifts import MIN_VALID_COVERAGE, ShiftTable, parse_exposures, pseudonym
from reports.trend import month_of, previous_months, trend
from rules.errors import OshError
from storage.base import HistoryQuery, RecordKind, Store

#: Acknowledgements up to this long after the month still count for its alerts.
ACK_LOOKAHEAD_S = 7 * 86400.0
#: Shift records are fetched this far around the month (shift ids use site time, `t` is UTC).
QUERY_MARGIN_S = 2 * 86400.0
#: Months in the trend, this one included: the quarter before it and this month.
DEFAULT_TREND_MONTHS = 4
SCHEMA = "oshmon.report.monthly/1"


class NoReportData(OshError):
    """Nothing stored for the site (or any site) in the months the report covers."""


def month_bounds(month: str) -> tuple[float, float]:
    """ "YYYY-MM" → [first instant, first instant of the next month) in UTC epoch seconds."""
    y, m = (int(p) for p in month.split("-"))
    start = datetime(y, m, 1, tzinfo=UTC)
    end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
    return start.timestamp(), end.timestamp()


def oshmon_version() -> str:
    try:
        return metadata.version("oshmon")
    except metadata.PackageNotFoundError:
        return "unknown"


def _worst_devices(devices: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    def key(d: Mapping[str, Any]) -> tuple[float, int, str]:
        c = d["completeness"]
        return (
            -1.0 if c is None else c,
            -d["malfunction_count"] - 10 * d["calibration_overdue"],
            d["device"],
        )

    return sorted(devices, key=key)[:MAX_HTML_ROWS]


def _hazards(
    cur: ShiftTable, seg: SegSpec, loq: Mapping[str, float], profile_rows: Sequence[Mapping[str, str]]
) -> list[dict[str, Any]]:
    """The exposure sections of a site's month: one per hazard, auxiliary channels left out."""
    main = cur.take(~np.isin(cur.hazard, list(AUXILIARY_HAZARDS)))
    hazards = [hazard_summary(main.take(idx), seg, loq.get(str(h))) for h, idx in groups(main.hazard)]
    for hz in hazards:
        hz["workers"].sort(key=lambda w: (-(w["max"] or 0.0), w["worker"]))
        hz["instant_levels"] = instant_levels(profile_rows, hz["hazard"], hz["profiles"])
    return hazards


def site_summary(
    site: str, table: ShiftTable, lives: Sequence[AlertLife], months: Sequence[str], seg: SegSpec,
    lang: Lang, open_at_s: float, loq: Mapping[str, float], profile_rows: Sequence[Mapping[str, str]],
) -> dict[str, Any]:  # fmt: skip
    """Everything about one site: headline, serious events, hazards, alerts, quality and trend."""
    st = table.take(table.site == site)
    site_lives = [a for a in lives if a.site == site]
    months_data = trend(st, site_lives, months, seg, loq)
    cur = st.take(st.month == months[-1])
    cur_lives = [a for a in site_lives if month_of(a.since_s) == months[-1]]
    hazards = _hazards(cur, seg, loq, profile_rows)
    config_alerts = not_judged_alerts(cur_lives)  # shown with the hazards not judged, not as device faults
    for hz in hazards:
        hz["not_judged_alert"] = config_alerts.get(hz["hazard"])
    not_judged = unjudged(hazards, config_alerts)
    alerts = alert_summary(cur_lives)
    devices = device_rows(cur, set(zip(st.zone, st.device, strict=True)), cur_lives, open_at_s)
    channels = channel_rows(cur, st.take(st.month != months[-1]))
    quality = quality_summary(devices, channels, len(set(cur.shift)))
    prev = months_data[-2] if len(months_data) > 1 and months_data[-2]["data"] else None
    compared = headline.comparison(lang, months[-1], hazards, prev)
    listed, exceeded = serious_alerts(cur_lives), exceedances(hazards)
    has_data = bool(len(cur)) or bool(cur_lives)
    return {
        "site": site, "has_data": has_data, "previous_data": prev is not None,
        "profiles": sorted(({str(p) for p in cur.profile} | {a.profile for a in cur_lives}) - {""}),
        "headline": {
            "comparison": compared,
            **headline.changes(lang, hazards, prev, alerts, compared["comparable"]),
            "serious": headline.serious(lang, listed, exceeded, [h for hs in not_judged.values() for h in hs]),
            "decisions": decisions(lang, hazards, alerts, quality, has_data=has_data, not_judged=not_judged),
        },
        "not_judged": {"by_profile": not_judged, "alerts": list(config_alerts.values())},
        "serious_alerts": listed, "exceedances": exceeded, "hazards": hazards,
        "auxiliary_shifts": int(np.count_nonzero(np.isin(cur.hazard, list(AUXILIARY_HAZARDS)))),
        "alerts": alerts, "quality": quality, "channels": channels, "devices": devices,
        "devices_worst": _worst_devices(devices), "trend": months_data,
    }  # fmt: skip


def _charts(sites: Sequence[Mapping[str, Any]], lang: Lang) -> dict[str, str]:
    charts: dict[str, str] = {}
    for i, s in enumerate(sites):
        for j, hz in enumerate(s["hazards"]):
            if hz["shifts"]:
                charts[f"{s['site']}/dist/{hz['hazard']}"] = distribution_svg(hz, lang, f"c{i}d{j}")
        if s["alerts"]["alerts"]:
            charts[f"{s['site']}/alerts"] = alerts_svg(s["alerts"]["by_rule_severity"], lang, f"c{i}a")
        charts[f"{s['site']}/trend"] = trend_svg(s["trend"], lang, f"c{i}t")
    return charts


def _load(
    store: Store, month: str, site: str | None, months: Sequence[str], key: bytes | None,
    profile_rows: Sequence[Mapping[str, str]], shift_hours: Mapping[str, float],
) -> tuple[ShiftTable, list[AlertLife]]:  # fmt: skip
    first, _ = month_bounds(months[0])
    _, end = month_bounds(month)
    q = HistoryQuery(RecordKind.EXPOSURES, site=site, t_from_s=first - QUERY_MARGIN_S, t_to_s=end + QUERY_MARGIN_S)
    table = parse_exposures(store.query(q), set(months), key, profile_tiers(profile_rows), shift_hours)
    q = HistoryQuery(RecordKind.ALERTS, site=site, t_from_s=first, t_to_s=end + ACK_LOOKAHEAD_S)
    lives = lifecycles(store.query(q))
    if key is not None:
        lives = [replace(a, worker=pseudonym(a.worker, key)) if a.worker else a for a in lives]
    return table, lives


def build_monthly(
    store: Store,
    month: str,
    site: str | None,
    lang: str,
    out_dir: Path,
    *,
    limits_profile_rows: list[dict[str, str]] | None,
    pseudonym_key: bytes,
    now_s: float,
    pseudonymise: bool = True,
    seg: SegSpec | None = None,
    trend_months: int = DEFAULT_TREND_MONTHS,
    loq: Mapping[str, float] | None = None,
    force: bool = False,
    shift_hours: Mapping[str, float] | None = None,
) -> Path:
    """Write report.html, summary.json and the CSV tables for `month` ("YYYY-MM") into `out_dir`.

    `site=None` reports every site with records. `limits_profile_rows` are the rows of
    `rules.profiles.describe_limits` (optionally with a "profile" key): listed in the report with
    their sources, and the source of action levels that records do not carry. Workers appear as
    keyed pseudonyms (HMAC-SHA256 with `pseudonym_key`) unless `pseudonymise=False`; `seg` sets
    the similar-exposure groups (default site + zone + hazard); the trend covers `trend_months`
    months ending with `month`. `out_dir` must be new or empty unless `force` (reports/files.py).
    `shift_hours` ({site: hours}, "" for any other site) is the configured shift length: a record
    under a shift-average limit that lacks its stored `shift_avg` is judged on twa8 × 8 h / it.
    Returns the path of report.html.
    """
    out_dir = prepare_out_dir(out_dir, force=force, what="a monthly report")
    language = Lang(lang)
    if pseudonymise and not pseudonym_key:
        raise ValueError("a non-empty pseudonym key is needed to pseudonymise workers")
    seg = seg or SegSpec()
    months = previous_months(month, max(2, trend_months))
    profile_rows = list(limits_profile_rows or [])
    key = pseudonym_key if pseudonymise else None
    table, lives = _load(store, month, site, months, key, profile_rows, shift_hours or {})
    if not len(table) and not lives:
        raise NoReportData(_nothing_stored(store, month, site, months))
    names = sorted(set(table.site.tolist()) | {a.site for a in lives} | ({site} if site else set()))
    open_at = min(month_bounds(month)[1], now_s)
    loq = dict(loq or {})
    sites = [site_summary(s, table, lives, months, seg, language, open_at, loq, profile_rows) for s in names]
    summary = _summary(month, site, lang, now_s, pseudonymise, seg, months, profile_rows, sites)
    summary |= {"loq": loq, "labels": labels(language), "audit_heads": audit_heads(store)}
    tables = write_tables(out_dir, summary, table.take(table.month == month), lives, month, language)
    summary["files"] = ["report.html", "summary.json", *tables]
    summary["csv_columns"] = tables
    write_bytes(out_dir / "summary.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    report = out_dir / "report.html"
    write_text(report, render_html(summary, _charts(sites, language), language))
    return report


def _nothing_stored(store: Store, month: str, site: str | None, months: Sequence[str]) -> str:
    span = f"{months[0]} to {month}"
    if site is None:
        return f"no shift records and no alerts for any site from {span}: nothing to report"
    start, end = month_bounds(month)
    kinds = (RecordKind.ALERTS, RecordKind.EXPOSURES)
    known = sorted({r["site"] for k in kinds for r in store.query(HistoryQuery(k, t_from_s=start, t_to_s=end))})
    others = f"; sites with records in {month}: {', '.join(known)}" if known else f"; no site has records in {month}"
    return f"no shift records and no alerts for site {site!r} from {span}{others}"


def _summary(
    month: str, site: str | None, lang: str, now_s: float, pseudonymise: bool, seg: SegSpec,
    months: Sequence[str], profile_rows: list[dict[str, str]], sites: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The top of summary.json: what the report covers and how it was made."""
    start, end = month_bounds(month)
    last_day = calendar.monthrange(*(int(p) for p in month.split("-")))[1]
    summary: dict[str, Any] = clean_floats({
        "schema": SCHEMA, "version": oshmon_version(), "month": month, "site_filter": site, "lang": lang,
        "generated_at": rfc3339(now_s), "generated_at_s": now_s,
        "period": {"from": rfc3339(start), "to": rfc3339(end), "first_day": f"{month}-01",
                   "last_day": f"{month}-{last_day:02d}"},
        "pseudonymised": pseudonymise, "seg_fields": list(seg.fields), "zone_groups": dict(seg.zone_groups),
        "min_valid_coverage": MIN_VALID_COVERAGE, "en689_min_coverage": EN689_MIN_COVERAGE,
        "trend_months": list(months),
        "limits_profile": profile_rows,
        "shift_average_limits": any(h["metric"] == "shift_avg" for st in sites for h in st["hazards"]),
        "limits_profile_columns": list(dict.fromkeys(k for r in profile_rows for k in r)),
        "sites": sites,
    })  # fmt: skip
    return summary
