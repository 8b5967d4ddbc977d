"""Per-device health state (columnar) and parsing of the status topic's metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from alerts.health_checks import BOOL, grow
from alerts.state import AlertSubject
from rules.types import F64, I64

DAY_S = 86_400.0
#: A calibration date (no time of day) is "today" somewhere up to UTC+14 (Kiribati).
DATE_AHEAD_S = 14 * 3600.0


def parse_when(text: str) -> float:
    """`YYYY-MM-DD` (midnight UTC) or RFC 3339 → epoch seconds; ValueError if neither."""
    text = text.strip()
    if len(text) == 10:
        d = date.fromisoformat(text)
        return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()
    dt = datetime.fromisoformat(text.replace("z", "Z"))
    if dt.tzinfo is None:
        raise ValueError(f"time stamp without offset: {text!r}")
    return dt.timestamp()


def parse_calibration(raw: Any) -> dict[str, float]:
    """`calibrated_on` as one date for the device or `{hazard: date}` → {hazard or "*": epoch s}.

    Raises ValueError with a readable reason on anything else.
    """
    if isinstance(raw, str):
        return {"*": parse_when(raw)}
    if isinstance(raw, Mapping) and raw and all(isinstance(v, str) for v in raw.values()):
        return {str(k): parse_when(v) for k, v in raw.items()}
    raise ValueError("calibrated_on must be a date (YYYY-MM-DD / RFC 3339) or {hazard: date}")


def status_time(payload: Mapping[str, Any]) -> float | None:
    """The status message's own time stamp `t` (epoch seconds or RFC 3339), None if absent.

    Raises ValueError for a `t` that is neither."""
    t = payload.get("t")
    if t is None:
        return None
    if isinstance(t, int | float) and not isinstance(t, bool):
        return float(t)
    if isinstance(t, str):
        return parse_when(t)
    raise ValueError("t must be epoch seconds or an RFC 3339 time stamp")


def status_problems(
    payload: Mapping[str, Any], interval_min_s: float, interval_max_s: float, now_s: float, max_future_s: float
) -> dict[str, str]:
    """{field: reason} for status metadata that must be ignored (issue 15): an `interval_s`
    outside [interval_min_s, interval_max_s], a `calibrated_on` that is unreadable or in the
    future, a `t` that is unreadable or in the future (it would make every later status look
    stale)."""
    bad: dict[str, str] = {}
    interval = payload.get("interval_s")
    if interval is not None and not interval_min_s <= float(interval) <= interval_max_s:
        bad["interval_s"] = (
            f"status: interval_s {float(interval):g} s is outside the accepted {interval_min_s:g} s "
            f"to {interval_max_s:g} s (OSH_HEALTH interval_min_s / interval_max_s); ignored"
        )
    raw = payload.get("calibrated_on")
    if raw is not None:
        try:
            cal = parse_calibration(raw)
        except ValueError as exc:
            bad["calibrated_on"] = f"status: calibrated_on: {exc}; ignored"
        else:
            ahead = {k: t - now_s for k, t in cal.items() if t - now_s > _ahead_allowed(raw, k, max_future_s)}
            if ahead:
                bad["calibrated_on"] = "status: calibrated_on lies in the future; ignored"
    try:
        t = status_time(payload)
    except ValueError as exc:
        bad["t"] = f"status: {exc}; the message's time is ignored"
    else:
        if t is not None and t - now_s > max_future_s:
            bad["t"] = f"status: t is {t - now_s:.0f} s in the future (clock wrong?); the message's time is ignored"
    return bad


def _ahead_allowed(raw: Any, key: str, max_future_s: float) -> float:
    text = raw if isinstance(raw, str) else raw.get(key) if isinstance(raw, Mapping) else ""
    return DATE_AHEAD_S if isinstance(text, str) and len(text.strip()) == 10 else max_future_s


@dataclass(slots=True)
class DeviceTable:
    """Dense device ids with columnar state; ids are never reused."""

    subjects: list[AlertSubject] = field(default_factory=list)
    _ids: dict[tuple[str, str, str], int] = field(default_factory=dict)
    last_seen_wall: F64 = field(default_factory=lambda: np.empty(0))  # NaN: never seen
    # The gateway's own knowledge of the device, event time (NaN: none): its newest reading,
    # also from before a restart (the store's replay), and the newest status time stamp applied.
    last_reading_t: F64 = field(default_factory=lambda: np.empty(0))
    last_status_t: F64 = field(default_factory=lambda: np.empty(0))
    interval_s: F64 = field(default_factory=lambda: np.empty(0))  # NaN: policy default
    offline: BOOL = field(default_factory=lambda: np.empty(0, bool))
    cal_due_s: F64 = field(default_factory=lambda: np.empty(0))  # NaN: no calibrated_on known
    cal_open: BOOL = field(default_factory=lambda: np.empty(0, bool))
    max_seq: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    gap_last_t: F64 = field(default_factory=lambda: np.empty(0))  # NaN: no open gap episode
    gap_missing: I64 = field(default_factory=lambda: np.empty(0, np.int64))
    calibrated: dict[int, dict[str, float]] = field(default_factory=dict)

    def index(self, site: str, zone: str, device: str) -> int:
        found = self._ids.get((site, zone, device))
        if found is not None:
            return found
        found = len(self.subjects)
        self._ids[(site, zone, device)] = found
        self.subjects.append(AlertSubject(site, zone, device, "device", None))
        n = found + 1
        self.last_seen_wall = grow(self.last_seen_wall, n, np.nan)
        self.last_reading_t = grow(self.last_reading_t, n, np.nan)
        self.last_status_t = grow(self.last_status_t, n, np.nan)
        self.interval_s = grow(self.interval_s, n, np.nan)
        self.offline = grow(self.offline, n, False)
        self.cal_due_s = grow(self.cal_due_s, n, np.nan)
        self.cal_open = grow(self.cal_open, n, False)
        self.max_seq = grow(self.max_seq, n, -1)
        self.gap_last_t = grow(self.gap_last_t, n, np.nan)
        self.gap_missing = grow(self.gap_missing, n, 0)
        return found

    def __len__(self) -> int:
        return len(self.subjects)
