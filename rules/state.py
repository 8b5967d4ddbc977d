"""Columnar per-channel state: one array per quantity, indexed by channel id, grown by doubling.

New channels are added without rebuilding anything: `ensure(n)` only reallocates when the
capacity runs out (amortized O(1) per channel), and arrays keep their contents.

Three kinds of fields:
- META: who the channel is (site, limit group, profile, sound or not), set once.
- TRACK: the exposure state after the channel's readings so far. The engine keeps it three
  times: live, and two *checkpoints* copied from live every K readings; the raw ring holds the
  readings since the older one, so late readings can be replayed exactly (docs/exposure.md).
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
#: Fields stored time-major (slot, channel): channels reporting in step read and write the same
#: slot row, so a batch touches contiguous memory instead of one cache line per channel.
TIME_MAJOR = frozenset({"bins", "ring_t", "ring_v"})


def bins_for(reorder_s: float) -> int:
    """Bins for STEL history: a replay may start at the last reading evicted from the ring, up to
    `reorder_s` + 900 s back (older ones are followed by a silence of 900 s or more, when no bin
    is needed), and its first STEL looks 900 s further back."""
    return 1 << math.ceil(math.log2(math.ceil((reorder_s + 2 * _WINDOW_S) / BIN_S) + 3))


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
        "stel_last": (np.float64, (), -np.inf),  # STEL at the open reading
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


def ring_size(every: int) -> int:
    """Ring slots for checkpoints every `every` readings: two periods, rounded to a power of two."""
    return 1 << math.ceil(math.log2(2 * max(every, 1)))


def live_spec(ring: int, n_bins: int) -> Spec:
    return {
        "closed": (np.bool_, (), False),  # final record emitted for the current segment
        "dirty": (np.bool_, (), False),  # data added to that segment since
        "bins": (np.float64, (n_bins,), 0.0),  # X at the end of each STEL bin (ring by bin number)
        "ring_t": (np.float64, (ring,), np.nan),  # raw readings, slot = number & (ring - 1)
        "ring_v": (np.float64, (ring,), np.nan),
        "ring_total": (np.int64, (), 0),  # readings ever pushed (the next one's number)
        "mark1": (np.int64, (), 0),  # reading number at the older checkpoint
        "mark2": (np.int64, (), 0),  # ... and at the newer one
        "late": (np.int64, (), 0),  # readings too late to replay (judged as levels only)
    }


def _alloc(name: str, cap: int, shape: tuple[int, ...], fill: Any, dtype: Any) -> np.ndarray[Any, Any]:
    if name in TIME_MAJOR:
        return np.full((*shape, cap), fill, dtype).T
    return np.full((cap, *shape), fill, dtype)


#: Capacity from which per-channel tables grow by 25 % instead of doubling (issue 15: RSS per
#: channel at 100,000 channels); the copies stay amortised O(1) per channel.
GROWTH_STEP_CHANNELS = 16_384


@dataclass(slots=True)
class ChannelState:
    arrays: dict[str, np.ndarray[Any, Any]]
    spec: Spec
    size: int = 0

    @staticmethod
    def empty(spec: Spec, capacity: int = 1024) -> ChannelState:
        arrays = {name: _alloc(name, capacity, shape, fill, dtype) for name, (dtype, shape, fill) in spec.items()}
        return ChannelState(arrays, spec, 0)

    @property
    def capacity(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])

    def ensure(self, n: int) -> None:
        """Make room for channel ids < n, keeping every value. Small tables double; from
        `GROWTH_STEP_CHANNELS` on they grow by a quarter, so a large gateway holds at most 25 %
        unused channel rows (every row is written when allocated: it costs resident memory)."""
        old = self.capacity
        if n > old:
            cap = max(n, 2 * old if old < GROWTH_STEP_CHANNELS else old + old // 4)
            for name, (dtype, shape, fill) in self.spec.items():
                grown = _alloc(name, cap, shape, fill, dtype)
                grown[:old] = self.arrays[name]
                self.arrays[name] = grown
        self.size = max(self.size, n)

    def __getitem__(self, name: str) -> np.ndarray[Any, Any]:
        return self.arrays[name]

    def slots(self, name: str) -> tuple[np.ndarray[Any, Any], int]:
        """A time-major field as one flat array; element (channel c, slot k) is at k·cap + c."""
        arr = self.arrays[name]
        return arr.T.reshape(-1), int(arr.shape[0])

    def copy_rows(self, other: ChannelState, rows: np.ndarray[Any, Any], fields: Spec) -> None:
        """self[f][rows] = other[f][rows] for every field of `fields`."""
        for name in fields:
            self.arrays[name][rows] = other.arrays[name][rows]

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())
