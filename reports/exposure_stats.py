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


def seg_rows(t: ShiftTable, seg: SegSpec) -> list[dict[str, Any]]:
    """EN 689 per SEG on the valid shift TWAs; the OELV is the lowest `twa8` limit in force."""
    rows: list[dict[str, Any]] = []
    for label, idx in groups(seg.labels(t)):
        g = t.take(idx)
        ok = g.valid & np.isfinite(g.oelv) & np.isfinite(g.twa8)
        if not ok.any():
            continue
        oelv = float(g.oelv[ok].min())
        result = assess(g.twa8[ok].tolist(), oelv)
        rows.append({
            "seg": str(label), "label": str(seg.labels(g.take(np.arange(1)), short=True)[0]),
            "zones": sorted(set(g.zone)), "shifts": int(ok.sum()),
            "workers": len({w for w in g.worker[ok] if w}),
            "area_monitor_shifts": int(np.count_nonzero(g.worker[ok] == "")),
            **{k: (str(v) if k in ("method", "verdict") else v) for k, v in result.as_dict().items()},
        })  # fmt: skip
    return rows


def hazard_summary(t: ShiftTable, seg: SegSpec) -> dict[str, Any]:
    """Everything the report says about one site and hazard in one month."""
    hazard = str(t.hazard[0])
    metric = str(t.metric[0])
    limit, action = _mode_or_nan(t.limit), _mode_or_nan(t.action)
    personal = t.take(t.valid & (t.worker != ""))
    return {
        "hazard": hazard,
        "metric": metric,
        "unit": unit_of(hazard, metric),
        "limit": limit if math.isfinite(limit) else None,
        "action": action if math.isfinite(action) else None,
        **figures(t),
        "histogram": histogram(t, limit, action),
        "zones": group_table(t, t.zone, "zone"),
        "workers": group_table(personal, personal.worker, "worker"),
        "segs": seg_rows(t, seg),
    }


def verdict_counts(segs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    return {str(v): sum(1 for s in segs if s["verdict"] == v) for v in Verdict}
