"""Columnar per-channel state: one array per quantity, indexed by channel id, grown by doubling.

New channels are added without rebuilding anything: `ensure(n)` only reallocates when the
capacity runs out (amortized O(1) per channel), and arrays keep their contents.

Three kinds of fields:
- META: who the channel is (site, limit group, profile, sound or not), set once.
- TRACK: the exposure state after the channel's readings so far. The engine keeps it twice:
  live, and a *checkpoint* that lags behind by the readings still in the raw ring, so late
  readings can be replayed exactly (docs/exposure.md, "Late readings").
- LIVE: only in the live state: STEL bins, the raw ring, closure flags, counters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Quantities integrated over held readings, one column each in `acc`.
Q_PRIMARY = 0  # ∫ C dt for gases and dusts; ∫ 10^(L/10) dt for sound levels
Q_DOSE = 1  # ∫ 2^((L - criterion)/exchange) dt over L >= the profile's threshold (reported dose)
Q_DOSE2 = 2  # the same over L >= a dose tier's other integration floor
Q_COVERED = 3  # seconds with data
NQ = 4

#: Width of the STEL history bins (s): the only approximation in the engine (docs/exposure.md).
BIN_S = 10.0
#: STEL window (s) the bins must cover behind the oldest replayable reading.
_WINDOW_S = 900.0

Spec = dict[str, tuple[Any, tuple[int, ...], Any]]


def bins_for(reorder_s: float) -> int:
    """Bins for STEL history: a replay may start at the last reading evicted from the ring, up to
    `reorder_s` + 900 s back (older ones are followed by a silence of 900 s or more, when no bin
    is needed), and its first STEL looks 900 s further back."""
    return math.ceil((reorder_s + 2 * _WINDOW_S) / BIN_S) + 3


def meta_spec() -> Spec:
    return {
        "site": (np.int32, (), -1),
        "group": (np.int64, (), 0),
        "profile": (np.int64, (), 0),
        "sound": (np.bool_, (), False),
    }


def track_spec() -> Spec:
    return {
        # the open (last) reading, and X(t_last) = ∫ C dt over the channel's life (STEL integral)
        "has": (np.bool_, (), False),
        "t_last": (np.float64, (), np.nan),
        "v_last": (np.float64, (), np.nan),
        "x_last": (np.float64, (), 0.0),
        # current segment (a shift, or off-shift time) and its accumulators
        "seg_start": (np.float64, (), np.nan),
        "seg_end": (np.float64, (), np.nan),
        "seg_shift": (np.bool_, (), False),
        "acc": (np.float64, (NQ,), 0.0),
        "peak": (np.float64, (), -np.inf),
        "stel_max": (np.float64, (), -np.inf),
        "silence_max": (np.float64, (), 0.0),
        "n": (np.int64, (), 0),
    }


def live_spec(ring: int, n_bins: int) -> Spec:
    return {
        "closed": (np.bool_, (), False),  # final record emitted for the current segment
        "dirty": (np.bool_, (), False),  # data added to that segment since
        "bins": (np.float64, (n_bins,), 0.0),  # X at the end of each STEL bin (ring by bin number)
        "ring_t": (np.float64, (ring,), np.nan),  # raw readings after the checkpoint
        "ring_v": (np.float64, (ring,), np.nan),
        "ring_stel": (np.float64, (ring,), -np.inf),
        "ring_n": (np.int64, (), 0),
        "ring_head": (np.int64, (), 0),
        "late": (np.int64, (), 0),  # readings too late to replay (judged as levels only)
    }


@dataclass(slots=True)
class ChannelState:
    arrays: dict[str, np.ndarray[Any, Any]]
    spec: Spec
    size: int = 0

    @staticmethod
    def empty(spec: Spec, capacity: int = 1024) -> ChannelState:
        arrays = {name: np.full((capacity, *shape), fill, dtype) for name, (dtype, shape, fill) in spec.items()}
        return ChannelState(arrays, spec, 0)

    @property
    def capacity(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def ensure(self, n: int) -> None:
        """Make room for channel ids < n (doubling), keeping every value."""
        old = self.capacity
        if n > old:
            cap = max(n, 2 * old)
            for name, (dtype, shape, fill) in self.spec.items():
                grown = np.full((cap, *shape), fill, dtype)
                grown[:old] = self.arrays[name]
                self.arrays[name] = grown
        self.size = max(self.size, n)

    def __getitem__(self, name: str) -> np.ndarray[Any, Any]:
        return self.arrays[name]

    def copy_rows(self, other: ChannelState, rows: np.ndarray[Any, Any], fields: Spec) -> None:
        """self[f][rows] = other[f][rows] for every field of `fields`."""
        for name in fields:
            self.arrays[name][rows] = other.arrays[name][rows]

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())
