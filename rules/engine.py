"""ExposureEngine: readings in, rule evaluations and shift exposure records out (SPEC §3).

Pure: no I/O, no clock (`tick(now_s)` is told the time). State is columnar (rules/state.py);
the per-reading work is vectorized in rules/kernel.py. Python loops run only over rare
events (shift closures) and over sites. Semantics and tolerances: docs/exposure.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rules import kernel as k
from rules import ring, snapshot
from rules.closing import Closer
from rules.conditions import Figures, conditions_for, merge_conditions
from rules.errors import ConfigError
from rules.exposure import STEL_WINDOW_S
from rules.kernel import Seq
from rules.mixtures import MixtureIndex
from rules.profiles import ProfileBook, SiteConfig, profile_of_site
from rules.results import ConditionBatch, EngineResult, ExposureRecord
from rules.shifts import SiteBook
from rules.state import BIN_S, ChannelState, bins_for, live_spec, meta_spec, ring_size, track_spec
from rules.tiers import TierTable
from rules.types import F64, I64, SOUND_LEVEL_HAZARDS, ChannelRegistry, ReadingBatch

#: Longest allowed max_gap: a hold must never span a whole segment (shifts are >= 1 h).
_MAX_GAP_LIMIT_S = 3600.0
B = np.ndarray[Any, np.dtype[np.bool_]]


class ExposureEngine:
    """See the module docstring and docs/exposure.md for the exact semantics.

    `reorder_readings` / `reorder_s`: checkpoints every that many readings (and when the newer
    one is reorder_s/2 old); a reading older than the channel's latest is replayed exactly from
    the newest checkpoint not after it, else judged as a level only and counted in
    `stats["late_dropped"]` (docs/exposure.md, "Late readings").
    """

    def __init__(
        self,
        book: ProfileBook,
        default_profile: str,
        sites: Mapping[str, SiteConfig] | None = None,
        *,
        max_gap_s: float = 60.0,
        grace_s: float = 300.0,
        registry: ChannelRegistry | None = None,
        reorder_s: float = 300.0,
        reorder_readings: int = 64,
    ) -> None:
        if not 0.0 < max_gap_s <= _MAX_GAP_LIMIT_S:
            raise ConfigError(f"max_gap_s must be > 0 and <= {_MAX_GAP_LIMIT_S:g} s, got {max_gap_s}")
        if grace_s < 0 or reorder_s < 0 or reorder_readings < 1:
            raise ConfigError("grace_s and reorder_s must be >= 0, reorder_readings >= 1")
        self.book = book
        self.default_profile = book.profile(default_profile).name
        for site in (sites or {}).values():
            if site.profile is not None:
                book.profile(site.profile)
        self.sites = SiteBook(dict(sites or {}))
        self.max_gap_s, self.grace_s, self.reorder_s = float(max_gap_s), float(grace_s), float(reorder_s)
        self.registry = registry if registry is not None else ChannelRegistry()
        self.tiers = TierTable.compile(book)
        self.every = int(reorder_readings)
        spec = {**meta_spec(), **track_spec(), **live_spec(ring_size(self.every), bins_for(reorder_s))}
        self.live = ChannelState.empty(spec)
        self.ck1, self.ck2 = ChannelState.empty(track_spec()), ChannelState.empty(track_spec())
        self.closer = Closer(self)
        self.mixtures = MixtureIndex(self)
        self.stats = {"readings": 0, "replayed": 0, "late_dropped": 0}

    # -- channels ---------------------------------------------------------------------------------
    def register(self) -> None:
        """Size the state for every channel in the registry (ingest does this itself)."""
        st, n_old, n = self.live, self.live.size, len(self.registry)
        if n <= n_old:
            return
        st.ensure(n)
        self.ck1.ensure(n)
        self.ck2.ensure(n)
        for c in range(n_old, n):
            key = self.registry[c]
            prof = self.profile_of(key.site)
            st["site"][c] = self.sites.id_for(key.site)
            st["profile"][c] = self.tiers.profile_index[prof]
            st["group"][c] = self.tiers.group(prof, key.hazard)
            st["sound"][c] = key.hazard in SOUND_LEVEL_HAZARDS

    def profile_of(self, site: str) -> str:
        return profile_of_site(self.sites.configs, self.default_profile, site)

    # -- batches ----------------------------------------------------------------------------------
    def ingest(self, batch: ReadingBatch) -> EngineResult:
        """Judge one batch of readings (any order) and advance the exposure state."""
        self.register()
        if len(batch) == 0:
            return EngineResult(ConditionBatch.empty(), [])
        ch, t, v = _sorted(batch)
        if ch[0] < 0 or ch[-1] >= self.live.size:
            raise ConfigError("reading batch names a channel the registry does not know")
        self.stats["readings"] += ch.shape[0]
        cond, records = self._ingest_sorted(ch, t, v)
        parts = [cond]
        parts.append(self.mixtures.conditions(ch[np.append(True, ch[1:] != ch[:-1])]))
        self.sites.note_times(self.live["site"][ch], t)
        records += self.closer.close(self.live["seg_end"][: self.live.size] <= self._site_time())
        return EngineResult(merge_conditions(parts), records)

    def _ingest_sorted(self, ch: I64, t: F64, v: F64) -> tuple[ConditionBatch, list[ExposureRecord]]:
        late = self.live["has"][ch] & (t < self.live["t_last"][ch])
        replay, older, dropped = self._triage(ch, t, late)
        parts: list[ConditionBatch] = []
        records: list[ExposureRecord] = []
        if dropped.any():
            parts.append(self._levels_only(ch[dropped], t[dropped], v[dropped]))
        keep = ~dropped
        if keep.any():
            cond, records = self._sequence(ch[keep], t[keep], v[keep], replay, older)
            parts.append(cond)
        return merge_conditions(parts), records

    def _triage(self, ch: I64, t: F64, late: B) -> tuple[I64, B, B]:
        """Channels to replay (and whether from the older checkpoint), and late rows to drop."""
        if not late.any():
            return np.empty(0, np.int64), np.zeros(0, bool), np.zeros(ch.shape[0], bool)
        lc = np.unique(ch[late])
        t_min = np.full(self.live.size, np.inf)
        np.minimum.at(t_min, ch[late], t[late])
        tm = t_min[lc]
        ok2 = ~self.ck2["has"][lc] | (tm >= self.ck2["t_last"][lc])
        ok1 = ~self.ck1["has"][lc] | (tm >= self.ck1["t_last"][lc])
        older = ~ok2 & ok1
        ck_t = np.where(older, self.ck1["t_last"][lc], self.ck2["t_last"][lc])
        ok = (ok2 | ok1) & self._bins_reach(lc, np.minimum(tm, self._first(lc, older)), ck_t)
        replay = lc[ok]
        return replay, older[ok], late & ~np.isin(ch, replay)

    def _first(self, chans: I64, older: B) -> F64:
        """Time of the first reading the replay takes from the ring (inf: none)."""
        live = self.live
        mark = np.where(older, live["mark1"][chans], live["mark2"][chans])
        size = live["ring_t"].shape[1]
        flat, cap = live.slots("ring_t")
        first = flat[(mark & (size - 1)) * cap + chans]
        out: F64 = np.where(live["ring_total"][chans] > mark, first, np.inf)
        return out

    def _bins_reach(self, chans: I64, first: F64, ck_t: F64) -> B:
        """The replay recomputes STEL from its first reading on: its window must be in the bins
        (or start after the checkpoint's reading, where the replayed readings themselves suffice)."""
        nb = self.live["bins"].shape[1]
        q = first - STEL_WINDOW_S
        in_bins = np.floor(q / BIN_S) >= np.floor(self.live["t_last"][chans] / BIN_S) - nb + 2
        out: B = in_bins | ~(q < ck_t)
        return out

    def _levels_only(self, ch: I64, t: F64, v: F64) -> ConditionBatch:
        """Readings too late to replay: judged as instantaneous levels only, and counted."""
        np.add.at(self.live["late"], ch, 1)
        self.stats["late_dropped"] += int(ch.shape[0])
        nan = np.full_like(t, np.nan)
        s = Seq.of(ch, t, v, nan, nan, np.zeros(t.shape[0], bool))
        return conditions_for(self.tiers, self.live, s, Figures())

    def _sequence(self, ch: I64, t: F64, v: F64, replay: I64, older: B) -> tuple[ConditionBatch, list[ExposureRecord]]:
        """Merge the rings of replayed channels (restored to a checkpoint), then process in phases:
        the replayed readings before the earliest late one (then a checkpoint is taken there, the
        best place for the next late reading), the readings before a jump, the rest."""
        live, new = self.live, np.ones(ch.shape[0], bool)
        emit_from = np.full(live.size, -np.inf)  # rows judged: all, but for replays from the late one on
        if replay.size:
            self.stats["replayed"] += int(replay.size)
            emit_from[replay] = np.inf
            np.minimum.at(emit_from, ch, np.where(np.isin(ch, replay), t, np.inf))
            marks = self._restore(replay, older)
            rc, rt, rv = ring.take(live, replay, marks)
            order = np.lexsort((np.concatenate((rt, t)), np.concatenate((rc, ch))))
            ch = np.concatenate((rc, ch))[order]
            t = np.concatenate((rt, t))[order]
            v = np.concatenate((rv, v))[order]
            new = np.concatenate((np.zeros(rc.shape[0], bool), new))[order]
        emit = t >= emit_from[ch]
        prefix = ~new & ~emit
        rest = ~prefix
        before = rest & self._before_jump(ch, t, rest)
        parts, records = [], []
        for m in (prefix, before, rest & ~before):
            if m.any():
                cond, recs = self._process(self._seq(ch[m], t[m], v[m]), new[m], emit[m] if replay.size else None)
                parts.append(cond)
                records += recs
            if m is prefix and m.any():
                ring.checkpoint(live, self.ck2, np.unique(ch[m]))
        return merge_conditions(parts), records

    def _seq(self, ch: I64, t: F64, v: F64) -> Seq:
        live = self.live
        cached = (live["seg_start"][ch], live["seg_end"][ch], live["seg_shift"][ch])
        return Seq.of(ch, t, v, *self.sites.segments(live["site"][ch], cached, t))

    def _before_jump(self, ch: I64, t: F64, rows: B) -> B:
        """Rows before each channel's last jump (> reorder_s/2 of silence) inside the batch: they
        are processed first, so a checkpoint is taken right before the jump (see ring.py)."""
        jump = np.zeros(ch.shape[0], bool)
        jump[1:] = (ch[1:] == ch[:-1]) & (t[1:] - t[:-1] > self.reorder_s / 2) & rows[1:] & rows[:-1]
        if not jump.any():
            return jump
        starts = np.flatnonzero(np.append(True, ch[1:] != ch[:-1]))
        last = np.maximum.reduceat(np.where(jump, np.arange(ch.shape[0]), -1), starts)
        group = np.cumsum(np.append(True, ch[1:] != ch[:-1])) - 1
        out: B = np.arange(ch.shape[0]) < last[group]
        return out

    def _restore(self, replay: I64, older: B) -> I64:
        """Live track of replayed channels back to their checkpoint; the ring number to replay from.
        A replay from the older checkpoint makes the newer one stale: it becomes the older."""
        live, c1, c2 = self.live, replay[older], replay[~older]
        live.copy_rows(self.ck2, c2, track_spec())
        live.copy_rows(self.ck1, c1, track_spec())
        self.ck2.copy_rows(self.ck1, c1, track_spec())
        live["mark2"][c1] = live["mark1"][c1]
        live["dirty"][replay] = True
        return np.where(older, live["mark1"][replay], live["mark2"][replay])

    def _process(self, s: Seq, new: B, emit: B | None) -> tuple[ConditionBatch, list[ExposureRecord]]:
        live = self.live
        ring.rotate_before(live, self.ck1, self.ck2, s, self.reorder_s)
        h = k.holds(live, live, s, self.max_gap_s, self.tiers.dose_floor, self.tiers.noise_param)
        x = k.running_x(live, s, h)
        gas = ~live["sound"][s.ch]
        stel = k.stel(live, live, s, x, gas, self.max_gap_s)
        r = k.runs(live, s, h, stel)
        figures = Figures(stel, r.sums, r.end - 1, None if emit is None else new, emit)
        cond = conditions_for(self.tiers, live, s, figures)
        records = self.closer.leaving(s, h, r)
        k.write_bins(live, live, s, x, np.flatnonzero(gas[s.starts]), self.max_gap_s)
        self.closer.carry_flags(r)
        k.advance(live, s, r, x, stel)
        ring.push(live, s)
        ring.rotate(live, self.ck1, self.ck2, s.chans, self.every, self.reorder_s)
        return cond, records

    def _site_time(self) -> F64:
        """Latest event time seen at each channel's site (a shift closes once its site moves past)."""
        per_site = np.asarray(self.sites.max_t, dtype=np.float64)
        if per_site.size == 0:
            return np.full(self.live.size, -np.inf)
        out: F64 = per_site[self.live["site"][: self.live.size]]
        return out

    # -- clock and queries ------------------------------------------------------------------------
    def tick(self, now_s: float) -> EngineResult:
        """Close every shift whose end + grace has passed on the wall clock `now_s`."""
        due = self.live["seg_end"][: self.live.size] + self.grace_s <= now_s
        return EngineResult(ConditionBatch.empty(), self.closer.close(due))

    def running(self, channel: int) -> ExposureRecord | None:
        """Shift-to-date exposure of one channel at its latest reading (final=False)."""
        return self.closer.running(channel)

    def snapshot(self) -> bytes:
        """Every per-channel state array and the channel list, for restart recovery."""
        return snapshot.dump(self)

    @classmethod
    def restore(
        cls,
        data: bytes,
        book: ProfileBook,
        default_profile: str,
        sites: Mapping[str, SiteConfig] | None = None,
        **settings: Any,
    ) -> ExposureEngine:
        """An engine built like `ExposureEngine(book, default_profile, sites, **settings)` and
        loaded with a snapshot; raises ConfigError if it cannot be read or does not fit."""
        engine = cls(book, default_profile, sites, **settings)
        snapshot.load(engine, data)
        return engine

    def state_bytes_per_channel(self) -> float:
        """Memory of all per-channel state (live + two checkpoints), per allocated channel."""
        return (self.live.nbytes() + self.ck1.nbytes() + self.ck2.nbytes()) / max(self.live.capacity, 1)


def _sorted(batch: ReadingBatch) -> tuple[I64, F64, F64]:
    """Readings ordered by (channel, event time); ties keep arrival order (the later one holds)."""
    ch = np.asarray(batch.channel, dtype=np.int64)
    t = np.asarray(batch.t_s, dtype=np.float64)
    v = np.asarray(batch.value, dtype=np.float64)
    if ch.shape[0] > 1:
        d = np.diff(ch)
        if not ((d > 0) | ((d == 0) & (np.diff(t) >= 0))).all():
            if (np.diff(t) >= 0).all():
                order = np.argsort(ch, kind="stable")
            else:
                order = np.lexsort((t, ch))
            ch, t, v = ch[order], t[order], v[order]
    return ch, t, v
