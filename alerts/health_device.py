"""Per-device health checks: offline (status / Last Will and silence), sequence gaps, calibration."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from alerts.health_checks import SeqGap
from alerts.health_meta import DATE_AHEAD_S, DAY_S, DeviceTable, parse_calibration, status_time
from alerts.health_policy import HealthPolicy
from alerts.health_storm import OfflineGroups, member_id
from alerts.lifecycle import AlertBook
from alerts.messages import fmt_duration
from alerts.types import AlertEvent
from rules.types import I64, RuleKind

OFFLINE, GAP, CAL = RuleKind.OFFLINE, RuleKind.GAP, RuleKind.CALIBRATION_DUE


class DeviceChecks:
    """Device-level state and checks; `SensorHealth` adds the per-channel ones."""

    def __init__(self, book: AlertBook, policy: HealthPolicy) -> None:
        self.book = book
        self.policy = policy
        self.devices = DeviceTable()
        self.counts: Counter[str] = Counter()
        self.groups = OfflineGroups(book, policy.storm_devices, policy.storm_window_s)
        #: Digest of the last status message applied per device, kept in the checkpoint: the
        #: same retained message delivered again when the gateway re-subscribes is old news.
        self.status_seen: dict[tuple[str, str, str], str] = {}
        self.silence_paused = False  # the gateway's own intake is behind: silence proves nothing
        self._silence_floor_s = -np.inf  # silence is counted from here at the earliest

    def pause_silence(self) -> None:
        """Stop calling devices silent: the gateway, not the devices, is behind (gateway/intake.py)."""
        self.silence_paused = True

    def resume_silence(self, now_s: float) -> None:
        """The gateway caught up: count silence again, but not the time it was behind."""
        self.silence_paused = False
        self._silence_floor_s = now_s

    def _device(self, site: str, zone: str, device: str) -> int:
        """Device id; a new device takes over alerts left open by a restored alert book."""
        d, before = self.devices, len(self.devices)
        dev = d.index(site, zone, device)
        if len(d) > before:
            subject = d.subjects[dev]
            d.offline[dev] = self.book.is_open(subject, OFFLINE) or self.groups.is_member(site, zone, device)
            d.cal_open[dev] = self.book.is_open(subject, CAL)
            gap = self.book.open_alert(subject, GAP)
            if gap is not None:
                d.gap_last_t[dev], d.gap_missing[dev] = gap.last_t_s, int(gap.value or 0)
        return dev

    # ---- status topic --------------------------------------------------------------------
    def on_status(
        self,
        site: str,
        zone: str,
        device: str,
        payload: Mapping[str, Any],
        t_s: float,
        now_s: float,
        *,
        retained: bool = False,
    ) -> list[AlertEvent]:
        """A (retained) status message: `{"state": "online"|"offline", "interval_s", "calibrated_on", "t"}`.

        A status may only worsen health on its own word: `offline` raises the offline alert,
        `online` never clears one (readings do). A status older than what the gateway already
        knows of the device (its time stamp `t` before the device's newest reading or status),
        or a retained message already applied before a restart (`status_seen`), changes
        nothing: it is a stale retained message (issue 13)."""
        d = self.devices
        dev = self._device(site, zone, device)
        if np.isnan(d.last_seen_wall[dev]):
            d.last_seen_wall[dev] = now_s  # the silence clock starts; a status is no sign of life after that
        if self._stale(dev, payload):
            self.counts["stale_status"] += 1
            return []
        self._set_interval(dev, payload.get("interval_s"))
        if "calibrated_on" in payload:
            self._set_calibration(dev, payload["calibrated_on"], now_s)
        digest = status_digest(payload)
        if retained and digest == self.status_seen.get((site, zone, device)):
            self.counts["stale_status"] += 1  # applied before a restart: its metadata, not its state
            return self._calibration(np.array([dev]), now_s)
        self.status_seen[(site, zone, device)] = digest
        state = payload.get("state")
        events: list[AlertEvent] = []
        if state == "offline":
            text = f"{device} reported offline (status topic / Last Will)"
            if not d.offline[dev]:
                subject = d.subjects[dev]
                events += self._offline(
                    [dev],
                    t_s,
                    now_s,
                    lambda _: self.book.raise_health(subject, OFFLINE, t_s=t_s, now_s=now_s, message=text),
                )
        return events + self._calibration(np.array([dev]), now_s)

    def status_seen_json(self) -> list[list[str]]:
        return [[*k, v] for k, v in self.status_seen.items()]

    def restore_status_seen(self, rows: Any) -> None:
        """From `status_seen_json()` in a checkpoint; anything malformed is skipped (a cache)."""
        for r in rows if isinstance(rows, list) else []:
            if isinstance(r, list) and len(r) == 4 and all(isinstance(x, str) for x in r):
                self.status_seen[(r[0], r[1], r[2])] = r[3]

    def _stale(self, dev: int, payload: Mapping[str, Any]) -> bool:
        d = self.devices
        try:
            t = status_time(payload)
        except ValueError:
            return False
        if t is None:
            return False
        known = np.fmax(d.last_reading_t[dev], d.last_status_t[dev])
        if not np.isnan(known) and t < known:
            return True
        d.last_status_t[dev] = t
        return False

    def _set_interval(self, dev: int, interval: Any) -> None:
        p = self.policy
        if interval is None:
            return
        if isinstance(interval, int | float) and not isinstance(interval, bool):
            if p.interval_min_s <= interval <= p.interval_max_s:
                self.devices.interval_s[dev] = float(interval)
                return
        self.counts["bad_interval_s"] += 1

    def _set_calibration(self, dev: int, raw: Any, now_s: float) -> None:
        try:
            cal = parse_calibration(raw)
        except ValueError:
            self.counts["bad_calibrated_on"] += 1
            return
        if any(t > now_s + DATE_AHEAD_S for t in cal.values()):
            self.counts["bad_calibrated_on"] += 1  # a calibration in the future: ignored
            return
        self.devices.calibrated[dev] = cal
        self.devices.cal_due_s[dev] = min(cal.values()) + self.policy.calibration_days * DAY_S

    def _back_online(self, dev: int, t_s: float, now_s: float, text: str) -> list[AlertEvent]:
        d = self.devices
        s = d.subjects[dev]
        events = self.groups.back(s.site, s.zone, s.device, t_s, now_s)
        events += self.book.clear_health(s, OFFLINE, t_s=t_s, now_s=now_s, message=text)
        d.offline[dev] = self.book.is_open(s, OFFLINE)
        return events

    def _offline(
        self, devs: Sequence[int], t_s: float, now_s: float, raise_one: Callable[[int], list[AlertEvent]]
    ) -> list[AlertEvent]:
        """Devices that went offline: one alert each, or, when many of a site fail together,
        one site-level alert for them all (alerts/health_storm.py)."""
        d = self.devices
        by_site: dict[str, list[int]] = {}
        for dev in devs:
            by_site.setdefault(d.subjects[dev].site, []).append(dev)
        events: list[AlertEvent] = []
        for site, group in by_site.items():
            d.offline[group] = True
            if self.groups.fold_now(site, len(group), now_s):
                members = [member_id(d.subjects[dev].zone, d.subjects[dev].device) for dev in group]
                events += self.groups.fold(site, members, t_s, now_s)
                self.counts["offline_grouped"] += len(group)
                continue
            for dev in group:
                events += raise_one(dev)
        return events

    # ---- readings --------------------------------------------------------------------------
    def _alive(self, devs: I64, t_last: float, now_s: float) -> list[AlertEvent]:
        """Devices that just sent readings: clear `offline`, end `gap` episodes that are over."""
        d = self.devices
        d.last_seen_wall[devs] = now_s
        events: list[AlertEvent] = []
        if self.groups.lost:
            for site in {d.subjects[dev].site for dev in devs.tolist()} & self.groups.lost:
                events += self.groups.recovered(site, t_last, now_s)
        for dev in devs[d.offline[devs]].tolist():
            events += self._back_online(dev, t_last, now_s, f"{d.subjects[dev].device} is sending readings again")
        gap_t = d.gap_last_t[devs]
        for dev in devs[~np.isnan(gap_t) & (t_last - gap_t >= self.policy.gap_clear_s)].tolist():
            subject = d.subjects[dev]
            text = f"{subject.device}: no readings missing for {fmt_duration(self.policy.gap_clear_s)}"
            events += self.book.clear_health(subject, GAP, t_s=t_last, now_s=now_s, message=text)
            if not self.book.is_open(subject, GAP):
                d.gap_last_t[dev], d.gap_missing[dev] = np.nan, 0
        return events

    def _gap_check(self, gaps: list[SeqGap]) -> list[AlertEvent]:
        d = self.devices
        events: list[AlertEvent] = []
        for g in gaps:
            total = g.missing + (0 if np.isnan(d.gap_last_t[g.device]) else int(d.gap_missing[g.device]))
            d.gap_last_t[g.device], d.gap_missing[g.device] = g.t_s, total
            subject = d.subjects[g.device]
            text = f"{subject.device}: {g.missing} reading(s) missing (sequence numbers skipped from {g.first_missing})"
            events += self.book.raise_health(
                subject, GAP, t_s=g.t_s, now_s=g.t_s, message=text, value=float(total), unit="readings"
            )
            self.counts["seq_missing"] += g.missing
        return events

    # ---- periodic --------------------------------------------------------------------------
    def check(self, now_s: float) -> list[AlertEvent]:
        """Silence (offline) and calibration checks for every known device."""
        d, p = self.devices, self.policy
        if len(d) == 0:
            return []
        interval = np.where(np.isnan(d.interval_s), p.default_interval_s, d.interval_s)
        limit = np.maximum(p.offline_k * interval, p.min_silence_s)
        silent_s = now_s - np.maximum(d.last_seen_wall, self._silence_floor_s)

        def raise_one(dev: int) -> list[AlertEvent]:
            text = (
                f"{d.subjects[dev].device} silent for {fmt_duration(float(silent_s[dev]))} "
                f"(expected a reading every {fmt_duration(float(interval[dev]))})"
            )
            return self.book.raise_health(
                d.subjects[dev], OFFLINE, t_s=now_s, now_s=now_s, message=text,
                value=float(silent_s[dev]), threshold=float(limit[dev]), unit="s",
            )  # fmt: skip

        silent = [] if self.silence_paused else np.flatnonzero(~d.offline & (silent_s > limit)).tolist()
        events = self._offline(silent, now_s, now_s, raise_one)
        return events + self._calibration(np.arange(len(d)), now_s)

    def _calibration(self, devs: I64, now_s: float) -> list[AlertEvent]:
        d = self.devices
        due = d.cal_due_s[devs]
        events: list[AlertEvent] = []
        for dev in devs[~d.cal_open[devs] & (now_s >= due)].tolist():
            events += self._raise_calibration(dev, now_s)
        for dev in devs[d.cal_open[devs] & (now_s < due)].tolist():
            subject = d.subjects[dev]
            text = f"{subject.device} calibrated: next calibration due {_day(float(d.cal_due_s[dev]))}"
            events += self.book.clear_health(subject, CAL, t_s=now_s, now_s=now_s, message=text)
            d.cal_open[dev] = self.book.is_open(subject, CAL)
        return events

    def _raise_calibration(self, dev: int, now_s: float) -> list[AlertEvent]:
        d, days = self.devices, self.policy.calibration_days
        cal = d.calibrated[dev]
        late = sorted((h, t) for h, t in cal.items() if now_s >= t + days * DAY_S)
        which = ", ".join(f"{h} on {_day(t)}" if h != "*" else _day(t) for h, t in late)
        subject = d.subjects[dev]
        text = f"{subject.device} calibration overdue: last calibrated {which}; calibrate at least every {days:g} days"
        age_days = (now_s - min(t for _, t in late)) / DAY_S
        d.cal_open[dev] = True
        return self.book.raise_health(
            subject,
            CAL,
            t_s=now_s,
            now_s=now_s,
            message=text,
            value=round(age_days, 1),
            threshold=days,
            unit="d",
        )


def status_digest(payload: Mapping[str, Any]) -> str:
    """Short digest of a status payload's content (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _day(t_s: float) -> str:
    return datetime.fromtimestamp(t_s, tz=UTC).strftime("%Y-%m-%d")
