"""The CSV tables that accompany report.html (dot decimals, UTC times, codes as stored).

The header row holds each column's label in the report's language (`reports/labels.py`);
summary.json's `csv_columns` maps every file's labels back to the column keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from alerts.types import rfc3339
from reports.alert_stats import AlertLife
from reports.i18n import Lang
from reports.labels import column_label
from reports.render import write_csv
from reports.shifts import ShiftTable
from reports.trend import month_of

SHIFT_COLUMNS = (
    "site", "zone", "device", "hazard", "worker", "shift", "metric", "value", "limit", "action",
    "twa8", "oelv", "stel15_max", "stel_limit", "coverage", "sensor_faulty", "valid",
)  # fmt: skip
FIGURE_COLUMNS = (
    "shifts", "excluded", "excluded_faulty", "above_action", "above_limit", "share_above_action",
    "share_above_limit", "above_stel", "mean", "p95", "max",
)  # fmt: skip
SEG_COLUMNS = (
    "site", "hazard", "seg", "zones", "shifts_total", "n", "excluded_by_reason", "workers", "area_monitor_shifts",
    "oelv", "loq", "censored", "method", "verdict", "reason", "gm", "gsd", "k", "utl", "screen_limit",
    "exceedance_pct", "reassess_months",
)  # fmt: skip
EXCLUDED_COLUMNS = ("site", "hazard", "seg", "shift", "device", "worker", "coverage", "reason")
CHANNEL_COLUMNS = ("site", "zone", "device", "hazard", "worker", "shifts_with_data", "expected_shifts", "completeness")
ALERT_COLUMNS = (
    "alert_id", "site", "zone", "device", "hazard", "worker", "rule", "severity", "since", "acknowledged_at",
    "time_to_ack_s", "ack_by", "ack_note", "cleared_at", "escalations", "severity_rises", "peak_value", "direction",
    "threshold", "unit", "profile", "limit_source",
)  # fmt: skip
ALERT_RULE_COLUMNS = (
    "site", "rule", "severity", "alerts", "acknowledged", "unacknowledged", "escalated", "ack_median_s",
    "ack_worst_s",
)  # fmt: skip
DEVICE_COLUMNS = (
    "site", "zone", "device", "channels", "shifts_with_data", "completeness", "faulty_shifts",
    "malfunction_count", "malfunctions", "calibration_overdue",
)  # fmt: skip
TREND_COLUMNS = ("site", "month", "hazard", *FIGURE_COLUMNS, "segs", "compliant", "non_compliant",
                 "no_decision", "insufficient")  # fmt: skip


def _shift_rows(t: ShiftTable) -> Iterator[dict[str, Any]]:
    cols = {
        "site": t.site, "zone": t.zone, "device": t.device, "hazard": t.hazard, "worker": t.worker,
        "shift": t.shift, "metric": t.metric, "value": t.value, "limit": t.limit, "action": t.action,
        "twa8": t.twa8, "oelv": t.oelv, "stel15_max": t.stel, "stel_limit": t.stel_limit,
        "coverage": t.coverage, "sensor_faulty": t.faulty, "valid": t.valid,
    }  # fmt: skip
    lists = {k: v.tolist() for k, v in cols.items()}
    for i in range(len(t)):
        yield {k: v[i] for k, v in lists.items()}


def alert_handling_row(a: AlertLife) -> dict[str, Any]:
    d = a.as_dict()
    d["since"] = rfc3339(a.since_s)
    d["acknowledged_at"] = rfc3339(a.ack_s) if a.ack_s is not None else None
    d["cleared_at"] = rfc3339(a.cleared_s) if a.cleared_s is not None else None
    return d


def _per_site(sites: Sequence[Mapping[str, Any]], part: str) -> Iterator[dict[str, Any]]:
    for s in sites:
        for hz in s["hazards"]:
            for row in hz[part]:
                yield {"site": s["site"], "hazard": hz["hazard"], **row}


def _excluded_rows(sites: Sequence[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    for s in sites:
        for hz in s["hazards"]:
            for seg in hz["segs"]:
                for e in seg["excluded_shifts"]:
                    yield {"site": s["site"], "hazard": hz["hazard"], "seg": seg["seg"], **e}


def _trend_rows(sites: Sequence[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    for s in sites:
        for m in s["trend"]:
            for hazard, figs in m["hazards"].items():
                yield {"site": s["site"], "month": m["month"], "hazard": hazard, **figs}


def write_tables(
    out_dir: Path,
    summary: Mapping[str, Any],
    month_table: ShiftTable,
    lives: Sequence[AlertLife],
    month: str,
    lang: Lang,
) -> dict[str, list[list[str]]]:
    """Write the CSV tables; returns {file name: [[column key, label], ...]}."""
    sites = summary["sites"]
    tables: list[tuple[str, Sequence[str], Any]] = [
        ("shifts.csv", SHIFT_COLUMNS, _shift_rows(month_table)),
        ("zones.csv", ("site", "hazard", "zone", *FIGURE_COLUMNS), _per_site(sites, "zones")),
        ("segs.csv", SEG_COLUMNS, _per_site(sites, "segs")),
        ("en689_excluded.csv", EXCLUDED_COLUMNS, _excluded_rows(sites)),
        ("workers.csv", ("site", "hazard", "worker", *FIGURE_COLUMNS), _per_site(sites, "workers")),
        ("alerts.csv", ALERT_COLUMNS, (alert_handling_row(a) for a in lives if month_of(a.since_s) == month)),
        ("alert_rules.csv", ALERT_RULE_COLUMNS,
         ({"site": s["site"], **r} for s in sites for r in s["alerts"]["by_rule_severity"])),
        ("devices.csv", DEVICE_COLUMNS, ({"site": s["site"], **d} for s in sites for d in s["devices"])),
        ("channels.csv", CHANNEL_COLUMNS, ({"site": s["site"], **c} for s in sites for c in s["channels"])),
        ("trend.csv", TREND_COLUMNS, _trend_rows(sites)),
    ]  # fmt: skip
    out = {}
    for file_name, columns, rows in tables:
        header = [column_label(lang, c) for c in columns]
        write_csv(out_dir / file_name, columns, rows, header=header)
        out[file_name] = [[c, h] for c, h in zip(columns, header, strict=True)]
    return out
