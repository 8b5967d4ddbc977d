"""Limit tiers compiled into padded arrays, and their vectorized evaluation.

A *group* is one (profile, hazard) pair; every channel belongs to one. For each group and rule
the tiers sit in arrays of width `k`, mildest first, so that judging a whole batch is one
comparison `sign·value >= sign·threshold` and one `argmax`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rules.errors import ConfigError
from rules.profiles import ProfileBook
from rules.results import Averaging, Direction
from rules.types import F64, I8, I32, I64, RULE_CODE, Hazard, RuleKind

#: Rules the engine computes per reading, in the order of the tier table's rule axis.
JUDGED_RULES = (RuleKind.LEVEL, RuleKind.STEL, RuleKind.TWA, RuleKind.LEX8H, RuleKind.DOSE, RuleKind.TWA_PROJECTED)
SLOT = {r: i for i, r in enumerate(JUDGED_RULES)}
HAZARDS = tuple(Hazard)
#: Dose integrals kept per noise channel (the profile's own threshold plus one more tier floor).
DOSE_SLOTS = 2


@dataclass(frozen=True, slots=True)
class Judgement:
    """Per evaluated row: tier index exceeded (-1: none), severity code, limit id, threshold."""

    severity: I8
    limit: I32
    threshold: F64
    tier: I64


@dataclass(slots=True)
class TierTable:
    sthr: F64  # (G, R, K) sign·threshold; +inf pads
    sign: F64  # (G, R, K)
    thr: F64  # (G, R, K) threshold as written (NaN pads)
    sev: I8  # (G, R, K) severity code, -1 pads
    lid: I32  # (G, R, K) limit id, -1 pads
    dose_slot: I64  # (G, K) which dose integral a dose tier compares
    has: np.ndarray  # (G, R) bool
    dose_floor: F64  # (P, DOSE_SLOTS) integration thresholds per profile (dBA)
    noise_param: F64  # (P, 2) criterion_db, exchange_db per profile
    profile_index: dict[str, int]
    mixed: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))  # (G, R) both directions
    shift_avg: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (G,) twa divides by shift length

    @staticmethod
    def compile(book: ProfileBook) -> TierTable:
        names = book.names()
        n_g, n_r = len(names) * len(HAZARDS), len(JUDGED_RULES)
        k = max([1, *(len(p.tiers(h, r)) for p in book.profiles.values() for h in HAZARDS for r in JUDGED_RULES)])
        t = TierTable(
            np.full((n_g, n_r, k), np.inf), np.ones((n_g, n_r, k)), np.full((n_g, n_r, k), np.nan),
            np.full((n_g, n_r, k), -1, np.int8), np.full((n_g, n_r, k), -1, np.int32),
            np.zeros((n_g, k), np.int64), np.zeros((n_g, n_r), bool),
            np.zeros((len(names), DOSE_SLOTS)), np.zeros((len(names), 2)),
            {n: i for i, n in enumerate(names)},
        )  # fmt: skip
        for p_i, name in enumerate(names):
            t._fill_profile(book, p_i, name)
        t.mixed = ((t.sign != t.sign[..., :1]) & (t.lid >= 0)).any(axis=2)
        lid = t.lid[:, SLOT[RuleKind.TWA], 0]
        t.shift_avg = np.array([i >= 0 and book.limits[i].averaging is Averaging.SHIFT for i in lid.tolist()], bool)
        return t

    def _fill_profile(self, book: ProfileBook, p_i: int, name: str) -> None:
        prof = book.profile(name)
        floors = [prof.noise.threshold_db]
        for h_i, hazard in enumerate(HAZARDS):
            g = p_i * len(HAZARDS) + h_i
            for r in JUDGED_RULES:
                for k, lid in enumerate(prof.tiers(hazard, r)):
                    lim = book.limits[lid]
                    s = 1.0 if lim.direction is Direction.ABOVE else -1.0
                    self.sthr[g, SLOT[r], k], self.sign[g, SLOT[r], k] = s * lim.threshold, s
                    self.thr[g, SLOT[r], k], self.lid[g, SLOT[r], k] = lim.threshold, lid
                    self.sev[g, SLOT[r], k] = lim.severity.rank
                    self.has[g, SLOT[r]] = True
                    if r is RuleKind.DOSE and lim.integration_db is not None:
                        if lim.integration_db not in floors:
                            floors.append(lim.integration_db)
                        self.dose_slot[g, k] = floors.index(lim.integration_db)
        if len(floors) > DOSE_SLOTS:
            raise ConfigError(
                f"profile {name!r}: dose tiers use {len(floors)} integration thresholds; at most {DOSE_SLOTS}"
            )
        self.dose_floor[p_i] = (floors + floors)[:DOSE_SLOTS]
        self.noise_param[p_i] = (prof.noise.criterion_db, prof.noise.exchange_db)

    def group(self, profile: str, hazard: Hazard) -> int:
        return self.profile_index[profile] * len(HAZARDS) + HAZARDS.index(hazard)

    def judge(self, rule: RuleKind, g: I64, figure: F64) -> Judgement:
        """Tiers of `rule` exceeded by `figure` (shape (n,) or (n, K) for per-tier figures)."""
        r = SLOT[rule]
        sthr, sign = self.sthr[g, r], self.sign[g, r]
        fig = figure if figure.ndim == 2 else figure[:, None]
        exceeded = sign * fig >= sthr
        k = np.where(exceeded, np.arange(sthr.shape[1]), -1).max(axis=1)
        hit = k >= 0
        kk = np.maximum(k, 0)
        rows = np.arange(g.shape[0])
        return Judgement(
            np.where(hit, self.sev[g, r][rows, kk], -1).astype(np.int8),
            np.where(hit, self.lid[g, r][rows, kk], -1).astype(np.int32),
            self.thr[g, r][rows, kk],
            k.astype(np.int64),
        )

    @staticmethod
    def rule_code(rule: RuleKind) -> int:
        return RULE_CODE[rule]
