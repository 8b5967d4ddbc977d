"""The vectorized heart of the engine: held readings → integrals, runs, running figures, STEL.

Input is one *sequence* per channel: readings sorted by (channel, time), all at or after the
channel's open (last) reading. Each reading closes the hold of its predecessor:
hold = [t_prev, min(t, t_prev + max_gap)) at value v_prev (SPEC §3). A hold that crosses a
segment boundary (shift change) is cut in two. Holds are summed per *run* (a channel's readings
in one segment); running shift-to-date figures are cumulative sums within runs. No Python loop
touches individual readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rules import exposure as ex
from rules.state import BIN_S, NQ, Q_COVERED, Q_DOSE, Q_DOSE2, Q_PRIMARY, ChannelState
from rules.types import F64, I64

B = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(slots=True)
class Seq:
    """Readings sorted by (channel, t) with their segment; `chans[k]` owns rows starts[k]:ends[k]."""

    ch: I64
    t: F64
    v: F64
    seg_s: F64
    seg_e: F64
    shift: B
    chans: I64
    starts: I64
    ends: I64
    first: B
    gidx: I64  # group number of each row

    @staticmethod
    def of(ch: I64, t: F64, v: F64, seg_s: F64, seg_e: F64, shift: B) -> Seq:
        n = ch.shape[0]
        first = np.empty(n, bool)
        if n:
            first[0] = True
            np.not_equal(ch[1:], ch[:-1], out=first[1:])
        starts = np.flatnonzero(first)
        ends = np.append(starts[1:], n).astype(np.int64)
        gidx = np.cumsum(first) - 1
        return Seq(ch, t, v, seg_s, seg_e, shift, ch[starts], starts, ends, first, gidx)


@dataclass(slots=True)
class Holds:
    """The hold each reading closes, split into the part in its own segment and the part before."""

    held: F64  # whole hold length (s)
    vp: F64  # predecessor value (0 when none)
    cur: F64  # (NQ, n) integrals of the hold inside the reading's segment (row per quantity)
    leave: I64  # rows whose predecessor lies in an earlier segment
    old: F64  # (len(leave), NQ) integrals of the hold left in that earlier segment
    trailing: F64  # (len(leave),) silence at the end of that earlier segment
    silence: F64  # silence before each reading inside its segment (s)


def holds(st: ChannelState, meta: ChannelState, s: Seq, max_gap_s: float, floors: F64, noise: F64) -> Holds:
    """Predecessors, hold pieces and their integrals (C or 10^(L/10), dose weights, seconds)."""
    tp, vp = _shifted(s.t, st["t_last"], s), _shifted(s.v, st["v_last"], s)
    he = np.minimum(s.t, tp + max_gap_s)
    held = he - tp
    change = np.empty(s.t.shape[0], bool)
    change[1:] = s.seg_s[1:] != s.seg_s[:-1]
    change[s.starts] = st["seg_start"][s.chans] != s.seg_s[s.starts]
    orphan = s.starts[~st["has"][s.chans]]  # a channel's first reading ever: nothing to close
    tp[orphan], vp[orphan], he[orphan], held[orphan] = np.nan, 0.0, -np.inf, 0.0
    change[orphan] = False
    leave = np.flatnonzero(change)
    length = held.copy()
    length[leave] = np.maximum(he[leave] - np.maximum(tp[leave], s.seg_s[leave]), 0.0)
    old, trailing = _left_behind(st, meta, s, leave, tp, he, vp, floors, noise)
    silence = s.t - np.maximum(he, s.seg_s)
    return Holds(held, vp, integrals(meta, s.ch, vp, length, floors, noise), leave, old, trailing, silence)


def _shifted(x: F64, last: F64, s: Seq) -> F64:
    """Each row's predecessor value: the previous row, or the channel's open reading."""
    out = np.empty_like(x)
    out[1:] = x[:-1]
    out[s.starts] = last[s.chans]
    return out


def _left_behind(
    st: ChannelState, meta: ChannelState, s: Seq, leave: I64, tp: F64, he: F64, vp: F64, floors: F64, noise: F64
) -> tuple[F64, F64]:
    """For readings entering a new segment: the hold part still in the old one, and its end silence."""
    ep = np.where(s.first[leave], st["seg_end"][s.ch[leave]], s.seg_e[np.maximum(leave - 1, 0)])
    stop = np.minimum(he[leave], ep)
    old = weights(meta, s.ch[leave], vp[leave], floors, noise) * np.maximum(stop - tp[leave], 0.0)[:, None]
    return old, ep - np.maximum(stop, tp[leave])


def integrals(meta: ChannelState, ch: I64, value: F64, length: F64, floors: F64, noise: F64) -> F64:
    """(NQ, n) integrals of `value` held for `length` seconds (see `weights`)."""
    out = np.empty((NQ, value.shape[0]))
    np.multiply(value, length, out=out[Q_PRIMARY])
    out[Q_DOSE : Q_DOSE2 + 1] = 0.0
    out[Q_COVERED] = length
    sound = meta["sound"][ch]
    if sound.any():
        idx = np.flatnonzero(sound)
        out[: Q_DOSE2 + 1, idx] = (_sound_weights(meta, ch[idx], value[idx], floors, noise) * length[idx, None]).T
    return out


def weights(meta: ChannelState, ch: I64, value: F64, floors: F64, noise: F64) -> F64:
    """Per-second integrands of a held value: C (or 10^(L/10)), two dose weights, 1 (covered).

    Dose weight 2^((L − criterion)/exchange) where L >= floor, else 0 (29 CFR 1910.95 App. A;
    30 CFR 62 Table 62-1). Energy 10^(L/10) (ISO 1999, Directive 2003/10/EC Art. 2(b)).
    """
    w = np.empty((value.shape[0], NQ))
    w[:, Q_PRIMARY] = value
    w[:, Q_DOSE : Q_DOSE2 + 1] = 0.0
    w[:, Q_COVERED] = 1.0
    sound = meta["sound"][ch]
    if sound.any():
        idx = np.flatnonzero(sound)
        w[idx, : Q_DOSE2 + 1] = _sound_weights(meta, ch[idx], value[idx], floors, noise)
    return w


def _sound_weights(meta: ChannelState, ch: I64, level: F64, floors: F64, noise: F64) -> F64:
    """(n, 3): 10^(L/10), and 2^((L − criterion)/exchange) above each of the two dose floors."""
    prof = meta["profile"][ch]
    out = np.empty((level.shape[0], 3))
    out[:, Q_PRIMARY] = ex.energy(level)
    rate = np.exp2((level - noise[prof, 0]) / noise[prof, 1])
    out[:, Q_DOSE] = np.where(level >= floors[prof, 0], rate, 0.0)
    out[:, Q_DOSE2] = np.where(level >= floors[prof, 1], rate, 0.0)
    return out


@dataclass(slots=True)
class Runs:
    """A channel's consecutive readings in one segment, with the state carried into it."""

    start: I64  # row of each run's first reading
    end: I64  # row after its last reading
    chan: I64
    cont: B  # the run continues the channel's current segment
    last: B  # the run is its channel's last in this sequence
    sums: F64  # (R, NQ) shift-to-date integrals at the run's last reading
    peak: F64
    stel_max: F64
    silence_max: F64
    n: I64


