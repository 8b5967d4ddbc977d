"""Action levels and limits from the limit profile, for records that do not carry them.

The engine writes each exposure record with the *limit* tier of each rule (`limit_twa8` ...),
the values in force for that shift. Action levels (the `warning` tiers: EU noise lower/upper
exposure action values, a site's own TWA action level) come from the profile rows that
`rules.profiles.describe_limits` returns; the report fills a record's missing tiers from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reports.shifts import METRIC_ALIASES, Tiers
from rules.results import Averaging

#: Profile rule → shift metric it limits (point-in-time rules like `level` have none).
RULE_METRIC = {"twa": "twa8", "stel": "stel15", "lex8h": "lex8h", "dose": "dose"}
#: Severities that are action levels; alarm and critical tiers are limits.
ACTION_SEVERITIES = frozenset({"warning"})
#: `averaging` of a `twa` row that divides by the shift's length (`rules.results.Averaging.SHIFT`).
SHIFT_AVERAGING = Averaging.SHIFT.value


def _tier_of(row: Mapping[str, str]) -> tuple[str, str, float] | None:
    """(tier, metric, threshold) of one profile row, or None when it limits no shift metric."""
    metric = RULE_METRIC.get(row.get("rule", ""))
    if metric == "twa8" and row.get("averaging") == SHIFT_AVERAGING:
        metric = "shift_avg"  # Σ C·t / shift length (30 CFR 70.100), not / 8 h
    if metric is None or metric not in METRIC_ALIASES.values() or row.get("direction", "above") != "above":
        return None
    try:
        threshold = float(row["threshold"])
    except (KeyError, ValueError):
        return None
    tier = "action" if row.get("severity") in ACTION_SEVERITIES else "limit"
    return tier, metric, threshold


def profile_tiers(rows: Iterable[Mapping[str, str]]) -> dict[tuple[str, str], Tiers]:
    """{(profile or "", hazard): {(tier, metric): threshold}} from `describe_limits` rows.

    The mildest (lowest) threshold of each tier counts: the first action level reached, and the
    mildest alarm tier, which is what `rules.profiles.limit_tier` calls the limit. Rows without
    a "profile" key apply to every profile.
    """
    out: dict[tuple[str, str], Tiers] = {}
    for row in rows:
        found = _tier_of(row)
        if found is None:
            continue
        tier, metric, threshold = found
        tiers = out.setdefault((row.get("profile", ""), row.get("hazard", "")), {})
        old = tiers.get((tier, metric))
        tiers[(tier, metric)] = threshold if old is None else min(old, threshold)
    return out


def instant_levels(rows: Iterable[Mapping[str, str]], hazard: str, profiles: Iterable[str]) -> list[dict[str, Any]]:
    """The `level` tiers (reading by reading) of `hazard` in the given profiles, mildest first.

    A hazard with no shift limit may still be watched by these; the report says so next to
    "not judged". Rows without a "profile" key belong to every profile.
    """
    wanted = set(profiles)
    out = []
    for row in rows:
        if row.get("hazard") != hazard or row.get("rule") != "level":
            continue
        if "profile" in row and row["profile"] not in wanted:
            continue
        try:
            threshold = float(row["threshold"])
        except (KeyError, ValueError):
            continue
        out.append({"severity": row.get("severity", ""), "threshold": threshold,
                    "direction": row.get("direction", "above"), "unit": row.get("unit", "")})  # fmt: skip
    return sorted(out, key=lambda r: (_SEVERITY_ORDER.get(r["severity"], 9), r["threshold"]))


_SEVERITY_ORDER = {"warning": 0, "alarm": 1, "critical": 2}
