"""Shift closures: the final ExposureRecord of a channel's shift, and running (shift-to-date) ones.

A shift closes for a channel when a reading of that channel lands in a later segment, when a
reading of its site is past the shift's end, or when the wall clock passes end + grace. A
closed shift that receives (late) data again is *dirty* and is closed again: the record is
re-emitted with the same shift id, so a store that overwrites by (series, shift) keeps the last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from rules import kernel as k
from rules.records import SegmentTotals, limits_of, make_record, twa_averaging
from rules.results import Averaging, ExposureRecord
from rules.state import NQ
from rules.types import F64

if TYPE_CHECKING:
    from rules.engine import ExposureEngine

B = np.ndarray[Any, np.dtype[np.bool_]]


class Closer:
    def __init__(self, engine: ExposureEngine) -> None:
        self.e = engine
        self._limits: dict[tuple[str, str], tuple[dict[str, float], Averaging]] = {}

    def leaving(self, s: k.Seq, h: k.Holds, r: k.Runs) -> list[ExposureRecord]:
        """Final records of segments a sequence moves past: the channel's current one (unless
        already closed and unchanged), and every run that is not its channel's last."""
        st, out = self.e.live, []
        where_left = dict(zip(h.leave.tolist(), range(h.leave.shape[0]), strict=True))
        first = np.flatnonzero(np.append(True, r.chan[1:] != r.chan[:-1]))
        for run in first[~r.cont[first] & st["has"][r.chan[first]]].tolist():
            c, j = int(r.chan[run]), where_left[int(r.start[run])]
            if st["seg_shift"][c] and (not st["closed"][c] or st["dirty"][c]):
                out.append(self.record(c, self._state_totals(c, h.old[j], float(h.trailing[j])), True))
        for run in np.flatnonzero(~r.last).tolist():
            row, j = int(r.start[run]), where_left[int(r.start[run + 1])]
            if s.shift[row]:
                c, start = int(r.chan[run]), float(s.seg_s[row])
                totals = SegmentTotals(
                    start, float(s.seg_e[row]), self.e.sites.label(int(st["site"][c]), start),
                    tuple((r.sums[run] + h.old[j]).tolist()), float(r.peak[run]), float(r.stel_max[run]),
                    max(float(r.silence_max[run]), float(h.trailing[j])), int(r.n[run]),
                )  # fmt: skip
                out.append(self.record(c, totals, True))
        return out

    def carry_flags(self, r: k.Runs) -> None:
        """Closure flags for each channel's new current segment (call before `kernel.advance`)."""
        st = self.e.live
        last = np.flatnonzero(r.last)
        c, fresh = r.chan[last], ~r.cont[last]
        st["dirty"][c] = ~fresh & (st["dirty"][c] | st["closed"][c])
        st["closed"][c] &= ~fresh

    def close(self, mask: B) -> list[ExposureRecord]:
        """Final records of current shift segments selected by `mask` (open or dirty ones),
        with each channel's open reading held to min(t + max_gap, shift end)."""
        st = self.e.live
        n = st.size
        pick = mask[:n] & st["has"][:n] & st["seg_shift"][:n] & (~st["closed"][:n] | st["dirty"][:n])
        chans = np.flatnonzero(pick)
        if chans.size == 0:
            return []
        extra, trailing = self._open_hold(chans)
        out = [
            self.record(c, self._state_totals(c, extra[j], float(trailing[j])), True)
            for j, c in enumerate(chans.tolist())
        ]
        st["closed"][chans], st["dirty"][chans] = True, False
        return out

    def running(self, c: int) -> ExposureRecord | None:
        st = self.e.live
        if not (0 <= c < st.size) or not st["has"][c] or not st["seg_shift"][c]:
            return None
        return self.record(c, self._state_totals(c, np.zeros(NQ), 0.0), False)

    def _open_hold(self, c: Any) -> tuple[F64, F64]:
        st, tiers = self.e.live, self.e.tiers
        t, end = st["t_last"][c], st["seg_end"][c]
        stop = np.minimum(t + self.e.max_gap_s, end)
        w = k.weights(st, c, st["v_last"][c], tiers.dose_floor, tiers.noise_param)
        return np.maximum(stop - t, 0.0)[:, None] * w, np.maximum(end - stop, 0.0)

    def _state_totals(self, c: int, extra: F64, trailing: float) -> SegmentTotals:
        st = self.e.live
        start = float(st["seg_start"][c])
        return SegmentTotals(
            start, float(st["seg_end"][c]), self.e.sites.label(int(st["site"][c]), start),
            tuple((st["acc"][c] + extra).tolist()), float(st["peak"][c]), float(st["stel_max"][c]),
            max(float(st["silence_max"][c]), trailing), int(st["n"][c]),
        )  # fmt: skip

    def record(self, c: int, totals: SegmentTotals, final: bool) -> ExposureRecord:
        key = self.e.registry[c]
        profile = self.e.profile_of(key.site)
        lk = (profile, str(key.hazard))
        if lk not in self._limits:
            book = self.e.book
            self._limits[lk] = (limits_of(book, profile, key.hazard), twa_averaging(book, profile, key.hazard))
        limits, averaging = self._limits[lk]
        return make_record(key, totals, profile, limits, final, averaging)