def seg_cumsum(x: F64, starts: I64, ends: I64) -> F64:
    """Cumulative sums along axis 0 restarting at each group [starts[g], ends[g]).

    A plain cumsum over all groups followed by subtraction would lose a quiet channel's digits
    next to a loud one (10^(L/10) spans 10 orders of magnitude), so groups are summed apart: in
    2-D blocks, one block per power-of-two group length (a loop over at most ~20 lengths).
    """
    out = np.empty_like(x)
    lengths = ends - starts
    if lengths.size == 0:
        return out
    width = int(lengths[0])
    if (lengths == width).all():  # equal groups (a steady stream): a reshape, no gather
        out[:] = np.cumsum(x.reshape(lengths.size, width, *x.shape[1:]), axis=1).reshape(x.shape)
        return out
    bucket = np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64)
    for b in np.unique(bucket).tolist():
        g = np.flatnonzero(bucket == b)
        width = 1 << b
        valid = np.arange(width) < lengths[g, None]
        idx = np.where(valid, starts[g, None] + np.arange(width), 0)
        block = x[idx]
        block[~valid] = 0.0
        out[idx[valid]] = np.cumsum(block, axis=1)[valid]
    return out


def runs(st: ChannelState, s: Seq, h: Holds, stel: F64) -> Runs:
    n = s.t.shape[0]
    new_run = s.first.copy()
    new_run[1:] |= s.seg_s[1:] != s.seg_s[:-1]
    start = np.flatnonzero(new_run)
    end = np.append(start[1:], n).astype(np.int64)
    chan = s.ch[start]
    cont = s.first[start] & st["has"][chan] & (st["seg_start"][chan] == s.seg_s[start])
    last = np.append(chan[1:] != chan[:-1], True)
    sums = np.add.reduceat(h.cur, start, axis=1).T.copy()
    sums[cont] += st["acc"][chan[cont]]
    return Runs(
        start, end, chan, cont, last, sums,
        _carry(np.maximum.reduceat(s.v, start), cont, st["peak"][chan]),
        _carry(np.maximum.reduceat(stel, start), cont, st["stel_max"][chan]),
        _carry(np.maximum.reduceat(h.silence, start), cont, st["silence_max"][chan]),
        end - start + np.where(cont, st["n"][chan], 0),
    )  # fmt: skip


