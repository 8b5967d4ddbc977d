"""Monitoring quality per device: data completeness, malfunctions, calibration overdue.

Completeness of a channel (device + hazard + wearer) = Σ coverage / expected shifts, where an
area monitor (no wearer) is expected in every shift the site had in the month and a personal
monitor in every shift it reported (a worker's monitor is off the other shifts; its gaps inside
a worn shift still count). A device's completeness is the mean over its hazard channels; a device
seen in earlier months with nothing this month scores 0. Auxiliary channels (the C-weighted noise
peak, judged reading by reading) do not count: no shift figure depends on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from reports.alert_stats import CONFIGURATION_RULES, AlertLife
from reports.exposure_stats import AUXILIARY_HAZARDS, groups
from reports.shifts import ShiftTable

#: A device below this completeness is named in the headline (fraction of expected data).
LOW_COMPLETENESS = 0.90
#: The rule that says a sensor's calibration is due (SPEC §2.2).
CALIBRATION_RULE = "calibration_due"


def _channel_completeness(t: ShiftTable, site_shifts: int) -> tuple[int, float, int]:
    """(channels, Σ completeness over channels, shifts with data) of one device's rows."""
    key = np.array([f"{h}\x1f{w}" for h, w in zip(t.hazard, t.worker, strict=True)], dtype=object)
    total, channels = 0.0, 0
    for _, idx in groups(key):
        if t.hazard[idx[0]] in AUXILIARY_HAZARDS:
            continue
        expected = site_shifts if t.worker[idx[0]] == "" else len(set(t.shift[idx]))
        total += min(1.0, float(np.nansum(t.coverage[idx])) / expected) if expected else 0.0
        channels += 1
    return channels, total, len(set(t.shift))


def _channel_key(t: ShiftTable) -> np.ndarray:
    parts = zip(t.zone, t.device, t.hazard, t.worker, strict=True)
    return np.array(["\x1f".join(map(str, p)) for p in parts], dtype=object)


def channel_rows(month: ShiftTable, earlier: ShiftTable) -> list[dict[str, Any]]:
    """Completeness per hazard channel (zone, device, hazard, wearer), auxiliary channels left out.

    `earlier`: the site's shifts of the months before, so that a channel that went silent scores 0.
    """
    site_shifts = len(set(month.shift))
    rows: dict[str, dict[str, Any]] = {}
    for label, idx in groups(_channel_key(month)):
        zone, device, hazard, worker = str(label).split("\x1f")
        expected = site_shifts if worker == "" else len(set(month.shift[idx]))
        got = float(np.nansum(month.coverage[idx]))
        rows[label] = {"zone": zone, "device": device, "hazard": hazard, "worker": worker,
                       "shifts_with_data": int(idx.size), "expected_shifts": expected,
                       "completeness": min(1.0, got / expected) if expected else 0.0}  # fmt: skip
    for label in set(_channel_key(earlier)) - set(rows):
        zone, device, hazard, worker = str(label).split("\x1f")
        rows[label] = {"zone": zone, "device": device, "hazard": hazard, "worker": worker,
                       "shifts_with_data": 0, "expected_shifts": site_shifts, "completeness": 0.0}  # fmt: skip
    keep = (r for r in rows.values() if r["hazard"] not in AUXILIARY_HAZARDS)
    return sorted(keep, key=lambda r: (r["completeness"], r["zone"], r["device"], r["hazard"]))


def device_rows(
    month: ShiftTable, earlier_devices: Iterable[tuple[str, str]], lives: list[AlertLife], open_at_s: float
) -> list[dict[str, Any]]:
    """One row per (zone, device) of the site: completeness, faulty shifts, malfunctions, calibration.

    `lives`: the site's alerts of the month; a calibration_due alert not cleared by `open_at_s`
    (end of the month or now, whichever is earlier) marks the device as overdue. Configuration
    alerts (`not_judged`) are about the limit profile, not a device: they are left out here.
    """
    site_shifts = len(set(month.shift))
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    dev_key = np.array([f"{z}\x1f{d}" for z, d in zip(month.zone, month.device, strict=True)], dtype=object)
    for label, idx in groups(dev_key):
        zone, device = str(label).split("\x1f")
        part = month.take(idx)
        channels, total, shifts = _channel_completeness(part, site_shifts)
        rows[(zone, device)] = _empty(zone, device) | {
            "channels": channels,
            "shifts_with_data": shifts,
            "completeness": total / channels if channels else None,
            "faulty_shifts": int(np.count_nonzero(part.faulty)),
        }
    for zone, device in earlier_devices:
        rows.setdefault((zone, device), _empty(zone, device))
    for a in (a for a in lives if a.rule not in CONFIGURATION_RULES):
        row = rows.setdefault((a.zone, a.device), _empty(a.zone, a.device, completeness=None))
        if a.severity == "malfunction":
            row["malfunctions"][a.rule] = row["malfunctions"].get(a.rule, 0) + 1
        if a.rule == CALIBRATION_RULE and (a.cleared_s is None or a.cleared_s > open_at_s):
            row["calibration_overdue"] = True
    out = sorted(rows.values(), key=lambda r: (r["zone"], r["device"]))
    for r in out:
        r["malfunction_count"] = sum(r["malfunctions"].values())
    return out


def _empty(zone: str, device: str, completeness: float | None = 0.0) -> dict[str, Any]:
    return {
        "zone": zone, "device": device, "channels": 0, "shifts_with_data": 0,
        "completeness": completeness, "faulty_shifts": 0, "malfunctions": {}, "calibration_overdue": False,
    }  # fmt: skip


def quality_summary(devices: list[dict[str, Any]], channels: list[dict[str, Any]], site_shifts: int) -> dict[str, Any]:
    """Site totals; `low_completeness` are hazard channels (not devices) below LOW_COMPLETENESS."""
    scored = [d["completeness"] for d in devices if d["completeness"] is not None]
    return {
        "site_shifts": site_shifts,
        "devices": len(devices),
        "completeness_mean": float(np.mean(scored)) if scored else None,
        "low_completeness": [c for c in channels if c["completeness"] < LOW_COMPLETENESS],
        "malfunctions": sum(d["malfunction_count"] for d in devices),
        "calibration_overdue": [
            {"zone": d["zone"], "device": d["device"]} for d in devices if d["calibration_overdue"]
        ],
        "faulty_shifts": sum(d["faulty_shifts"] for d in devices),
    }  # fmt: skip
