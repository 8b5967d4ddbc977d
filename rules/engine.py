"""ExposureEngine: readings in, rule evaluations and shift exposure records out (SPEC §3).

Pure: no I/O, no clock (`tick(now_s)` is told the time). State is columnar (rules/state.py);
the per-reading work is vectorized in rules/kernel.py. Python loops run only over rare
events: shift closures and sites.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from rules import kernel as k
from rules.conditions import conditions_for, merge_conditions
from rules.errors import ConfigError
from rules.profiles import ProfileBook, SiteConfig
from rules.records import SegmentTotals, limits_of, make_record
from rules.results import ConditionBatch, EngineResult, ExposureRecord
from rules.shifts import ShiftCalendar
from rules.state import NQ, ChannelState
from rules.tiers import TierTable
from rules.types import F64, I64, SOUND_LEVEL_HAZARDS, ChannelRegistry, ReadingBatch

#: Longest allowed max_gap: a hold must never span a whole segment (shifts are >= 1 h).
_MAX_GAP_LIMIT_S = 3600.0


@dataclass(slots=True)
class _Sites:
    configs: dict[str, SiteConfig]
    index: dict[str, int] = field(default_factory=dict)
    calendars: list[ShiftCalendar] = field(default_factory=list)
    max_t: list[float] = field(default_factory=list)

    def id_for(self, name: str) -> int:
        found = self.index.get(name)
        if found is None:
            found = len(self.calendars)
            self.index[name] = found
            self.calendars.append(ShiftCalendar(self.configs.get(name) or SiteConfig(name)))
            self.max_t.append(-np.inf)
        return found


class ExposureEngine:
    """See the module docstring and docs/exposure.md for the exact semantics."""

    def __init__(
        self,
        book: ProfileBook,
        default_profile: str,
        sites: Mapping[str, SiteConfig] | None = None,
        *,
        max_gap_s: float = 60.0,
        grace_s: float = 300.0,
        registry: ChannelRegistry | None = None,
    ) -> None:
        if not 0.0 < max_gap_s <= _MAX_GAP_LIMIT_S:
            raise ConfigError(f"max_gap_s must be > 0 and <= {_MAX_GAP_LIMIT_S:g} s, got {max_gap_s}")
        if grace_s < 0:
            raise ConfigError(f"grace_s must be >= 0, got {grace_s}")
        self.book = book
        self.default_profile = book.profile(default_profile).name
        for site in (sites or {}).values():
            if site.profile is not None:
                book.profile(site.profile)
        self.sites = _Sites(dict(sites or {}))
        self.max_gap_s, self.grace_s = float(max_gap_s), float(grace_s)
        self.registry = registry if registry is not None else ChannelRegistry()
        self.tiers = TierTable.compile(book)
        self.state = ChannelState.empty()
        self.stats = {"readings": 0, "late_dropped": 0}
        self._limits_cache: dict[tuple[str, str], dict[str, float]] = {}

    # -- channels ---------------------------------------------------------------------------------
    def _register(self) -> None:
        st, n_old, n = self.state, self.state.size, len(self.registry)
        if n <= n_old:
            return
        st.ensure(n)
        for c in range(n_old, n):
            key = self.registry[c]
            site = self.sites.id_for(key.site)
            prof = self._profile_of(key.site)
            st["site"][c] = site
            st["profile"][c] = self.tiers.profile_index[prof]
            st["group"][c] = self.tiers.group(prof, key.hazard)
            st["sound"][c] = key.hazard in SOUND_LEVEL_HAZARDS

    def _profile_of(self, site: str) -> str:
        cfg = self.sites.configs.get(site)
        return cfg.profile if cfg is not None and cfg.profile else self.default_profile

    # -- batches ----------------------------------------------------------------------------------
    def ingest(self, batch: ReadingBatch) -> EngineResult:
        """Judge one batch of readings (any order) and advance the exposure state."""
        self._register()
        if len(batch) == 0:
            return EngineResult(ConditionBatch.empty(), [])
        if int(batch.channel.max()) >= self.state.size or int(batch.channel.min()) < 0:
            raise ConfigError("reading batch names a channel the registry does not know")
        ch, t, v = _sorted(batch)
        self.stats["readings"] += ch.shape[0]
        st = self.state
        late = st["has"][ch] & (t < st["t_last"][ch])
        parts: list[ConditionBatch] = []
        records: list[ExposureRecord] = []
        if late.any():
            parts.append(self._late(ch[late], t[late], v[late]))
            ch, t, v = ch[~late], t[~late], v[~late]
        if ch.shape[0]:
            parts.append(self._in_order(ch, t, v, records))
        self._note_site_time(ch, t)
        records += self._close_where(st["seg_end"][: st.size] <= self._site_time(), final=True)
        return EngineResult(merge_conditions(parts), records)

    def _late(self, ch: I64, t: F64, v: F64) -> ConditionBatch:
        """Readings older than the channel's open reading: judged as levels only, counted."""
        np.add.at(self.state["late"], ch, 1)
        self.stats["late_dropped"] += int(ch.shape[0])
        s = k.Seq.of(ch, t, v, np.full_like(t, np.nan), np.full_like(t, np.nan))
        return conditions_for(self.tiers, self.state, s, stel=None, running=None, shift=None, only_level=True)

    def _in_order(self, ch: I64, t: F64, v: F64, records: list[ExposureRecord]) -> ConditionBatch:
        st = self.state
        seg_s, seg_e, is_shift = self._segments(ch, t)
        s = k.Seq.of(ch, t, v, seg_s, seg_e)
        h = k.holds(st, s, self.max_gap_s, self.tiers.dose_floor, self.tiers.noise_param)
        x = k.running_x(st, s, h)
        gas = ~st["sound"][ch]
        stel = k.stel(st, s, x, gas, self.max_gap_s)
        r = k.runs(st, s, h, stel)
        cond = conditions_for(
            self.tiers, st, s, stel=stel, running=r.running, shift=is_shift, only_level=False
        )
        records += self._closures(s, h, r, is_shift)
        self._advance(s, r, x, gas, is_shift)
        return cond

    def _segments(self, ch: I64, t: F64) -> tuple[F64, F64, np.ndarray]:
        """Segment (start, end, is-shift) of each reading; cached per channel, else per site."""
        st = self.state
        seg_s, seg_e = st["seg_start"][ch], st["seg_end"][ch]
        is_shift = st["seg_shift"][ch]
        miss = ~((t >= seg_s) & (t < seg_e))
        if miss.any():
            sites = st["site"][ch]
            for site in np.unique(sites[miss]).tolist():
                m = miss & (sites == site)
                cal = self.sites.calendars[site]
                i = cal.locate(t[m])
                seg_s[m], seg_e[m] = cal.starts[i], cal.ends[i]
                is_shift[m] = cal.is_shift[i]
        return seg_s, seg_e, is_shift

    def _advance(self, s: k.Seq, r: k.Runs, x: F64, gas: np.ndarray, is_shift: np.ndarray) -> None:
        """New state: each channel's last run becomes its current segment; open reading moves on."""
        st, ends = self.state, s.ends
        last = np.flatnonzero(r.last)
        c = r.chan[last]
        fresh = ~r.cont[last]
        row0 = r.start[last]
        st["dirty"][c] = ~fresh & (st["dirty"][c] | st["closed"][c])
        st["closed"][c] &= ~fresh
        st["seg_start"][c], st["seg_end"][c], st["seg_shift"][c] = (
            s.seg_s[row0],
            s.seg_e[row0],
            is_shift[row0],
        )
        st["acc"][c] = r.sums[last]
        st["peak"][c], st["stel_max"][c] = r.peak[last], r.stel_max[last]
        st["silence_max"][c], st["n"][c] = r.silence_max[last], r.n[last]
        k.write_bins(st, s, x, np.flatnonzero(gas[s.starts]), self.max_gap_s)
        st["t_last"][s.chans], st["v_last"][s.chans] = s.t[ends - 1], s.v[ends - 1]
        st["x_last"][s.chans] = x[ends - 1]
        st["has"][s.chans] = True

    # -- shift closures ---------------------------------------------------------------------------
    def _closures(self, s: k.Seq, h: k.Holds, r: k.Runs, is_shift: np.ndarray) -> list[ExposureRecord]:
        """Final records of segments a batch moves past: the channel's current one, and any run
        that is not its channel's last (a batch spanning several shifts)."""
        st, out = self.state, []
        first_runs = np.flatnonzero(np.append(True, r.chan[1:] != r.chan[:-1]))
        leaving = first_runs[~r.cont[first_runs] & st["has"][r.chan[first_runs]]]
        for run in leaving.tolist():
            c, row = int(r.chan[run]), int(r.start[run])
            if st["seg_shift"][c] and (not st["closed"][c] or st["dirty"][c]):
                out.append(self._record(c, self._state_totals(c, h.old[row], float(h.trailing[row])), True))
        for run in np.flatnonzero(~r.last).tolist():
            row, nxt = int(r.start[run]), int(r.start[run + 1])
            if is_shift[row]:
                silence = max(float(r.silence_max[run]), float(h.trailing[nxt]))
                totals = self._totals(
                    float(s.seg_s[row]), float(s.seg_e[row]), r.sums[run] + h.old[nxt], float(r.peak[run]),
                    float(r.stel_max[run]), silence, int(r.n[run]), int(st["site"][int(r.chan[run])]),
                )  # fmt: skip
                out.append(self._record(int(r.chan[run]), totals, True))
        return out

    def _state_totals(self, c: int, extra: F64, trailing: float) -> SegmentTotals:
        st = self.state
        silence = max(float(st["silence_max"][c]), trailing)
        return self._totals(
            float(st["seg_start"][c]), float(st["seg_end"][c]), st["acc"][c] + extra, float(st["peak"][c]),
            float(st["stel_max"][c]), silence, int(st["n"][c]), int(st["site"][c]),
        )  # fmt: skip

    def _totals(
        self, start: float, end: float, acc: F64, peak: float, stel: float, silence: float, n: int, site: int
    ) -> SegmentTotals:
        label = self.sites.calendars[site].segment_at(start).label
        return SegmentTotals(start, end, label, tuple(float(a) for a in acc), peak, stel, silence, n)

    def _record(self, c: int, totals: SegmentTotals, final: bool) -> ExposureRecord:
        key = self.registry[c]
        profile = self._profile_of(key.site)
        lk = (profile, str(key.hazard))
        if lk not in self._limits_cache:
            self._limits_cache[lk] = limits_of(self.book, profile, key.hazard)
        return make_record(key, totals, profile, self._limits_cache[lk], final)

    def _open_hold(self, c: I64) -> tuple[F64, F64]:
        """Integrals of each channel's open reading held to min(t + max_gap, segment end), and
        the silence left after it up to the segment end."""
        st = self.state
        t, end = st["t_last"][c], st["seg_end"][c]
        stop = np.minimum(t + self.max_gap_s, end)
        w = k.weights(st, c, st["v_last"][c], self.tiers.dose_floor, self.tiers.noise_param)
        return np.maximum(stop - t, 0.0)[:, None] * w, np.maximum(end - stop, 0.0)

    def _close_where(self, mask: np.ndarray, *, final: bool) -> list[ExposureRecord]:
        """Records of current shift segments selected by `mask`, with the open hold included."""
        st = self.state
        n = st.size
        pick = mask[:n] & st["has"][:n] & st["seg_shift"][:n]
        if final:
            pick &= ~st["closed"][:n] | st["dirty"][:n]
        chans = np.flatnonzero(pick)
        if chans.size == 0:
            return []
        extra, trailing = self._open_hold(chans)
        out = [
            self._record(c, self._state_totals(c, extra[j], float(trailing[j])), final)
            for j, c in enumerate(chans.tolist())
        ]
        if final:
            st["closed"][chans], st["dirty"][chans] = True, False
        return out

    def _note_site_time(self, ch: I64, t: F64) -> None:
        if ch.shape[0] == 0:
            return
        sites = self.state["site"][ch]
        site_max = np.full(len(self.sites.calendars), -np.inf)
        np.maximum.at(site_max, sites, t)
        for i, m in enumerate(site_max.tolist()):
            self.sites.max_t[i] = max(self.sites.max_t[i], m)

    def _site_time(self) -> F64:
        """Latest event time seen per channel's site (a shift closes once its site moves past)."""
        per_site = np.asarray(self.sites.max_t, dtype=np.float64)
        return (
            per_site[self.state["site"][: self.state.size]]
            if per_site.size
            else np.full(self.state.size, -np.inf)
        )

    # -- clock and queries ------------------------------------------------------------------------
    def tick(self, now_s: float) -> EngineResult:
        """Close every shift whose end + grace has passed on the wall clock `now_s`."""
        st = self.state
        due = st["seg_end"][: st.size] + self.grace_s <= now_s
        return EngineResult(ConditionBatch.empty(), self._close_where(due, final=True))

    def running(self, channel: int) -> ExposureRecord | None:
        """Shift-to-date exposure of one channel at its latest reading (final=False)."""
        st = self.state
        if not (0 <= channel < st.size) or not st["has"][channel] or not st["seg_shift"][channel]:
            return None
        return self._record(channel, self._state_totals(channel, np.zeros(NQ), 0.0), False)

    def state_bytes_per_channel(self) -> float:
        return self.state.nbytes_per_channel()


def _sorted(batch: ReadingBatch) -> tuple[I64, F64, F64]:
    """Readings ordered by (channel, event time); ties keep arrival order (the later one holds)."""
    ch = np.asarray(batch.channel, dtype=np.int64)
    t = np.asarray(batch.t_s, dtype=np.float64)
    v = np.asarray(batch.value, dtype=np.float64)
    n = ch.shape[0]
    if n > 1:
        d = np.diff(ch)
        if not ((d > 0) | ((d == 0) & (np.diff(t) >= 0))).all():
            order = np.lexsort((t, ch))
            ch, t, v = ch[order], t[order], v[order]
    return ch, t, v