def _carry(run_max: F64, cont: B, state_max: F64) -> F64:
    out: F64 = np.where(cont, np.maximum(run_max, state_max), run_max)
    return out


def advance(st: ChannelState, s: Seq, r: Runs, x: F64, stel: F64) -> None:
    """Track state after the sequence: each channel's last run is its current segment."""
    last = np.flatnonzero(r.last)
    c, row0 = r.chan[last], r.start[last]
    st["seg_start"][c], st["seg_end"][c], st["seg_shift"][c] = s.seg_s[row0], s.seg_e[row0], s.shift[row0]
    st["acc"][c] = r.sums[last]
    st["peak"][c], st["stel_max"][c] = r.peak[last], r.stel_max[last]
    st["silence_max"][c], st["n"][c] = r.silence_max[last], r.n[last]
    tail = s.ends - 1
    st["t_last"][s.chans], st["v_last"][s.chans], st["x_last"][s.chans] = s.t[tail], s.v[tail], x[tail]
    st["stel_last"][s.chans] = stel[tail]
    st["has"][s.chans] = True


def running_x(st: ChannelState, s: Seq, h: Holds) -> F64:
    """X(t_i) = ∫ C dt up to each reading (the STEL integral), continuing the channel's X."""
    out: F64 = seg_cumsum(h.held * h.vp, s.starts, s.ends) + st["x_last"][s.chans][s.gidx]
    return out


def x_at(st: ChannelState, s: Seq, x: F64, q: F64, rows: I64, max_gap_s: float) -> F64:
    """X at times q[j] at or after the sequence start of row rows[j]'s channel (exact).

    The last reading at or before q is found with one `searchsorted` over keys made globally
    increasing by offsetting each channel's times; X(q) = X_j + v_j·min(q − t_j, max_gap).
    """
    g = s.gidx[rows]
    has = st["has"][s.chans]
    t_last, v_last, x_last = st["t_last"][s.chans], st["v_last"][s.chans], st["x_last"][s.chans]
    t0 = np.where(has, t_last, s.t[s.starts])
    offset = np.concatenate(([0.0], np.cumsum(s.t[s.ends - 1] - t0 + 1.0)[:-1]))
    keys = (s.t - t0[s.gidx]) + offset[s.gidx]
    j = np.searchsorted(keys, (q - t0[g]) + offset[g], side="right") - 1
    inside = j >= s.starts[g]
    jj = np.where(inside, j, s.starts[g])
    tj = np.where(inside, s.t[jj], t_last[g])
    vj = np.where(inside, s.v[jj], np.where(has[g], v_last[g], 0.0))
    xj = np.where(inside, x[jj], x_last[g])
    out: F64 = xj + vj * np.where(inside | has[g], np.clip(q - tj, 0.0, max_gap_s), 0.0)
    return out


