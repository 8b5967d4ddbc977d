"""Shift exposures against limits: shares above action level and limit, by zone, worker and SEG.

"Above" means at or above the threshold (value >= threshold), as in `rules.results.Direction`.
Only valid shifts count (`ShiftTable.valid`); the rest are reported as excluded.
Noise levels in dB are averaged on the energy scale: 10·log10(mean(10^(L/10))) (ISO 9612).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from reports.en689 import Verdict, assess
from reports.shifts import DECIBEL_METRICS, ShiftTable
from rules.types import CANONICAL_UNIT, Hazard

#: Bins of the distribution chart.
HISTOGRAM_BINS = 24
#: Upper end of the distribution chart: the larger of 1.25 × limit and this quantile.
HISTOGRAM_TOP_QUANTILE = 0.995
#: Fields a SEG may be defined by.
SEG_FIELDS = ("site", "zone", "device", "worker", "hazard")
#: A shift enters the EN 689 test only with data over at least 6 of its 8 hours. EN 689:2018 lets
#: a sample cover as little as 2 h *because the hygienist chooses a representative period*; a gap
#: in continuous monitoring is not chosen (battery, radio, the wearer out of range), so at most a
#: quarter of a shift is filled in from the rest of it (result = twa8 / coverage: the mean over
#: the measured time, as a 2-h pump sample would report it). See docs/reports.md.
EN689_MIN_COVERAGE = 0.75
#: Channels no shift decision depends on: the C-weighted peak is judged reading by reading (its
#: alerts), never as a shift figure, so it has no exposure section, no completeness item.
AUXILIARY_HAZARDS = frozenset({"noise_peak"})
#: Excluded shifts listed per SEG in the HTML (all of them are in summary.json and en689_excluded.csv).
MAX_LISTED_EXCLUDED = 8


@dataclass(frozen=True, slots=True)
class SegSpec:
    """How shifts are pooled into similar-exposure groups (default: site + zone + hazard).

    `zone_groups` maps zone names to a group name, pooling zones with the same work pattern.
    """

    fields: tuple[str, ...] = ("site", "zone", "hazard")
    zone_groups: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [f for f in self.fields if f not in SEG_FIELDS]
        if bad or "hazard" not in self.fields:
            raise ValueError(f"SEG fields must include 'hazard' and come from {SEG_FIELDS}; got {self.fields}")

    def labels(self, t: ShiftTable, *, short: bool = False) -> npt.NDArray[np.object_]:
        """SEG ids ("kop-1/face-3/co"); `short` leaves out site and hazard (shown around it)."""
        cols = []
        for f in self.fields:
            if short and f in ("site", "hazard"):
                continue
            c = getattr(t, f)
            if f == "zone" and self.zone_groups:
                c = np.array([self.zone_groups.get(z, z) for z in c], dtype=object)
            cols.append(c)
        if not cols:
            return np.full(len(t), "", dtype=object)
        return np.array(["/".join(map(str, parts)) for parts in zip(*cols, strict=True)], dtype=object)


def groups(key: npt.NDArray[Any]) -> Iterator[tuple[Any, npt.NDArray[np.intp]]]:
    """(label, row indices) for each distinct key, in sorted key order."""
    if key.shape[0] == 0:
        return
    order = np.argsort(key, kind="stable")
    sk = key[order]
    cuts = np.flatnonzero(sk[1:] != sk[:-1]) + 1
    for part in np.split(order, cuts):
        yield key[part[0]], part


def _share(count: int, n: int, known: bool) -> float | None:
    return count / n if known and n else None


def _mean(values: npt.NDArray[np.float64], decibel: bool) -> float | None:
    if values.size == 0:
        return None
    if decibel:
        return float(10.0 * np.log10(np.mean(10.0 ** (values / 10.0))))
    return float(values.mean())


def figures(t: ShiftTable) -> dict[str, Any]:
    """Counts and shares of valid shifts at/above the action level and the limit; max, p95, mean."""
    v = t.take(t.valid)
    n = len(v)
    has_action = bool(np.isfinite(v.action).any())
    has_limit = bool(np.isfinite(v.limit).any())
    n_action = int(np.count_nonzero(v.value >= v.action))  # NaN compares False
    n_limit = int(np.count_nonzero(v.value >= v.limit))
    n_stel = int(np.count_nonzero(v.stel >= v.stel_limit))
    decibel = bool(n) and v.metric[0] in DECIBEL_METRICS
    return {
        "shifts": n,
        "excluded": len(t) - n,
        "excluded_faulty": int(np.count_nonzero(t.faulty)),
        "above_action": n_action if has_action else None,
        "above_limit": n_limit if has_limit else None,
        "share_above_action": _share(n_action, n, has_action),
        "share_above_limit": _share(n_limit, n, has_limit),
        "above_stel": n_stel if np.isfinite(v.stel_limit).any() else None,
        "mean": _mean(v.value, decibel),
        "p95": float(np.quantile(v.value, 0.95)) if n else None,
        "max": float(v.value.max()) if n else None,
    }


def _mode_or_nan(x: npt.NDArray[np.float64]) -> float:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan
    vals, counts = np.unique(x, return_counts=True)
    return float(vals[np.argmax(counts)])


def _hist_range(v: npt.NDArray[np.float64], decibel: bool, limit: float, action: float) -> tuple[float, float]:
    top = float(np.quantile(v, HISTOGRAM_TOP_QUANTILE))
    if decibel:
        floor_at = min(float(np.quantile(v, 0.005)), action if math.isfinite(action) else top)
        lo, hi = float(math.floor(floor_at - 3.0)), max(top, limit + 3.0 if math.isfinite(limit) else top)
    else:
        lo, hi = 0.0, max(top, 1.25 * limit if math.isfinite(limit) else top)
    return lo, (hi if hi > lo else lo + 1.0)


def histogram(t: ShiftTable, limit: float, action: float) -> dict[str, list[float] | list[int]]:
    """Counts of valid shift values in equal bins; values outside fall into the end bins."""
    v = t.value[t.valid]
    if v.size == 0:
        return {"edges": [], "counts": []}
    lo, hi = _hist_range(v, t.metric[0] in DECIBEL_METRICS, limit, action)
    edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(np.clip(v, lo, hi), bins=edges)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def unit_of(hazard: str, metric: str) -> str:
    if metric == "dose":
        return "%"
    try:
        return CANONICAL_UNIT[Hazard(hazard)]
    except ValueError:
        return ""


def group_table(t: ShiftTable, key: npt.NDArray[Any], name: str) -> list[dict[str, Any]]:
    return [{name: label, **figures(t.take(idx))} for label, idx in groups(key)]


def en689_exclusion(t: ShiftTable) -> npt.NDArray[np.object_]:
    """Why each shift does not enter the EN 689 test ("" when it does)."""
    cov = np.nan_to_num(t.coverage)
    why = np.full(len(t), "", dtype=object)
    why[cov < EN689_MIN_COVERAGE] = "short_coverage"
    why[~np.isfinite(t.average)] = "no_result"
    why[t.faulty] = "sensor_faulty"
    return why


def _excluded(g: ShiftTable, why: npt.NDArray[np.object_]) -> list[dict[str, Any]]:
    out = np.flatnonzero(why != "")
    return [
        {"shift": str(g.shift[i]), "device": str(g.device[i]), "worker": str(g.worker[i]),
         "coverage": float(g.coverage[i]), "reason": str(why[i])}
        for i in out
    ]  # fmt: skip


def seg_rows(t: ShiftTable, seg: SegSpec, loq: float | None = None) -> list[dict[str, Any]]:
    """EN 689 per SEG; the OELV is the lowest long-term limit in force, `loq` the hazard's LOQ.

    A shift's result is its average / coverage (twa8 or, under a shift-average limit, the shift
    average; either way scaled to the measured time) and it enters the
    test only with coverage >= EN689_MIN_COVERAGE; the others are counted and listed by reason.
    """
    rows: list[dict[str, Any]] = []
    for label, idx in groups(seg.labels(t)):
        g = t.take(idx)
        if not np.isfinite(g.oelv).any():
            continue
        why = en689_exclusion(g)
        ok = why == ""
        oelv = float(g.oelv[np.isfinite(g.oelv)].min())
        results = g.average[ok] / g.coverage[ok]
        result = assess(results.tolist(), oelv, loq)
        excluded = _excluded(g, why)
        rows.append({
            "seg": str(label), "label": str(seg.labels(g.take(np.arange(1)), short=True)[0]),
            "zones": sorted(set(g.zone)), "shifts": int(ok.sum()), "shifts_total": len(g),
            "workers": len({w for w in g.worker[ok] if w}),
            "area_monitor_shifts": int(np.count_nonzero(g.worker[ok] == "")),
            "excluded_by_reason": {r: sum(1 for e in excluded if e["reason"] == r) for r in EXCLUSION_REASONS},
            "excluded_shifts": excluded,
            **{k: (str(v) if k in ("method", "verdict") else v) for k, v in result.as_dict().items()},
        })  # fmt: skip
    return rows


#: Why a shift does not enter the EN 689 test, in the order they are checked.
EXCLUSION_REASONS = ("sensor_faulty", "no_result", "short_coverage")


def hazard_summary(t: ShiftTable, seg: SegSpec, loq: float | None = None) -> dict[str, Any]:
    """Everything the report says about one site and hazard in one month.

    `judged` is False when no limit value applies to any of its shifts (no shift limit in the
    profile): the report then says so in a warning colour and never colours its shifts green.
    """
    hazard = str(t.hazard[0])
    metric = str(t.metric[0])
    limit, action = _mode_or_nan(t.limit), _mode_or_nan(t.action)
    personal = t.take(t.valid & (t.worker != ""))
    return {
        "hazard": hazard,
        "metric": metric,
        "unit": unit_of(hazard, metric),
        "profiles": sorted({str(p) for p in t.profile if p}),
        "judged": math.isfinite(limit),
        "loq": loq,
        "limit": limit if math.isfinite(limit) else None,
        "action": action if math.isfinite(action) else None,
        **figures(t),
        "histogram": histogram(t, limit, action),
        "zones": group_table(t, t.zone, "zone"),
        "workers": group_table(personal, personal.worker, "worker"),
        "segs": seg_rows(t, seg, loq),
    }


def verdict_counts(segs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {str(v): sum(1 for s in segs if s["verdict"] == v) for v in Verdict}
