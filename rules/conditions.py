"""Rule evaluations per reading, reduced to one row per (channel, rule) (rules/results.py).

The row kept is the worst evaluation in the batch (highest severity, then latest), or the
latest when no tier is exceeded, so the alert stage sees both raises and the values that may
clear an alert. Rules whose tiers all point one way are judged at each channel's extreme value
first, then the latest reading reaching that tier is found — two passes over the rows instead
of one per tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rules import exposure as ex
from rules.kernel import Seq
from rules.results import ConditionBatch
from rules.state import Q_COVERED, Q_DOSE, Q_PRIMARY, ChannelState
from rules.tiers import SLOT, TierTable
from rules.types import F64, I64, RULE_CODE, RuleKind

B = np.ndarray[Any, np.dtype[np.bool_]]
#: Data a shift needs before its TWA is projected (s): one STEL window, so one early burst
#: at shift start does not raise a projection alone.
MIN_PROJECTION_S = 900.0


@dataclass(slots=True)
class Figures:
    """What the rules compare (None: not computed for this sequence).

    TWA, LEX,8h and dose only grow within a shift, so the worst of a batch is the latest: they
    are judged at each run's last reading, from the run's shift-to-date integrals.
    """

    stel: F64 | None = None
    sums: F64 | None = None  # (R, NQ) shift-to-date integrals at each run's last reading
    run_last: I64 | None = None  # row of each run's last reading
    level_rows: B | None = None  # rows whose level is judged (default: all)
    emit_rows: B | None = None  # rows whose other rules are judged (default: all)


def conditions_for(tiers: TierTable, meta: ChannelState, s: Seq, f: Figures) -> ConditionBatch:
    """Evaluate every rule that has tiers for each reading's channel; one row per (channel, rule)."""
    g = meta["group"][s.ch]
    parts = [_rule(tiers, RuleKind.LEVEL, s, g, _rows(tiers, RuleKind.LEVEL, g, f.level_rows), s.v)]
    if f.stel is not None:
        rows = _rows(tiers, RuleKind.STEL, g, f.emit_rows)
        parts.append(_rule(tiers, RuleKind.STEL, s, g, rows[np.isfinite(f.stel[rows])], f.stel))
    if f.sums is not None and f.run_last is not None:
        keep = s.shift[f.run_last] if f.emit_rows is None else s.shift[f.run_last] & f.emit_rows[f.run_last]
        runs = np.flatnonzero(keep)
        for rule in (RuleKind.TWA, RuleKind.LEX8H, RuleKind.DOSE, RuleKind.TWA_PROJECTED):
            sel = runs[tiers.has[g[f.run_last[runs]], SLOT[rule]]]
            if rule is RuleKind.TWA_PROJECTED:
                sel = sel[f.sums[sel, Q_COVERED] >= MIN_PROJECTION_S]
            if sel.size:
                rows = f.run_last[sel]
                fig = _cumulative(
                    tiers, rule, g[rows], f.sums[sel], s.seg_e[rows] - s.t[rows], s.seg_e[rows] - s.seg_s[rows]
                )
                parts.append(_per_tier(tiers, rule, s, g, rows, fig))
    return concat_conditions(parts)


def _rows(tiers: TierTable, rule: RuleKind, g: I64, mask: B | None) -> I64:
    ok = tiers.has[g, SLOT[rule]]
    return np.flatnonzero(ok if mask is None else ok & mask)


def _cumulative(tiers: TierTable, rule: RuleKind, g: I64, sums: F64, remaining_s: F64, shift_s: F64) -> F64:
    """TWA, projected TWA, LEX,8h, or dose % per tier (which dose integral each tier compares).

    TWA = ∫C dt / 8 h, or ∫C dt / shift length where the limit is a shift average (30 CFR 70.100).
    Projected TWA = (∫C dt + C̄·T_left) / the same divisor, with C̄ = ∫C dt / covered time of the
    shift so far and T_left the time to the shift's end: where the average ends if nothing changes.
    """
    if rule in (RuleKind.TWA, RuleKind.TWA_PROJECTED):
        total = sums[:, Q_PRIMARY]
        if rule is RuleKind.TWA_PROJECTED:
            total = total + sums[:, Q_PRIMARY] / sums[:, Q_COVERED] * np.maximum(remaining_s, 0.0)
        per_shift = tiers.shift_avg[g]
        if not per_shift.any():
            return ex.twa8(total)
        return np.where(per_shift, ex.shift_average(total, np.maximum(shift_s, 1.0)), ex.twa8(total))
    if rule is RuleKind.LEX8H:
        return ex.lex8h(sums[:, Q_PRIMARY])
    return ex.dose_pct(np.take_along_axis(sums, Q_DOSE + tiers.dose_slot[g], axis=1))


