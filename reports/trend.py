"""Month-by-month figures of one site (the trend section and last month's comparison)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from reports.alert_stats import AlertLife, alert_summary
from reports.exposure_stats import AUXILIARY_HAZARDS, SegSpec, figures, groups, seg_rows, verdict_counts
from reports.shifts import ShiftTable


def month_of(t_s: float) -> str:
    """Epoch seconds → "YYYY-MM" (UTC)."""
    return datetime.fromtimestamp(t_s, tz=UTC).strftime("%Y-%m")


def previous_months(month: str, count: int) -> list[str]:
    """`count` months ending with `month`, oldest first: ("2026-03", 3) → 2026-01, -02, -03."""
    y, m = (int(p) for p in month.split("-"))
    out = []
    for _ in range(count):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def month_exposures(t: ShiftTable, seg: SegSpec, loq: Mapping[str, float]) -> dict[str, Any]:
    """{"hazards": {hazard: figures + SEG verdict counts}, "segs": {seg label: verdict}}."""
    hazards: dict[str, dict[str, Any]] = {}
    verdicts: dict[str, str] = {}
    for hazard, idx in groups(t.hazard):
        if hazard in AUXILIARY_HAZARDS:
            continue
        part = t.take(idx)
        segs = seg_rows(part, seg, loq.get(str(hazard)))
        hazards[str(hazard)] = {**figures(part), "segs": len(segs), **verdict_counts(segs)}
        verdicts.update({s["seg"]: s["verdict"] for s in segs})
    return {"hazards": hazards, "segs": verdicts}


def _alert_figures(lives: Sequence[AlertLife]) -> dict[str, Any]:
    summary = alert_summary(list(lives))
    summary.pop("unacknowledged_alerts")
    return summary


def trend(
    site_table: ShiftTable,
    lives: Sequence[AlertLife],
    months: Sequence[str],
    seg: SegSpec,
    loq: Mapping[str, float],
) -> list[dict[str, Any]]:
    """Per month (oldest first): exposure figures per hazard, SEG verdicts and alert figures.

    A month with no shift records and no alerts has `"data": False`.
    """
    out = []
    for m in months:
        part = site_table.take(site_table.month == m)
        in_month = [a for a in lives if month_of(a.since_s) == m]
        expo = month_exposures(part, seg, loq)
        out.append({
            "month": m, "data": bool(len(part) or in_month), **expo,
            "alerts": _alert_figures(in_month) if in_month or len(part) else None,
        })  # fmt: skip
    return out
