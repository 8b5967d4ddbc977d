"""Mixture index Em = Σ Ci/Li over the gases a profile groups, per device (and wearer).

Source: 29 CFR 1910.1000(d)(2)(i) ("Em shall not exceed unity"); ACGIH TLV Appendix E applies
the same sum to substances acting on the same organ, keeping bases consistent (TWA with TWA,
STEL with STEL). Ci is each gas's shift-to-date TWA8 (basis `twa`) or latest STEL (basis
`stel`) on the same device; Li the gas's own limit in the profile. A device needs at least two
of the grouped gases for an index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rules import exposure as ex
from rules.profiles import Mixture
from rules.results import ConditionBatch
from rules.state import Q_PRIMARY
from rules.types import F64, I64, RULE_CODE, RuleKind

if TYPE_CHECKING:
    from rules.engine import ExposureEngine


class MixtureIndex:
    """Membership table (entry → group, channel, 1/Li, basis), rebuilt when channels appear."""

    def __init__(self, engine: ExposureEngine) -> None:
        self.e = engine
        self.known = 0
        self.members: dict[tuple[int, str, str, str, str | None], list[tuple[int, int, float]]] = {}
        self.group = np.empty(0, np.int64)
        self.channel = np.empty(0, np.int64)
        self.inv_limit = np.empty(0)
        self.stel_basis = np.empty(0, bool)
        self.anchor = np.empty(0, np.int64)
        self.limit = np.empty(0, np.int32)

    def refresh(self) -> None:
        reg = self.e.registry
        if len(reg) == self.known:
            return
        for c in range(self.known, len(reg)):
            key = reg[c]
            for mix in self.e.book.profile(self.e.profile_of(key.site)).mixtures:
                if key.hazard in mix.hazards:
                    order = mix.hazards.index(key.hazard)
                    li = self.e.book.limits[mix.member_limits[order]].threshold
                    gk = (mix.limit, key.site, key.zone, key.device, key.worker)
                    self.members.setdefault(gk, []).append((order, c, 1.0 / li))
        self.known = len(reg)
        self._tables()

    def _tables(self) -> None:
        groups = [(gk, sorted(m)) for gk, m in self.members.items() if len(m) >= 2]
        mixtures = {m.limit: m for p in self.e.book.profiles.values() for m in p.mixtures}
        self.group = np.array([g for g, (_, m) in enumerate(groups) for _ in m], np.int64)
        self.channel = np.array([c for _, m in groups for _, c, _ in m], np.int64)
        self.inv_limit = np.array([inv for _, m in groups for _, _, inv in m], np.float64)
        self.stel_basis = np.array([_is_stel(mixtures[gk[0]]) for gk, m in groups for _ in m], bool)
        self.anchor = np.array([m[0][1] for _, m in groups], np.int64)
        self.limit = np.array([gk[0] for gk, _ in groups], np.int32)

    def conditions(self, touched: I64) -> ConditionBatch:
        """Index rows for every group with a member touched by this batch (anchor: first gas)."""
        self.refresh()
        if self.group.size == 0 or touched.size == 0:
            return ConditionBatch.empty()
        live = self.e.live
        hit = np.zeros(live.size, bool)
        hit[touched] = True
        groups = np.unique(self.group[hit[self.channel]])
        if groups.size == 0:
            return ConditionBatch.empty()
        sel = np.flatnonzero(np.isin(self.group, groups))
        fig = self._figures(self.channel[sel], self.stel_basis[sel])
        index = np.bincount(self.group[sel], fig * self.inv_limit[sel], minlength=self.anchor.shape[0])[groups]
        t = np.full(self.anchor.shape[0], -np.inf)
        np.fmax.at(t, self.group[sel], live["t_last"][self.channel[sel]])
        limits = [self.e.book.limits[int(i)] for i in self.limit[groups]]
        thr = np.array([lim.threshold for lim in limits])
        sev = np.where(index >= thr, [lim.severity.rank for lim in limits], -1).astype(np.int8)
        return ConditionBatch(
            self.anchor[groups], np.full(groups.size, RULE_CODE[RuleKind.MIXTURE], np.int8), sev,
            index.astype(np.float64), thr, t[groups], np.where(sev >= 0, self.limit[groups], -1).astype(np.int32),
        )  # fmt: skip

    def _figures(self, ch: I64, stel_basis: np.ndarray) -> F64:
        """Ci: shift-to-date TWA8 (0 outside shifts) or the STEL at the latest reading."""
        live = self.e.live
        twa = np.where(live["has"][ch] & live["seg_shift"][ch], ex.twa8(live["acc"][ch, Q_PRIMARY]), 0.0)
        stel = np.where(live["has"][ch], np.maximum(live["stel_last"][ch], 0.0), 0.0)
        out: F64 = np.where(stel_basis, stel, twa)
        return out


def _is_stel(mix: Mixture) -> bool:
    return mix.basis is RuleKind.STEL
