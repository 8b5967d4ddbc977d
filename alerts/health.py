"""Sensor health → alerts of severity `malfunction` through the `AlertBook`.

- `observe(batch, registry, now_s, seq)` per reading batch (vectorized): `out_of_range`, `stuck`,
  `gap`; any reading of a device clears its `offline` alert.
- `on_status(site, zone, device, payload, t_s, now_s)` per status message: `offline` (state
  offline / Last Will), `interval_s` and `calibrated_on` metadata.
- `check(now_s)` periodically (e.g. with `AlertBook.tick`): `offline` after silence longer than
  k × interval_s, `calibration_due` (31-day default, 30 CFR 75.351(n)).

Per-channel alerts (`out_of_range`, `stuck`) have the channel's hazard; per-device ones
(`offline`, `gap`, `calibration_due`) have hazard `device` (alerts.state.DEVICE_HAZARD).
"""

from __future__ import annotations

import numpy as np

from alerts.health_checks import StuckState, outside_range, seq_gaps, update_stuck
from alerts.health_device import DeviceChecks
from alerts.health_policy import HealthPolicy
from alerts.lifecycle import AlertBook
from alerts.messages import HAZARD_NAME, fmt_duration, with_unit
from alerts.state import AlertSubject
from alerts.types import AlertEvent
from rules.types import CANONICAL_UNIT, I64, ChannelRegistry, Hazard, ReadingBatch, RuleKind

#: At most this many new per-channel alerts from one batch (a broken gateway firmware must not
#: bury the officer); the rest are counted in `counts["range_alerts_capped"]`.
MAX_RAISES_PER_BATCH = 200


