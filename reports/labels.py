"""Reader-facing labels of every CSV column and of the codes in summary.json, from the catalogues.

The CSV files carry these labels as their header row in the report's language; summary.json
carries the same labels (`labels`) and, per CSV file, the column key behind each label
(`csv_columns`), so a program can read any language's files.
"""

from __future__ import annotations

from typing import Any

from reports.i18n import N_, Lang
from reports.vocab import DIRECTION, EXCLUSION, HAZARD, METHOD, METRIC, RULE, SEVERITY, UNIT, VERDICT

COLUMN: dict[str, str] = {
    "site": N_("Site"), "zone": N_("Zone"), "zones": N_("Zones"), "device": N_("Device"),
    "hazard": N_("Hazard"), "worker": N_("Worker"), "shift": N_("Shift"), "metric": N_("Figure judged"),
    "value": N_("Value"), "limit": N_("Limit value"), "action": N_("Action level"),
    "twa8": N_("8-hour average"), "oelv": N_("Long-term limit (OELV)"), "stel15_max": N_("Highest 15-minute average"),
    "stel_limit": N_("15-minute limit"), "coverage": N_("Share of the shift with data"),
    "sensor_faulty": N_("Sensor faulty"), "valid": N_("Counted"), "profile": N_("Limit profile"),
    "shifts": N_("Valid shifts"), "excluded": N_("Excluded shifts"), "excluded_faulty": N_("Excluded: sensor faulty"),
    "above_action": N_("Shifts at or above the action level"), "above_limit": N_("Shifts at or above the limit value"),
    "share_above_action": N_("Share at or above the action level"),
    "share_above_limit": N_("Share at or above the limit value"),
    "above_stel": N_("Shifts above the 15-minute limit"), "mean": N_("Mean"), "p95": N_("95th percentile"),
    "max": N_("Highest"), "seg": N_("Similar-exposure group"), "n": N_("Shifts in the EN 689 test"),
    "shifts_total": N_("Shifts of the group"), "workers": N_("Workers"),
    "area_monitor_shifts": N_("Shifts from fixed monitors"), "method": N_("Test"), "verdict": N_("Verdict"),
    "gm": N_("Geometric mean"), "gsd": N_("Geometric standard deviation"), "k": N_("Tolerance factor k"),
    "utl": N_("Upper tolerance limit UTL95,70"), "screen_limit": N_("Preliminary test threshold"),
    "exceedance_pct": N_("Estimated share of shifts above the limit (%)"),
    "reassess_months": N_("Reassess within (months)"), "censored": N_("Results below the LOQ"),
    "loq": N_("Limit of quantification (LOQ)"), "reason": N_("Reason"),
    "excluded_by_reason": N_("Excluded shifts by reason"), "alert_id": N_("Alert"), "rule": N_("Rule"),
    "severity": N_("Severity"), "since": N_("Since"), "acknowledged_at": N_("Acknowledged at"),
    "time_to_ack_s": N_("Time to acknowledge (s)"), "ack_by": N_("Acknowledged by"), "ack_note": N_("Note"),
    "cleared_at": N_("Cleared at"), "escalations": N_("Escalations"), "peak_value": N_("Worst value"),
    "threshold": N_("Threshold"), "unit": N_("Unit"), "limit_source": N_("Source of the limit"),
    "direction": N_("Direction"), "alerts": N_("Alerts"), "acknowledged": N_("Acknowledged"),
    "unacknowledged": N_("Never acknowledged"), "escalated": N_("Escalated"),
    "ack_median_s": N_("Median time to acknowledge (s)"), "ack_worst_s": N_("Longest time to acknowledge (s)"),
    "channels": N_("Channels"), "shifts_with_data": N_("Shifts with data"), "expected_shifts": N_("Expected shifts"),
    "completeness": N_("Data completeness"), "faulty_shifts": N_("Shifts with a faulty sensor"),
    "malfunction_count": N_("Malfunction alerts"), "malfunctions": N_("Malfunctions by rule"),
    "calibration_overdue": N_("Calibration overdue"), "month": N_("Month"), "segs": N_("Groups"),
    "compliant": N_("Groups compliant"), "non_compliant": N_("Groups not compliant"),
    "no_decision": N_("Groups without a decision"), "insufficient": N_("Groups with too few shifts"),
    "duration_s": N_("Duration (s)"), "label": N_("Description"), "source": N_("Source"),
}  # fmt: skip


def column_label(lang: Lang, key: str) -> str:
    return lang.gettext(COLUMN[key]) if key in COLUMN else key


def labels(lang: Lang) -> dict[str, Any]:
    """Every code of summary.json and every CSV column with its label in `lang`."""
    tables = {
        "columns": COLUMN, "hazard": HAZARD, "metric": METRIC, "rule": RULE, "severity": SEVERITY,
        "verdict": VERDICT, "method": METHOD, "direction": DIRECTION, "unit": UNIT, "exclusion": EXCLUSION,
    }  # fmt: skip
    return {part: {k: lang.gettext(v) for k, v in table.items()} for part, table in tables.items()}
