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
from rules.state import Q_DOSE, Q_PRIMARY, ChannelState
from rules.tiers import SLOT, TierTable
from rules.types import F64, I64, RULE_CODE, RuleKind

B = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(slots=True)
class Figures:
    """What the rules compare, per row of a sequence (None: not computed for this sequence)."""

    stel: F64 | None = None
    running: F64 | None = None  # (n, NQ) shift-to-date integrals
    run_ends: I64 | None = None  # last row of each run (monotone rules are judged there)
    level_rows: B | None = None  # rows whose level is judged (default: all)
    emit_rows: B | None = None  # rows whose other rules are judged (default: all)


def conditions_for(tiers: TierTable, meta: ChannelState, s: Seq, f: Figures) -> ConditionBatch:
    """Evaluate every rule that has tiers for each reading's channel; one row per (channel, rule)."""
    g = meta["group"][s.ch]
    parts = [_rule(tiers, RuleKind.LEVEL, s, g, _rows(tiers, RuleKind.LEVEL, g, f.level_rows), s.v)]
    if f.stel is not None:
        rows = _rows(tiers, RuleKind.STEL, g, f.emit_rows)
        parts.append(_rule(tiers, RuleKind.STEL, s, g, rows[np.isfinite(f.stel[rows])], f.stel))
    if f.running is not None and f.run_ends is not None:
        rows = _rows(tiers, RuleKind.TWA, g, f.emit_rows)
        parts.append(_rule(tiers, RuleKind.TWA, s, g, rows[s.shift[rows]], ex.twa8(f.running[:, Q_PRIMARY])))
        ends = f.run_ends[s.shift[f.run_ends]]
        if f.emit_rows is not None:
            ends = ends[f.emit_rows[ends]]
        for rule in (RuleKind.LEX8H, RuleKind.DOSE):
            rows = ends[tiers.has[g[ends], SLOT[rule]]]
            if rows.size:
                parts.append(_per_tier(tiers, rule, s, g, rows, _monotone_figure(tiers, rule, g, rows, f.running)))
    return concat_conditions(parts)


def _rows(tiers: TierTable, rule: RuleKind, g: I64, mask: B | None) -> I64:
    ok = tiers.has[g, SLOT[rule]]
    return np.flatnonzero(ok if mask is None else ok & mask)


def _monotone_figure(tiers: TierTable, rule: RuleKind, g: I64, rows: I64, running: F64) -> F64:
    """LEX,8h (one column) or dose % per tier (which dose integral each tier compares)."""
    if rule is RuleKind.LEX8H:
        return ex.lex8h(running[rows, Q_PRIMARY])
    slot = tiers.dose_slot[g[rows]]
    return ex.dose_pct(np.take_along_axis(running[rows], Q_DOSE + slot, axis=1))


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