class SensorHealth(DeviceChecks):
    """Per-channel (range, stuck) and per-device (offline, gap, calibration) health checks."""

    def __init__(self, book: AlertBook, policy: HealthPolicy | None = None) -> None:
        super().__init__(book, policy or HealthPolicy())
        self._n_ch = 0
        self._dev_of_ch: I64 = np.empty(0, np.int64)
        self._lo, self._hi, self._tol = np.empty(0), np.empty(0), np.empty(0)
        self._stuck_on = np.empty(0, dtype=bool)
        self._open_range = np.empty(0, dtype=bool)
        self._open_stuck = np.empty(0, dtype=bool)
        self._stuck = StuckState.empty()

    def observe(
        self, batch: ReadingBatch, registry: ChannelRegistry, now_s: float, seq: I64 | None = None
    ) -> list[AlertEvent]:
        """Health events caused by one reading batch; `seq[i]` is row i's sequence number or -1."""
        if len(batch) == 0:
            return []
        self._sync(registry)
        events = self._range_check(batch, registry)
        events += self._stuck_check(batch, registry)
        devs = self._dev_of_ch[batch.channel]
        np.fmax.at(self.devices.last_reading_t, devs, batch.t_s)
        t_last = float(batch.t_s.max())
        if seq is not None:
            events += self._gap_check(seq_gaps(self.devices.max_seq, devs, seq, batch.t_s))
        events += self._alive(np.unique(devs), t_last, now_s)
        return events

    def remember(self, batch: ReadingBatch, registry: ChannelRegistry) -> None:
        """Readings stored before a restart (the engine's replay): they tell how recent a status
        message must be to matter; they raise and clear nothing."""
        if len(batch):
            self._sync(registry)
            np.fmax.at(self.devices.last_reading_t, self._dev_of_ch[batch.channel], batch.t_s)

    def _sync(self, registry: ChannelRegistry) -> None:
        """Per-channel lookup arrays for channels added to the registry since the last batch."""
        n = len(registry)
        if n == self._n_ch:
            return
        new = registry.keys[self._n_ch : n]
        p, book = self.policy, self.book
        ranges = [p.sensor_range.get(str(k.hazard), (-np.inf, np.inf)) for k in new]
        subjects = [AlertSubject.of(k) for k in new]
        self._dev_of_ch = np.append(self._dev_of_ch, [self._device(k.site, k.zone, k.device) for k in new])
        self._lo = np.append(self._lo, [r[0] for r in ranges])
        self._hi = np.append(self._hi, [r[1] for r in ranges])
        self._tol = np.append(self._tol, [p.stuck_tolerance.get(str(k.hazard), 0.0) for k in new])
        self._stuck_on = np.append(self._stuck_on, [str(k.hazard) in p.stuck_hazards for k in new])
        self._open_range = np.append(self._open_range, [book.is_open(s, RuleKind.OUT_OF_RANGE) for s in subjects])
        self._open_stuck = np.append(self._open_stuck, [book.is_open(s, RuleKind.STUCK) for s in subjects])
        self._stuck.ensure(n)
        self._n_ch = n

    # ---- out_of_range --------------------------------------------------------------------
    def _range_check(self, b: ReadingBatch, registry: ChannelRegistry) -> list[AlertEvent]:
        bad = outside_range(b.channel, b.value, self._lo, self._hi)
        events: list[AlertEvent] = []
        if bad.any():
            bad_ch, first = np.unique(b.channel[bad], return_index=True)
            rows = np.flatnonzero(bad)[first]
            for ch, i in zip(bad_ch.tolist(), rows.tolist(), strict=True):
                events += self._raise_range(registry, ch, float(b.value[i]), float(b.t_s[i]))
        healed = np.setdiff1d(b.channel[self._open_range[b.channel]], b.channel[bad])
        t = float(b.t_s.max())
        for ch in healed.tolist():
            s = AlertSubject.of(registry[ch])
            text = f"{_name(s.hazard)} at {s.device} reads within the sensor range again"
            events += self.book.clear_health(s, RuleKind.OUT_OF_RANGE, t_s=t, now_s=t, message=text)
            self._open_range[ch] = self.book.is_open(s, RuleKind.OUT_OF_RANGE)
        return events

    def _raise_range(self, registry: ChannelRegistry, ch: int, v: float, t: float) -> list[AlertEvent]:
        key = registry[ch]
        unit = CANONICAL_UNIT[Hazard(key.hazard)]
        lo, hi = float(self._lo[ch]), float(self._hi[ch])
        msg = (
            f"{_name(key.hazard)} reading {with_unit(v, unit)} at {key.device} is outside the sensor "
            f"range {with_unit(lo, unit)} to {with_unit(hi, unit)}"
        )
        self._open_range[ch] = True
        return self.book.raise_health(
            AlertSubject.of(key), RuleKind.OUT_OF_RANGE, t_s=t, now_s=t, message=msg, value=v,
            threshold=hi if v > hi else lo, unit=unit,
        )  # fmt: skip

    # ---- stuck -----------------------------------------------------------------------------
    def _stuck_check(self, b: ReadingBatch, registry: ChannelRegistry) -> list[AlertEvent]:
        seen = update_stuck(self._stuck, b.channel, b.t_s, b.value, self._tol)
        st = self._stuck
        flat = self._stuck_on[seen] & (st.last_t[seen] - st.changed_t[seen] >= self.policy.stuck_after_s)
        stuck, varies = seen[flat & ~self._open_stuck[seen]], seen[~flat & self._open_stuck[seen]]
        events: list[AlertEvent] = []
        for ch in stuck.tolist()[:MAX_RAISES_PER_BATCH]:
            key, t = registry[ch], float(st.last_t[ch])
            unit = CANONICAL_UNIT[Hazard(key.hazard)]
            msg = (
                f"{_name(key.hazard)} at {key.device} has read {with_unit(float(st.ref[ch]), unit)} "
                f"without any change for {fmt_duration(t - float(st.changed_t[ch]))}"
            )
            events += self.book.raise_health(
                AlertSubject.of(key),
                RuleKind.STUCK,
                t_s=t,
                now_s=t,
                message=msg,
                value=float(st.ref[ch]),
                unit=unit,
            )
            self._open_stuck[ch] = True
        for ch in varies.tolist():
            s, t = AlertSubject.of(registry[ch]), float(st.changed_t[ch])
            text = f"{_name(s.hazard)} at {s.device} varies again"
            events += self.book.clear_health(s, RuleKind.STUCK, t_s=t, now_s=t, message=text)
            self._open_stuck[ch] = self.book.is_open(s, RuleKind.STUCK)
        return events


def _name(hazard: str) -> str:
    return HAZARD_NAME.get(hazard, hazard)
