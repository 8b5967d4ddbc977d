"""Vectorized per-reading sensor checks: range, no-variation (stuck) and sequence gaps.

Pure functions over numpy arrays plus small per-channel / per-device state arrays that the
caller owns; no clock, no I/O. Readings are never looped over in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from rules.types import F64, I64

_T = TypeVar("_T", bound=np.generic)
BOOL = npt.NDArray[np.bool_]

#: A seq this far below the last one is a device restart (counter reset), not a late message.
SEQ_RESTART_MARGIN = 1000


def grow(a: npt.NDArray[_T], n: int, fill: float | int) -> npt.NDArray[_T]:
    """`a` extended to at least length `n` with `fill` (never shrinks). The capacity doubles, so
    adding devices one by one costs amortised O(1) each, not a copy of every array per device;
    callers index by id and keep their own count (the padding is `fill`: never seen, never due)."""
    if a.shape[0] >= n:
        return a
    cap = max(n, 2 * a.shape[0])
    return np.concatenate([a, np.full(cap - a.shape[0], fill, dtype=a.dtype)])


def outside_range(channel: I64, value: F64, lo: F64, hi: F64) -> BOOL:
    """Mask of readings outside their channel's sensor range [lo, hi]."""
    return (value < lo[channel]) | (value > hi[channel])


@dataclass(slots=True)
class StuckState:
    """Per channel: last value, event time of the last change, latest event time."""

    ref: F64
    changed_t: F64
    last_t: F64

    @staticmethod
    def empty() -> StuckState:
        return StuckState(np.empty(0), np.empty(0), np.empty(0))

    def ensure(self, n: int) -> None:
        self.ref = grow(self.ref, n, np.nan)
        self.changed_t = grow(self.changed_t, n, -np.inf)
        self.last_t = grow(self.last_t, n, -np.inf)


def update_stuck(st: StuckState, channel: I64, t_s: F64, value: F64, tol: F64) -> I64:
    """Fold a batch into `st`; returns the channels seen (unique).

    A reading "changes" when it differs from the previous reading of its channel (in event-time
    order, the state's last value for the first one) by more than the channel's tolerance.
    """
    order = np.lexsort((t_s, channel))
    c, t, v = channel[order], t_s[order], value[order]
    first = np.ones(c.shape[0], dtype=bool)
    first[1:] = c[1:] != c[:-1]
    prev = np.empty_like(v)
    prev[1:] = v[:-1]
    prev[first] = st.ref[c[first]]
    changed = ~(np.abs(v - prev) <= tol[c])  # NaN previous (unseen channel) counts as a change
    np.maximum.at(st.changed_t, c[changed], t[changed])
    np.maximum.at(st.last_t, c, t)
    last = np.ones(c.shape[0], dtype=bool)
    last[:-1] = first[1:]
    st.ref[c[last]] = v[last]
    return c[last]


@dataclass(frozen=True, slots=True)
class SeqGap:
    device: int
    missing: int  # sequence numbers skipped in this batch
    first_missing: int  # first skipped number (for the message)
    t_s: float  # event time of the reading after the first gap


def seq_gaps(max_seq: I64, device: I64, seq: I64, t_s: F64) -> list[SeqGap]:
    """Skipped sequence numbers per device; updates `max_seq` (per device, -1 = none yet) in place.

    Duplicates and late (already passed) numbers are ignored; a number 0 or far below the last
    one is a device restart. Several readings of one message share a seq (a 4-gas detector).
    """
    m = seq >= 0
    d, s, t = device[m], seq[m], t_s[m]
    order = np.lexsort((s, d))
    d, s, t = d[order], s[order], t[order]
    base = max_seq[d]
    restart_dev = np.unique(d[(base >= 0) & ((s == 0) | (base - s > SEQ_RESTART_MARGIN))])
    max_seq[restart_dev] = -1
    base = max_seq[d]
    keep = (base < 0) | (s > base)
    keep[1:] &= (d[1:] != d[:-1]) | (s[1:] != s[:-1])
    d, s, t, base = d[keep], s[keep], t[keep], base[keep]
    if d.size == 0:
        return []
    first = np.ones(d.shape[0], dtype=bool)
    first[1:] = d[1:] != d[:-1]
    prev = np.empty_like(s)
    prev[1:] = s[:-1]
    prev[first] = base[first]
    missing = np.where(prev >= 0, s - prev - 1, 0)
    np.maximum.at(max_seq, d, s)
    return _gap_list(d, prev, missing, t)


def _gap_list(d: I64, prev: I64, missing: I64, t: F64) -> list[SeqGap]:
    hit = np.flatnonzero(missing > 0)
    if hit.size == 0:
        return []
    totals = np.bincount(d[hit], weights=missing[hit])
    gaps: list[SeqGap] = []
    for dev in np.unique(d[hit]).tolist():
        i = int(hit[np.argmax(d[hit] == dev)])
        gaps.append(SeqGap(dev, int(totals[dev]), int(prev[i]) + 1, float(t[i])))
    return gaps
