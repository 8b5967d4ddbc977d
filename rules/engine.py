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
from rules import ring
from rules.closing import Closer
from rules.conditions import Figures, conditions_for, merge_conditions
from rules.errors import ConfigError
from rules.exposure import STEL_WINDOW_S
from rules.kernel import Seq
from rules.mixtures import MixtureIndex
from rules.profiles import ProfileBook, SiteConfig
from rules.results import ConditionBatch, EngineResult, ExposureRecord
from rules.shifts import SiteBook
from rules.state import BIN_S, ChannelState, bins_for, live_spec, meta_spec, track_spec
from rules.tiers import TierTable
from rules.types import F64, I64, SOUND_LEVEL_HAZARDS, ChannelRegistry, ReadingBatch

#: Longest allowed max_gap: a hold must never span a whole segment (shifts are >= 1 h).
_MAX_GAP_LIMIT_S = 3600.0
B = np.ndarray[Any, np.dtype[np.bool_]]


class ExposureEngine:
    """See the module docstring and docs/exposure.md for the exact semantics.

    `reorder_s` / `reorder_readings`: a reading older than its channel's latest is replayed
    exactly if it is at most `reorder_s` older and among the last `reorder_readings` of the
    channel; otherwise it is judged as a level only and counted in `stats["late_dropped"]`.
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
        self.live = ChannelState.empty({**meta_spec(), **track_spec(), **live_spec(reorder_readings, bins_for(reorder_s))})
        self.ck = ChannelState.empty(track_spec())
        self.closer = Closer(self)
        self.mixtures = MixtureIndex(self)
        self.stats = {"readings": 0, "replayed": 0, "late_dropped": 0}

    # -- channels ---------------------------------------------------------------------------------
    def _register(self) -> None:
        st, n_old, n = self.live, self.live.size, len(self.registry)
        if n <= n_old:
            return
        st.ensure(n)
        self.ck.ensure(n)
        for c in range(n_old, n):
            key = self.registry[c]
            prof = self.profile_of(key.site)
            st["site"][c] = self.sites.id_for(key.site)
            st["profile"][c] = self.tiers.profile_index[prof]
            st["group"][c] = self.tiers.group(prof, key.hazard)
            st["sound"][c] = key.hazard in SOUND_LEVEL_HAZARDS

    def profile_of(self, site: str) -> str:
        cfg = self.sites.configs.get(site)
        return cfg.profile if cfg is not None and cfg.profile else self.default_profile

    # -- batches ----------------------------------------------------------------------------------
    def ingest(self, batch: ReadingBatch) -> EngineResult:
        """Judge one batch of readings (any order) and advance the exposure state."""
        self._register()
        if len(batch) == 0:
            return EngineResult(ConditionBatch.empty(), [])
        ch, t, v = _sorted(batch)
        if ch[0] < 0 or ch[-1] >= self.live.size:
            raise ConfigError("reading batch names a channel the registry does not know")
        self.stats["readings"] += ch.shape[0]
        late = self.live["has"][ch] & (t < self.live["t_last"][ch])
        replay, dropped = self._triage(ch, t, late)
        parts, records = [], []
        if dropped.any():
            parts.append(self._levels_only(ch[dropped], t[dropped], v[dropped]))
        keep = ~dropped
        if keep.any():
            cond, records = self._sequence(ch[keep], t[keep], v[keep], replay)
            parts.append(cond)
        parts.append(self.mixtures.conditions(np.unique(ch)))
        self.sites.note_times(self.live["site"][ch], t)
        records += self.closer.close(self.live["seg_end"][: self.live.size] <= self._site_time())
        return EngineResult(merge_conditions(parts), records)

    def _triage(self, ch: I64, t: F64, late: B) -> tuple[I64, B]:
        """Channels to replay from their checkpoint, and late rows too old to replay."""
        if not late.any():
            return np.empty(0, np.int64), np.zeros(ch.shape[0], bool)
        lc = np.unique(ch[late])
        t_min = np.full(self.live.size, np.inf)
        np.minimum.at(t_min, ch[late], t[late])
        ck, live = self.ck, self.live
        # the replay recomputes STEL from its first reading on: the bins must reach its window
        nb = live["bins"].shape[1]
        q = np.minimum(t_min[lc], self._ring_first(lc)) - STEL_WINDOW_S
        in_bins = np.floor(q / BIN_S) >= np.floor(live["t_last"][lc] / BIN_S) - nb + 2
        bins_ok = in_bins | (q >= ck["t_last"][lc])
        ok = ~ck["has"][lc] | ((t_min[lc] >= ck["t_last"][lc]) & bins_ok)
        replay = lc[ok]
        dropped = late & ~np.isin(ch, replay)
        return replay, dropped

    def _ring_first(self, chans: I64) -> F64:
        live = self.live
        head = live["ring_head"][chans]
        out: F64 = np.where(live["ring_n"][chans] > 0, live["ring_t"][chans, head], np.inf)
        return out

    def _levels_only(self, ch: I64, t: F64, v: F64) -> ConditionBatch:
        """Readings too late to replay: judged as instantaneous levels only, and counted."""
        np.add.at(self.live["late"], ch, 1)
        self.stats["late_dropped"] += int(ch.shape[0])
        nan = np.full_like(t, np.nan)
        s = Seq.of(ch, t, v, nan, nan, np.zeros(t.shape[0], bool))
        return conditions_for(self.tiers, self.live, s, Figures())

    def _sequence(self, ch: I64, t: F64, v: F64, replay: I64) -> tuple[ConditionBatch, list[ExposureRecord]]:
        """Merge the rings of replayed channels (restored to their checkpoint), then process."""
        live, new = self.live, np.ones(ch.shape[0], bool)
        emit_from = np.full(live.size, -np.inf)
        if replay.size:
            self.stats["replayed"] += int(replay.size)
            np.minimum.at(emit_from, ch, np.where(np.isin(ch, replay), t, np.inf))
            live.copy_rows(self.ck, replay, track_spec())
            live["dirty"][replay] = True
            rc, rt, rv = ring.take(live, replay)
            order = np.lexsort((np.concatenate((rt, t)), np.concatenate((rc, ch))))
            ch, t, v = (np.concatenate(p)[order] for p in ((rc, ch), (rt, t), (rv, v)))
            new = np.concatenate((np.zeros(rc.shape[0], bool), new))[order]
        seg = self.sites.segments(live["site"][ch], (live["seg_start"][ch], live["seg_end"][ch], live["seg_shift"][ch]), t)
        s = Seq.of(ch, t, v, *seg)
        return self._process(s, new, t >= emit_from[ch] if replay.size else None)

    def _process(self, s: Seq, new: B, emit: B | None) -> tuple[ConditionBatch, list[ExposureRecord]]:
        live = self.live
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
        k.advance(live, s, r, x)
        self._fold(ring.push(live, s, stel, self.reorder_s))
        return cond, records

    def _fold(self, ev: ring.Evicted) -> None:
        """Advance the checkpoint over readings that left the ring (no output)."""
        if len(ev) == 0:
            return
        ck = self.ck
        cached = (ck["seg_start"][ev.ch], ck["seg_end"][ev.ch], ck["seg_shift"][ev.ch])
        s = Seq.of(ev.ch, ev.t, ev.v, *self.sites.segments(self.live["site"][ev.ch], cached, ev.t))
        h = k.holds(ck, self.live, s, self.max_gap_s, self.tiers.dose_floor, self.tiers.noise_param)
        x = k.running_x(ck, s, h)
        k.advance(ck, s, k.runs(ck, s, h, ev.stel), x)

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

    def state_bytes_per_channel(self) -> float:
        """Memory of all per-channel state (live + checkpoint), per allocated channel."""
        return (self.live.nbytes() + self.ck.nbytes()) / max(self.live.capacity, 1)


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

