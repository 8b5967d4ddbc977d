"""The raw ring: each channel's readings since its checkpoint, kept for exact replay.

Per channel a circular buffer of `K` slots holds (t, value, STEL at t) in time order from
`ring_head`. Pushing a sequence appends it; what overflows (or is older than the reorder
horizon) is *evicted*: returned in order so the engine can fold it into the checkpoint state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rules.kernel import Seq
from rules.state import ChannelState
from rules.types import F64, I64

_FIELDS = ("ring_t", "ring_v", "ring_stel")


@dataclass(slots=True)
class Evicted:
    ch: I64
    t: F64
    v: F64
    stel: F64

    def __len__(self) -> int:
        return int(self.ch.shape[0])


def _expand(counts: I64) -> tuple[I64, I64]:
    """(owner, position) pairs: owner k repeated counts[k] times with positions 0..counts[k]-1."""
    owner = np.repeat(np.arange(counts.shape[0]), counts)
    pos = np.arange(owner.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, pos


def push(live: ChannelState, s: Seq, stel: F64, keep_s: float) -> Evicted:
    """Append each channel's sequence to its ring; evict what overflows the ring or is more than
    `keep_s` older than the channel's newest reading; return it, oldest first per channel."""
    k = live["ring_t"].shape[1]
    c = s.chans
    n_new = s.ends - s.starts
    r_n, head = live["ring_n"][c], live["ring_head"][c]
    e = np.maximum(np.maximum(r_n + n_new - k, 0), _too_old(live, s, keep_s))
    e_old = np.minimum(e, r_n)
    out_start = np.cumsum(e) - e
    ev = Evicted(np.repeat(c, e), np.empty(int(e.sum())), np.empty(int(e.sum())), np.empty(int(e.sum())))
    own, pos = _expand(e_old)
    flat_old = c[own] * k + (head[own] + pos) % k
    for name, dst in zip(_FIELDS, (ev.t, ev.v, ev.stel), strict=True):
        dst[out_start[own] + pos] = live[name].reshape(-1)[flat_old]
    own, pos = _expand(e - e_old)
    rows = s.starts[own] + pos
    for src, dst in zip((s.t, s.v, stel), (ev.t, ev.v, ev.stel), strict=True):
        dst[out_start[own] + e_old[own] + pos] = src[rows]
    _write_kept(live, s, stel, e - e_old)
    live["ring_head"][c] = (head + e) % k
    live["ring_n"][c] = r_n + n_new - e
    return ev


def _write_kept(live: ChannelState, s: Seq, stel: F64, e_new: I64) -> None:
    """Store the new readings that stay in the ring (all but the first e_new of each group)."""
    k = live["ring_t"].shape[1]
    c = s.chans
    tail_start = s.starts + e_new
    if (e_new == 0).all():  # everything stays: rows are the whole sequence
        own, rows = s.gidx, np.arange(s.t.shape[0])
    else:
        own, pos = _expand(s.ends - tail_start)
        rows = tail_start[own] + pos
    slot = c[own] * k + (live["ring_head"][c][own] + live["ring_n"][c][own] + rows - s.starts[own]) % k
    for name, src in zip(_FIELDS, (s.t, s.v, stel), strict=True):
        live[name].reshape(-1)[slot] = src[rows]


def _too_old(live: ChannelState, s: Seq, keep_s: float) -> I64:
    """Per group: ring entries + new readings older than newest − keep_s (all are time-ordered)."""
    k = live["ring_t"].shape[1]
    cutoff = s.t[s.ends - 1] - keep_s
    old_new = np.add.reduceat((s.t < cutoff[s.gidx]).astype(np.int64), s.starts)
    c = s.chans
    head = live["ring_head"][c]
    stale = (live["ring_n"][c] > 0) & (live["ring_t"][c, head] < cutoff)
    count = np.zeros(c.shape[0], np.int64)
    if stale.any():
        g = np.flatnonzero(stale)
        slots = (head[g, None] + np.arange(k)) % k
        valid = np.arange(k) < live["ring_n"][c[g], None]
        count[g] = (valid & (live["ring_t"][c[g, None], slots] < cutoff[g, None])).sum(axis=1)
    out: I64 = count + old_new
    return out


def take(live: ChannelState, chans: I64) -> tuple[I64, F64, F64]:
    """Empty the rings of `chans`, returning their readings (channel, t, value) in time order."""
    k = live["ring_t"].shape[1]
    r_n, head = live["ring_n"][chans], live["ring_head"][chans]
    own, pos = _expand(r_n)
    cc = chans[own]
    slot = (head[own] + pos) % k
    out = (cc, live["ring_t"][cc, slot], live["ring_v"][cc, slot])
    live["ring_n"][chans] = 0
    return out