def _rule(tiers: TierTable, rule: RuleKind, s: Seq, g: I64, rows: I64, fig: F64) -> ConditionBatch:
    if rows.size == 0:
        return ConditionBatch.empty()
    if tiers.mixed[g[rows], SLOT[rule]].any():
        return _per_tier(tiers, rule, s, g, rows, fig[rows])
    return _by_extreme(tiers, rule, s, g, rows, fig[rows])


def _by_extreme(tiers: TierTable, rule: RuleKind, s: Seq, g: I64, rows: I64, fig: F64) -> ConditionBatch:
    """Worst tier from each channel's extreme value; then the latest row that reaches it."""
    r = SLOT[rule]
    gr = g[rows]
    sfig = tiers.sign[gr, r, 0] * fig
    ch = s.ch[rows]
    starts = np.flatnonzero(np.append(True, ch[1:] != ch[:-1]))
    ends = np.append(starts[1:], rows.shape[0])
    worst = tiers.judge(rule, gr[starts], tiers.sign[gr[starts], r, 0] * np.maximum.reduceat(sfig, starts))
    hit = worst.tier >= 0
    bar = np.where(hit, tiers.sthr[gr[starts], r, np.maximum(worst.tier, 0)], np.inf)
    reach = sfig >= np.repeat(bar, ends - starts)
    pick = np.maximum.reduceat(np.where(reach, np.arange(rows.shape[0]), -1), starts)
    pick = np.where(hit, pick, ends - 1)
    return _batch(rule, ch[pick], worst.severity, fig[pick], worst.threshold, s.t[rows][pick], worst.limit)


def _per_tier(tiers: TierTable, rule: RuleKind, s: Seq, g: I64, rows: I64, fig: F64) -> ConditionBatch:
    """Judge every row against every tier (figures per tier allowed); keep worst, then latest."""
    j = tiers.judge(rule, g[rows], fig)
    value = fig if fig.ndim == 1 else np.take_along_axis(fig, np.maximum(j.tier, 0)[:, None], axis=1)[:, 0]
    n = rows.shape[0]
    ch = s.ch[rows]
    starts = np.flatnonzero(np.append(True, ch[1:] != ch[:-1]))
    key = (j.severity.astype(np.int64) + 1) * (n + 1) + np.arange(n)
    best = np.maximum.reduceat(key, starts) % (n + 1)
    return _batch(rule, ch[best], j.severity[best], value[best], j.threshold[best], s.t[rows][best], j.limit[best])


def _batch(rule: RuleKind, ch: I64, sev: Any, value: F64, thr: F64, t: F64, lid: Any) -> ConditionBatch:
    return ConditionBatch(
        ch.astype(np.int64), np.full(ch.shape[0], RULE_CODE[rule], np.int8), sev.astype(np.int8),
        value.astype(np.float64), thr.astype(np.float64), t.astype(np.float64), lid.astype(np.int32),
    )  # fmt: skip


def concat_conditions(parts: list[ConditionBatch]) -> ConditionBatch:
    """Concatenate parts that share no (channel, rule)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return ConditionBatch.empty()
    if len(parts) == 1:
        return parts[0]
    return ConditionBatch(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


def merge_conditions(parts: list[ConditionBatch]) -> ConditionBatch:
    """Concatenate, keeping one row per (channel, rule): highest severity, then latest."""
    c = concat_conditions(parts)
    if len(parts) < 2 or len(c) == 0:
        return c
    order = np.lexsort((c.t_s, c.severity, c.rule, c.channel))
    ch, rule = c.channel[order], c.rule[order]
    keep = order[np.append((ch[1:] != ch[:-1]) | (rule[1:] != rule[:-1]), True)]
    return ConditionBatch(*(getattr(c, f)[keep] for f in _FIELDS))


_FIELDS = ("channel", "rule", "severity", "value", "threshold", "t_s", "limit")