def x_from_bins(st: ChannelState, live: ChannelState, ch: I64, q: F64) -> F64:
    """X at times q before the channel's open reading, from the STEL bins.

    X is exact at bin ends; inside the bin holding q it is taken as linear in time, which is
    the engine's one approximation (docs/exposure.md). Channels without history have X = 0.
    (Written with in-place operations: this runs for every gas reading.)
    """
    nb = live["bins"].shape[1]  # a power of two: slot = bin & (nb - 1)
    flat, cap = live.slots("bins")
    t0 = st["t_last"][ch]
    hi = (t0 * (1.0 / BIN_S)).astype(np.int64)  # times are positive: truncation is floor
    b = (q * (1.0 / BIN_S)).astype(np.int64)
    np.maximum(b, hi - (nb - 2), out=b)
    idx = b - 1
    np.bitwise_and(idx, nb - 1, out=idx)
    idx *= cap
    idx += ch
    left = flat[idx]
    in_last = b >= hi
    np.bitwise_and(b, nb - 1, out=idx)
    idx *= cap
    idx += ch
    right = flat[idx]
    np.copyto(right, st["x_last"][ch], where=in_last)
    start = b * BIN_S  # bin start (s)
    span = np.where(in_last, t0, start + BIN_S)
    span -= start
    frac = q - start
    np.divide(frac, span, out=frac, where=span > 0)
    np.clip(frac, 0.0, 1.0, out=frac)
    right -= left
    right *= frac
    right += left
    right[~st["has"][ch]] = 0.0
    return right


def stel(st: ChannelState, live: ChannelState, s: Seq, x: F64, gas: B, max_gap_s: float) -> F64:
    """15-min trailing time-weighted mean at each reading: (X(t) − X(t − 900 s))/900 s."""
    out = np.full(s.t.shape[0], -np.inf)
    rows = np.flatnonzero(gas)
    if rows.size == 0:
        return out
    q = s.t[rows] - ex.STEL_WINDOW_S
    chans = s.ch[rows]
    recent = ~st["has"][chans] | (q >= st["t_last"][chans])
    xq = np.empty(rows.size)
    if recent.any():
        xq[recent] = x_at(st, s, x, q[recent], rows[recent], max_gap_s)
    old = ~recent
    if old.any():
        xq[old] = x_from_bins(st, live, chans[old], q[old])
    out[rows] = (x[rows] - xq) / ex.STEL_WINDOW_S
    return out


def write_bins(st: ChannelState, live: ChannelState, s: Seq, x: F64, groups: I64, max_gap_s: float) -> None:
    """Store X at the end of every bin from the open reading to the sequence's last reading."""
    if groups.size == 0:
        return
    nb = live["bins"].shape[1]
    chans = s.chans[groups]
    t_new = s.t[s.ends[groups] - 1]
    t_from = np.where(st["has"][chans], st["t_last"][chans], s.t[s.starts[groups]])
    b_hi = np.floor(t_new / BIN_S).astype(np.int64)
    b_lo = np.maximum(np.floor(t_from / BIN_S).astype(np.int64), b_hi - nb + 1)
    count = b_hi - b_lo + 1
    rep = np.repeat(np.arange(groups.size), count)
    b = b_lo[rep] + np.arange(rep.size) - np.repeat(np.cumsum(count) - count, count)
    q = np.minimum((b + 1) * BIN_S, t_new[rep])
    flat, cap = live.slots("bins")
    flat[(b & (nb - 1)) * cap + chans[rep]] = x_at(st, s, x, q, s.starts[groups][rep], max_gap_s)
