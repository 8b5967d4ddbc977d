"""Shift exposure rows (store `exposure` records) → one columnar table the reports aggregate.

Only final records count (a shift still open has no final figure). Each row is judged on one
*primary metric* against the limits carried in its own `limits` dict (the profile in force
when the shift was computed): `twa8` for chemical agents and dust, and for noise `lex8h`
(EU, ISO 9612) or `dose_pct` (MSHA/OSHA) when the profile has such a limit. A `twa` limit that is
a shift average (`limit_shift_avg`, 30 CFR 70.100) judges `shift_avg` = ∫C dt / shift length:
the record's stored `shift_avg`, else twa8 × 8 h / the site's configured shift length.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from rules.types import SOUND_LEVEL_HAZARDS, Hazard

F64 = npt.NDArray[np.float64]
Obj = npt.NDArray[np.object_]
Bool = npt.NDArray[np.bool_]
Tiers = dict[tuple[str, str], float]

#: A shift figure counts only when data covered at least 2 h of the 8-h shift: EN 689:2018
#: asks for at least 2 h of sampling for an 8-h OELV (anchors.md §C1, [EN3]).
MIN_VALID_COVERAGE = 2.0 / 8.0
#: Limit-key metric names (after the tier prefix) → canonical metric.
METRIC_ALIASES: dict[str, str] = {
    "twa8": "twa8", "twa": "twa8", "stel15": "stel15", "stel15_max": "stel15", "stel": "stel15",
    "lex8h": "lex8h", "lex": "lex8h", "dose": "dose", "dose_pct": "dose", "shift_avg": "shift_avg",
}  # fmt: skip
#: Words in a limit key that make it an action level (alert tier), not the limit value.
ACTION_WORDS = frozenset({"action", "warning"})
#: Canonical metric → exposure row column holding its value.
METRIC_COLUMN: dict[str, str] = {
    "twa8": "twa8", "shift_avg": "shift_avg", "stel15": "stel15_max", "lex8h": "lex8h", "dose": "dose_pct",
}  # fmt: skip
#: Averages over a shift that a long-term limit (OELV) compares: EN 689 tests these.
AVERAGE_METRICS = ("shift_avg", "twa8")
#: Shift length the 8-h TWA divides by (SPEC §3: twa8 = ∫C dt / 8 h).
TWA_HOURS = 8.0
#: Metrics in order of preference for a row's primary figure.
PRIMARY_ORDER_SOUND = ("lex8h", "dose", "twa8")
PRIMARY_ORDER_OTHER = ("shift_avg", "twa8")
#: Metrics on a decibel scale (shares and histograms work, ratios and lognormal statistics do not).
DECIBEL_METRICS = frozenset({"lex8h"})
#: Hazards where EN 689 (inhalation of chemical agents) applies when a `twa8` limit exists.
EN689_EXCLUDED = SOUND_LEVEL_HAZARDS | {Hazard.O2}


def limit_tiers(limits: Mapping[str, float]) -> Tiers:
    """`{"limit_twa8": 20, "action_twa8": 10, ...}` → {("limit"|"action", metric): value}.

    Keys are `[limit_][<tier words>_]<metric>`; a key with the word "action" or "warning" is an
    action level (`action_twa8`, `limit_upper_action_lex8h`), any other key a limit value.
    When several keys give one tier of one metric (lower and upper action values), the lowest
    counts: it is the first one reached.
    """
    tiers: Tiers = {}
    for key, value in limits.items():
        parts = key.lower().split("_")
        metric = next(
            (METRIC_ALIASES[s] for i in range(len(parts)) if (s := "_".join(parts[i:])) in METRIC_ALIASES),
            None,
        )
        if metric is None or value is None or not math.isfinite(float(value)):
            continue
        tier = "action" if ACTION_WORDS.intersection(parts) else "limit"
        old = tiers.get((tier, metric))
        tiers[(tier, metric)] = float(value) if old is None else min(old, float(value))
    return tiers


@dataclass(frozen=True, slots=True)
class Judged:
    """How one limits dict judges a hazard's rows."""

    metric: str  # primary metric ("" when the profile has no shift limit for the hazard)
    limit: float  # NaN when none
    action: float  # NaN when none
    oelv: float  # long-term limit for EN 689: of `average` (NaN when EN 689 does not apply)
    stel_limit: float
    average: str = "twa8"  # the shift average the OELV compares: "twa8" or "shift_avg"


