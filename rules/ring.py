"""The raw ring and the two checkpoints: what makes late readings replayable exactly.

Each channel's readings are numbered as they are pushed; slot = number & (size − 1). Every
`every` readings (or when the newer checkpoint falls `keep_s` behind) the checkpoints rotate:
the older takes the newer's state and the newer a copy of the live state. The ring keeps the
readings since the older checkpoint, so a late reading is replayable if it is not older than
that checkpoint's last reading: at least `every` readings back (2·every at most).
"""

from __future__ import annotations

import numpy as np

from rules.kernel import Seq
from rules.state import ChannelState, track_spec
from rules.types import F64, I64


def _expand(counts: I64) -> tuple[I64, I64]:
    """(owner, position) pairs: owner k repeated counts[k] times with positions 0..counts[k]-1."""
    owner = np.repeat(np.arange(counts.shape[0]), counts)
    pos = np.arange(owner.shape[0]) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, pos


def push(live: ChannelState, s: Seq) -> None:
    """Append each channel's sequence (numbered from its ring_total); a ring keeps its newest."""
    size = live["ring_t"].shape[1]
    total = live["ring_total"][s.chans]
    number = total[s.gidx] + (np.arange(s.t.shape[0]) - s.starts[s.gidx])
    keep = number >= (total + (s.ends - s.starts))[s.gidx] - size  # only the newest `size` fit
    (ring_t, cap), (ring_v, _) = live.slots("ring_t"), live.slots("ring_v")
    slot = (number & (size - 1)) * cap + s.ch
    if keep.all():
        ring_t[slot], ring_v[slot] = s.t, s.v
    else:
        ring_t[slot[keep]], ring_v[slot[keep]] = s.t[keep], s.v[keep]
    live["ring_total"][s.chans] = total + (s.ends - s.starts)


def rotate_before(live: ChannelState, ck1: ChannelState, ck2: ChannelState, s: Seq, keep_s: float) -> None:
    """Checkpoint channels whose batch jumps more than keep_s/2 ahead, before processing it, so
    that a reading late behind the jump replays from just before it."""
    jump = live["has"][s.chans] & (s.t[s.ends - 1] - live["t_last"][s.chans] > keep_s / 2)
    _rotate(live, ck1, ck2, s.chans[jump])


def rotate(live: ChannelState, ck1: ChannelState, ck2: ChannelState, chans: I64, every: int, keep_s: float) -> None:
    """Rotate the checkpoints of `chans` that are due (call after the live state advanced)."""
    size = live["ring_t"].shape[1]
    total, mark2 = live["ring_total"][chans], live["mark2"][chans]
    stale = ck2["has"][chans] & (live["t_last"][chans] - ck2["t_last"][chans] > keep_s / 2)
    due = (total - mark2 >= every) | stale
    _rotate(live, ck1, ck2, chans[due])
    # replays keep moving the newer checkpoint up: before the ring runs out, the older one
    # follows it (the two may then coincide until the next rotation)
    full = chans[~due & (live["ring_total"][chans] - live["mark1"][chans] >= size - every // 2)]
    if full.size:
        ck1.copy_rows(ck2, full, track_spec())
        live["mark1"][full] = live["mark2"][full]
    lost = chans[live["ring_total"][chans] - live["mark1"][chans] > size]  # a huge batch overran the ring
    if lost.size:
        ck1.copy_rows(ck2, lost, track_spec())
        live["mark1"][lost] = live["mark2"][lost]


def _rotate(live: ChannelState, ck1: ChannelState, ck2: ChannelState, due: I64) -> None:
    """Older checkpoint ← newer; newer ← live (track fields and ring marks). Channels with no
    reading since the newer checkpoint keep both: rotating would make them equal."""
    due = due[live["ring_total"][due] > live["mark2"][due]]
    if due.size:
        ck1.copy_rows(ck2, due, track_spec())
        live["mark1"][due] = live["mark2"][due]
        ck2.copy_rows(live, due, track_spec())
        live["mark2"][due] = live["ring_total"][due]


def checkpoint(live: ChannelState, ck2: ChannelState, chans: I64) -> None:
    """The newer checkpoint ← live, right before the earliest late reading of a replay (the
    older checkpoint stays: it still reaches further back)."""
    ck2.copy_rows(live, chans, track_spec())
    live["mark2"][chans] = live["ring_total"][chans]


def take(live: ChannelState, chans: I64, marks: I64) -> tuple[I64, F64, F64]:
    """Readings numbered marks[k].. of each channel, in time order; the ring is cut back to them."""
    size = live["ring_t"].shape[1]
    own, pos = _expand(live["ring_total"][chans] - marks)
    cc = chans[own]
    (ring_t, cap), (ring_v, _) = live.slots("ring_t"), live.slots("ring_v")
    slot = ((marks[own] + pos) & (size - 1)) * cap + cc
    out = (cc, ring_t[slot], ring_v[slot])
    live["ring_total"][chans] = marks
    return out
