"""One device's messages for a stretch of event time: numpy values in, JSON payloads out.

A device reports at `start + phase + k * period` (k = 0, 1, ...). Point devices (single and
multi-hazard shapes) read every hazard at that instant; series devices publish, at the time of
the last sample, the `period / sample` samples of the window that began `period - sample`
earlier. `seq` counts the device's messages: `k * messages_per_tick + j`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulators.baseline import BOOL, F64, I64, ChannelModel
from simulators.incidents import Incident
from simulators.layout import Channel, Device, Shape
from simulators.messages import (
    SimMessage,
    multi_payloads,
    rfc3339,
    series_payload,
    series_t_payload,
    single_payloads,
)

_PEAK_OVER_LAEQ_DB = (18.0, 26.0)  # C-weighted peak above the loudest LAeq of the batch (impacts)
_PEAK_MAX_DBC = 140.0


@dataclass(frozen=True, slots=True)
class Emitter:
    device: Device
    models: tuple[ChannelModel, ...]
    incidents: tuple[Incident, ...]
    silent: tuple[tuple[float, float], ...]  # absolute event-time spans with no messages
    start_s: float
    end_s: float
    period_s: float
    sample_s: float
    phase_s: float
    seed: int
    topic: str
    as_series: bool = False  # one series message per hazard per period (dust, noise; gas with gas_series_s)

    @property
    def channels(self) -> tuple[Channel, ...]:
        return self.device.spec.channels

    def emit(self, c0: float, c1: float, chunk: int) -> tuple[list[SimMessage], list[float]]:
        """Messages due in [c0, c1) and their event times."""
        ks, due = self._ticks(c0, c1)
        if ks.size == 0:
            return [], []
        if self.as_series:
            msgs = self._series(ks, due, chunk)
        else:
            msgs = self._point(ks, due, chunk)
        return msgs, [m.t_s for m in msgs]

    def _ticks(self, c0: float, c1: float) -> tuple[I64, F64]:
        base = self.start_s + self.phase_s + self.period_s - self.sample_s
        k_lo = max(0, math.floor((c0 - base) / self.period_s))
        k_hi = max(k_lo, math.ceil((c1 - base) / self.period_s) + 1)
        ks = np.arange(k_lo, k_hi, dtype=np.int64)
        due = np.asarray(np.round(base + ks * self.period_s, 3), np.float64)
        keep = (due >= c0) & (due < c1) & (due < self.end_s) & ~self._silenced(due)
        return ks[keep], due[keep]

    def _silenced(self, t: F64) -> BOOL:
        out = np.zeros(t.shape, np.bool_)
        for a, b in self.silent:
            out |= (t >= a) & (t < b)
        return out

    def _values(self, c: int, t: F64, chunk: int) -> F64:
        """Channel `c` at times `t` in canonical units: baseline, noise, incidents, clipped."""
        rng = np.random.default_rng([self.seed, self.device.index, c, chunk])
        model = self.models[c]
        v = model.sample(t, rng)
        for inc in self.incidents:
            inc.apply(self.channels[c].hazard, t - (self.start_s + inc.at_s), v, rng)
        return model.clip(v)

    def _wire(self, c: int, canonical: F64) -> F64:
        ch = self.channels[c]
        return np.asarray(np.round(canonical * ch.per_canonical, ch.decimals), np.float64)

    def _point(self, ks: I64, due: F64, chunk: int) -> list[SimMessage]:
        shape = self.device.spec.shape
        times: list[float | str]
        times = [rfc3339(t) for t in due.tolist()] if shape is Shape.MULTI_RFC3339 else list(due.tolist())
        columns = [self._wire(c, self._values(c, due, chunk)).tolist() for c in range(len(self.channels))]
        seqs = ks.tolist()
        worker = self.device.worker
        if shape is Shape.SINGLE:
            ch = self.channels[0]
            payloads = single_payloads(times, ch.hazard, ch.unit, columns[0], seqs, worker)
        else:
            pairs = [(ch.hazard, ch.unit) for ch in self.channels]
            payloads = multi_payloads(times, pairs, columns, seqs, worker)
        return [SimMessage(self.topic, p, t) for p, t in zip(payloads, due.tolist(), strict=True)]

    def _series(self, ks: I64, due: F64, chunk: int) -> list[SimMessage]:
        """Per tick, one series message per measured hazard, then the derived noise peak."""
        n = round(self.period_s / self.sample_s)
        starts = due - (self.period_s - self.sample_s)
        t = np.asarray(np.round(starts[:, None] + np.arange(n) * self.sample_s, 3), np.float64)
        first = _first_kept(self._silenced(t.ravel()).reshape(t.shape))
        seq0 = ks * len(self.channels)
        columns: list[list[bytes]] = []
        laeq: F64 = np.empty(0)
        for c, ch in enumerate(self.channels):
            seqs = (seq0 + c).tolist()
            if ch.hazard == "noise_peak":  # follows the noise channel it is derived from
                peaks = self._peaks(c, laeq, first, chunk).tolist()
                columns.append(single_payloads(due.tolist(), ch.hazard, ch.unit, peaks, seqs, self.device.worker))
                continue
            laeq = self._values(c, t.ravel(), chunk).reshape(t.shape)
            columns.append(self._series_payloads(c, t, first, laeq, seqs))
        due_l = due.tolist()
        return [SimMessage(self.topic, col[i], due_l[i]) for i in range(len(due_l)) for col in columns]

    def _series_payloads(self, c: int, t: F64, first: I64, canon: F64, seqs: list[int]) -> list[bytes]:
        """One series payload per row of `t`, from its first kept sample on."""
        ch, worker = self.channels[c], self.device.worker
        rows, t_rows, starts = self._wire(c, canon).tolist(), t.tolist(), first.tolist()
        table = zip(t_rows, rows, starts, seqs, strict=True)
        if self.device.spec.shape is Shape.SERIES_T:
            return [series_t_payload(ch.hazard, ch.unit, tr[f:], vr[f:], s, worker) for tr, vr, f, s in table]
        dt = self.sample_s
        return [series_payload(ch.hazard, ch.unit, tr[f], dt, vr[f:], s, worker) for tr, vr, f, s in table]

    def _peaks(self, c: int, laeq: F64, first: I64, chunk: int) -> F64:
        """C-weighted peak per batch: loudest kept LAeq plus an impact margin (dBC)."""
        rng = np.random.default_rng([self.seed, self.device.index, c, chunk])
        kept = np.arange(laeq.shape[1])[None, :] >= first[:, None]
        loudest = np.where(kept, laeq, -np.inf).max(axis=1)
        peak = np.clip(loudest + rng.uniform(*_PEAK_OVER_LAEQ_DB, loudest.shape), 0.0, _PEAK_MAX_DBC)
        return self._wire(c, peak)


def _first_kept(silenced: BOOL) -> I64:
    """Per row, the first sample after the last silenced one (0 when none is silenced)."""
    n = silenced.shape[1]
    last = n - 1 - np.argmax(silenced[:, ::-1], axis=1)
    return np.asarray(np.where(silenced.any(axis=1), last + 1, 0), np.int64)