def judge(hazard: str, limits: Mapping[str, float], defaults: Mapping[tuple[str, str], float] | None = None) -> Judged:
    """The primary metric and thresholds of a record; `defaults` fill tiers the record lacks."""
    tiers = {**(defaults or {}), **limit_tiers(limits)}
    order = PRIMARY_ORDER_SOUND if hazard in SOUND_LEVEL_HAZARDS else PRIMARY_ORDER_OTHER
    metric = next((m for m in order if ("limit", m) in tiers), "")
    if not metric and hazard in SOUND_LEVEL_HAZARDS:
        metric = next((m for m in order if ("action", m) in tiers), "")
    metric = metric or ("twa8" if hazard not in SOUND_LEVEL_HAZARDS else "lex8h")
    nan = math.nan
    average = next((m for m in AVERAGE_METRICS if ("limit", m) in tiers), "twa8")
    oelv = tiers.get(("limit", average), nan) if hazard not in EN689_EXCLUDED else nan
    return Judged(
        metric,
        tiers.get(("limit", metric), nan),
        tiers.get(("action", metric), nan),
        oelv,
        tiers.get(("limit", "stel15"), nan),
        average,
    )


def pseudonym(worker: str, key: bytes) -> str:
    """Stable keyed pseudonym: "W-" + first 10 hex digits of HMAC-SHA256(key, worker id)."""
    return "W-" + hmac.new(key, worker.encode(), hashlib.sha256).hexdigest()[:10]


@dataclass(frozen=True, slots=True)
class ShiftTable:
    """Final shift exposures, one row per (channel, shift), as parallel arrays."""

    site: Obj
    zone: Obj
    device: Obj
    hazard: Obj
    worker: Obj  # pseudonym (or the id when pseudonymisation is off); "" for area monitors
    shift: Obj
    month: Obj  # "YYYY-MM" of the shift's date
    metric: Obj
    value: F64  # primary metric value
    limit: F64
    action: F64
    twa8: F64  # stored 8-h TWA (∫C dt / 8 h)
    average: F64  # the shift average the OELV compares: twa8, or the shift average (`Judged.average`)
    oelv: F64
    stel: F64
    stel_limit: F64
    coverage: F64
    faulty: Bool
    valid: Bool  # counted in statistics: not sensor-faulty and coverage >= MIN_VALID_COVERAGE
    profile: Obj  # limit profile the engine judged the shift with

    def __len__(self) -> int:
        return int(self.site.shape[0])

    def take(self, idx: npt.NDArray[np.intp] | Bool) -> ShiftTable:
        return ShiftTable(*(getattr(self, f)[idx] for f in self.__slots__))


def _f(v: Any) -> float:
    return math.nan if v is None else float(v)


def shift_average(row: Mapping[str, Any], hours: float) -> float:
    """∫C dt / shift length of a record: its stored `shift_avg`, else twa8 × 8 h / `hours`."""
    stored = row.get("shift_avg")
    if stored is not None:
        return float(stored)
    return _f(row.get("twa8")) * TWA_HOURS / hours


def _limits_of(row: Mapping[str, Any]) -> dict[str, float]:
    raw = row.get("limits") or {}
    return dict(orjson.loads(raw)) if isinstance(raw, str | bytes) else dict(raw)


