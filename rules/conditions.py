"""Rule evaluations per reading, reduced to one row per (channel, rule) (rules/results.py).

The row kept is the worst evaluation in the batch (highest severity, then latest), or the
latest when no tier is exceeded, so the alert stage sees both raises and the values that may
clear an alert.
"""

from __future__ import annotations

import numpy as np

from rules import exposure as ex
from rules.kernel import Seq
from rules.results import ConditionBatch
from rules.state import Q_DOSE, Q_ENERGY, Q_VALUE, ChannelState
from rules.tiers import JUDGED_RULES, SLOT, TierTable
from rules.types import F64, I64, RULE_CODE, RuleKind

B = np.ndarray


def conditions_for(
    tiers: TierTable,
    st: ChannelState,
    s: Seq,
    *,
    stel: F64 | None,
    running: F64 | None,
    shift: B | None,
    only_level: bool,
) -> ConditionBatch:
    """Evaluate every rule with tiers for each reading's channel; keep one row per (channel, rule)."""
    g = st["group"][s.ch]
    parts = []
    for rule in JUDGED_RULES[:1] if only_level else JUDGED_RULES:
        rows = np.flatnonzero(tiers.has[g, SLOT[rule]])
        if rule in (RuleKind.TWA, RuleKind.LEX8H, RuleKind.DOSE) and shift is not None:
            rows = rows[shift[rows]]  # shift-to-date figures exist only inside shifts
        if rows.size:
            parts.append(
                _judge_rule(tiers, rule, s, g, rows, _figure(tiers, rule, s, g, rows, stel, running))
            )
    return merge_conditions(parts)


def _figure(
    tiers: TierTable, rule: RuleKind, s: Seq, g: I64, rows: I64, stel: F64 | None, running: F64 | None
) -> F64:
    """The value each rule compares: level, STEL, TWA8, LEX,8h, or dose per tier."""
    if rule is RuleKind.LEVEL:
        return s.v[rows]
    if rule is RuleKind.STEL:
        assert stel is not None
        return stel[rows]
    assert running is not None
    if rule is RuleKind.TWA:
        return ex.twa8(running[rows, Q_VALUE])
    if rule is RuleKind.LEX8H:
        return ex.lex8h(running[rows, Q_ENERGY])
    slot = tiers.dose_slot[g[rows]]  # (n, K): which dose integral each tier compares
    return ex.dose_pct(np.take_along_axis(running[rows], Q_DOSE + slot, axis=1))


def _judge_rule(tiers: TierTable, rule: RuleKind, s: Seq, g: I64, rows: I64, fig: F64) -> ConditionBatch:
    j = tiers.judge(rule, g[rows], fig)
    value = fig if fig.ndim == 1 else np.take_along_axis(fig, np.maximum(j.tier, 0)[:, None], axis=1)[:, 0]
    n = rows.shape[0]
    ch = s.ch[rows]
    starts = np.flatnonzero(np.append(True, ch[1:] != ch[:-1]))
    key = (j.severity.astype(np.int64) + 1) * (n + 1) + np.arange(n)
    best = np.maximum.reduceat(key, starts) % (n + 1)
    return ConditionBatch(
        ch[best],
        np.full(best.shape[0], RULE_CODE[rule], np.int8),
        j.severity[best],
        value[best].astype(np.float64),
        j.threshold[best].astype(np.float64),
        s.t[rows][best],
        j.limit[best],
    )


def merge_conditions(parts: list[ConditionBatch]) -> ConditionBatch:
    """Concatenate, keeping one row per (channel, rule): highest severity, then latest."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return ConditionBatch.empty()
    if len(parts) == 1:
        return parts[0]
    cols = [np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS]
    c = ConditionBatch(*cols)
    order = np.lexsort((c.t_s, c.severity, c.rule, c.channel))
    ch, rule = c.channel[order], c.rule[order]
    last = np.append((ch[1:] != ch[:-1]) | (rule[1:] != rule[:-1]), True)
    keep = order[last]
    keep = keep[np.lexsort((c.rule[keep], c.channel[keep]))]
    return ConditionBatch(*(getattr(c, f)[keep] for f in _FIELDS))


_FIELDS = ("channel", "rule", "severity", "value", "threshold", "t_s", "limit")
