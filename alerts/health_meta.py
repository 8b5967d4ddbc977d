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


@dataclass(slots=True)
class DeviceTable:
    """Dense device ids with columnar state; ids are never reused."""

    subjects: list[AlertSubject] = field(default_factory=list)
    _ids: dict[tuple[str, str, str], int] = field(default_factory=dict)
    last_seen_wall: F64 = field(default_factory=lambda: np.empty(0))  # NaN: never seen
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