class _Parser:
    """Caches the per-limits judgement and the per-worker pseudonym across rows."""

    def __init__(
        self, pseudonym_key: bytes | None, defaults: Mapping[tuple[str, str], Tiers], shift_hours: Mapping[str, float]
    ) -> None:
        self.key = pseudonym_key
        self.defaults = defaults
        self.shift_hours = shift_hours
        self.judged: dict[tuple[Any, ...], Judged] = {}
        self.names: dict[str, str] = {}

    def judge(self, row: Mapping[str, Any]) -> Judged:
        limits = row.get("limits") or {}
        ck = (row["hazard"], row.get("profile") or "", limits if isinstance(limits, str) else tuple(limits.items()))
        found = self.judged.get(ck)
        if found is None:
            hazard, profile = str(row["hazard"]), str(row.get("profile") or "")
            d = self.defaults.get((profile, hazard)) or self.defaults.get(("", hazard))
            found = self.judged[ck] = judge(hazard, _limits_of(row), d)
        return found

    def worker(self, worker: str | None) -> str:
        if not worker:
            return ""
        if self.key is None:
            return worker
        found = self.names.get(worker)
        if found is None:
            found = self.names[worker] = pseudonym(worker, self.key)
        return found


def _compact(p: _Parser, row: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the table needs of one row (the row dict itself is not kept: months are big)."""
    j = p.judge(row)
    twa8 = _f(row.get("twa8"))
    avg = twa8
    if "shift_avg" in (j.metric, j.average):
        hours = p.shift_hours.get(str(row.get("site") or ""), p.shift_hours.get("", TWA_HOURS))
        avg = shift_average(row, hours)
    value = avg if j.metric == "shift_avg" else _f(row.get(METRIC_COLUMN[j.metric]))
    return (
        j, value, twa8, _f(row.get("stel15_max")), _f(row.get("coverage")), bool(row.get("sensor_faulty")),
        str(row.get("profile") or ""), avg,
    )  # fmt: skip


def parse_exposures(
    rows: Iterable[Mapping[str, Any]],
    months: set[str] | None,
    pseudonym_key: bytes | None,
    defaults: Mapping[tuple[str, str], Tiers] | None = None,
    shift_hours: Mapping[str, float] | None = None,
) -> ShiftTable:
    """Final exposure rows (latest per channel and shift) of the given months → a ShiftTable.

    `pseudonym_key=None` keeps worker ids as stored; otherwise they become `pseudonym(id, key)`.
    `defaults` ({(profile, hazard): tiers}, profile "" for any) fill thresholds a record lacks.
    `shift_hours` ({site: hours}, site "" for any; default 8) is the configured shift length, used
    for a shift-average limit only when a record does not carry its own `shift_avg`.
    """
    p = _Parser(pseudonym_key, defaults or {}, shift_hours or {})
    latest: dict[tuple[str, ...], tuple[Any, ...]] = {}
    for row in rows:
        shift = row.get("shift") or ""
        if row.get("final") and (months is None or shift[:7] in months):
            g = row.get
            key = (g("site") or "", g("zone") or "", g("device") or "", g("hazard") or "", g("worker") or "", shift)
            latest[key] = _compact(p, row)
    keys, vals = list(latest), list(latest.values())
    judged: list[Judged] = [v[0] for v in vals]
    val, cov = np.array([v[1] for v in vals], np.float64), np.array([v[4] for v in vals], np.float64)
    faulty = np.array([v[5] for v in vals], np.bool_)

    def col(i: int) -> Obj:
        return np.array([k[i] for k in keys], dtype=object)

    def attr(name: str) -> F64:
        return np.array([getattr(j, name) for j in judged], np.float64)

    return ShiftTable(
        site=col(0), zone=col(1), device=col(2), hazard=col(3),
        worker=np.array([p.worker(k[4]) for k in keys], dtype=object),
        shift=col(5), month=np.array([k[5][:7] for k in keys], dtype=object),
        metric=np.array([j.metric for j in judged], dtype=object), value=val,
        limit=attr("limit"), action=attr("action"), twa8=np.array([v[2] for v in vals], np.float64),
        average=np.array([v[7] for v in vals], np.float64),
        oelv=attr("oelv"), stel=np.array([v[3] for v in vals], np.float64), stel_limit=attr("stel_limit"),
        coverage=cov, faulty=faulty,
        valid=~faulty & (np.nan_to_num(cov) >= MIN_VALID_COVERAGE) & np.isfinite(val),
        profile=np.array([v[6] for v in vals], dtype=object),
    )  # fmt: skip
