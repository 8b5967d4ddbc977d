"""Sites and their shift calendars (SPEC §3), DST-correct with zoneinfo.

A site's timeline is cut into consecutive *segments*: the shifts, and the off-shift time between
them when the schedule leaves any. A shift starts at a wall-clock time in the site's zone and
ends `shift_hours` of wall-clock time later, so on a daylight-saving night the night shift lasts
7 or 9 elapsed hours and still ends exactly when the morning shift starts. A shift is named
`YYYY-MM-DD/N`: the local date of its start and its 1-based position in `shift_starts`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from rules.errors import ConfigError
from rules.types import F64, I64

DEFAULT_SHIFT_STARTS = ("06:00", "14:00", "22:00")
_DAY_S = 86_400.0
#: Days of calendar computed around a requested time (extended on demand).
_CALENDAR_PAD_DAYS = 3


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """A mine site: time zone, shift pattern and (optionally) its own limit profile."""

    name: str
    tz: str = "UTC"
    shift_starts: tuple[str, ...] = DEFAULT_SHIFT_STARTS
    shift_hours: float = 8.0
    profile: str | None = None

    def __post_init__(self) -> None:
        where = f"site {self.name!r}"
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"{where}: field 'tz': unknown time zone {self.tz!r}") from exc
        if not self.shift_starts:
            raise ConfigError(f"{where}: field 'shift_starts': at least one shift start is needed")
        minutes = [_parse_hhmm(s, where) for s in self.shift_starts]
        if sorted(set(minutes)) != minutes:
            raise ConfigError(f"{where}: field 'shift_starts': times must be increasing, e.g. 06:00, 14:00")
        if not (math.isfinite(self.shift_hours) and 0.0 < self.shift_hours <= 24.0):
            raise ConfigError(f"{where}: field 'shift_hours': must be > 0 and <= 24, got {self.shift_hours}")
        spacing = [(minutes[(i + 1) % len(minutes)] - m) % 1440 or 1440 for i, m in enumerate(minutes)]
        if self.shift_hours * 60.0 > min(spacing) + 1e-9:
            raise ConfigError(
                f"{where}: field 'shift_hours': {self.shift_hours} h shifts would overlap "
                f"(the closest shift starts are {min(spacing) / 60:g} h apart)"
            )

    @property
    def start_minutes(self) -> tuple[int, ...]:
        return tuple(_parse_hhmm(s, self.name) for s in self.shift_starts)


def _parse_hhmm(text: str, where: str) -> int:
    try:
        hh, mm = text.split(":")
        h, m = int(hh), int(mm)
    except ValueError:
        h, m = -1, -1
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ConfigError(f"{where}: field 'shift_starts': {text!r} is not a HH:MM time")
    return h * 60 + m


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of a site's timeline; `label` is the shift id, or "" for off-shift time."""

    start_s: float
    end_s: float
    label: str

    @property
    def is_shift(self) -> bool:
        return bool(self.label)


@dataclass(slots=True)
class ShiftCalendar:
    """Vectorized segment lookup for one site; the table grows on demand, days at a time."""

    site: SiteConfig
    _zone: ZoneInfo = field(init=False)
    _first_day: date | None = field(default=None, init=False)
    _last_day: date | None = field(default=None, init=False)
    starts: F64 = field(default_factory=lambda: np.empty(0), init=False)
    ends: F64 = field(default_factory=lambda: np.empty(0), init=False)
    labels: list[str] = field(default_factory=list, init=False)
    is_shift: np.ndarray = field(default_factory=lambda: np.empty(0, bool), init=False)

    def __post_init__(self) -> None:
        self._zone = ZoneInfo(self.site.tz)

    def locate(self, t_s: F64) -> I64:
        """Index into `starts`/`ends`/`labels` of the segment holding each time (vectorized)."""
        if t_s.size:
            self._cover(float(np.min(t_s)), float(np.max(t_s)))
        return np.searchsorted(self.starts, t_s, side="right").astype(np.int64) - 1

    def segment_at(self, t_s: float) -> Segment:
        i = int(self.locate(np.array([t_s]))[0])
        return Segment(float(self.starts[i]), float(self.ends[i]), self.labels[i])

    def _cover(self, lo_s: float, hi_s: float) -> None:
        lo_day = datetime.fromtimestamp(lo_s, self._zone).date() - timedelta(days=_CALENDAR_PAD_DAYS)
        hi_day = datetime.fromtimestamp(hi_s, self._zone).date() + timedelta(days=_CALENDAR_PAD_DAYS)
        if self._first_day is not None and self._last_day is not None:
            if self._first_day <= lo_day and hi_day <= self._last_day:
                return
            lo_day, hi_day = min(lo_day, self._first_day), max(hi_day, self._last_day)
        self._build(lo_day, hi_day)

    def _build(self, first: date, last: date) -> None:
        shifts = _shifts_between(self.site, self._zone, first, last)
        starts: list[float] = []
        ends: list[float] = []
        labels: list[str] = []
        for start, end, label in shifts:
            if starts and start > ends[-1]:
                starts.append(ends[-1])
                ends.append(start)
                labels.append("")
            starts.append(start)
            ends.append(end)
            labels.append(label)
        # times before the first computed shift: an open off-shift segment (never used inside
        # the padded range, kept so that searchsorted never returns -1)
        self.starts = np.array([-math.inf, *starts], dtype=np.float64)
        self.ends = np.array([starts[0], *ends], dtype=np.float64)
        self.labels = ["", *labels]
        self.is_shift = np.array([bool(label) for label in self.labels], dtype=bool)
        self._first_day, self._last_day = first, last


def _shifts_between(site: SiteConfig, zone: ZoneInfo, first: date, last: date) -> list[tuple[float, float, str]]:
    """(start_s, end_s, label) of every shift starting on local dates first..last, in time order."""
    out: list[tuple[float, float, str]] = []
    hours = timedelta(hours=site.shift_hours)
    day = first
    while day <= last:
        for n, minute in enumerate(site.start_minutes, start=1):
            local = datetime.combine(day, time(minute // 60, minute % 60))
            start = local.replace(tzinfo=zone).timestamp()
            end = (local + hours).replace(tzinfo=zone).timestamp()
            out.append((start, end, f"{day.isoformat()}/{n}"))
        day += timedelta(days=1)
    out.sort()
    # wall-clock times inside a spring-forward gap can map out of order: never let shifts overlap
    clipped: list[tuple[float, float, str]] = []
    for i, (start, end, label) in enumerate(out):
        nxt = out[i + 1][0] if i + 1 < len(out) else math.inf
        end = min(end, nxt)
        if end > start:
            clipped.append((start, end, label))
    return clipped


def shift_label(site: SiteConfig, t_s: float) -> str:
    """The shift id holding `t_s`, or "" when `t_s` falls between shifts."""
    return ShiftCalendar(site).segment_at(t_s).label


@dataclass(slots=True)
class SiteBook:
    """The calendars of every site seen, by dense site id, and the latest event time per site."""

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
            self.max_t.append(-math.inf)
        return found

    def segments(self, site: I64, cached: tuple[F64, F64, np.ndarray], t: F64) -> tuple[F64, F64, np.ndarray]:
        """(start, end, is-shift) of the segment holding each time; `cached` is each row's
        channel's current segment, looked up in the site calendars only where it does not hold."""
        seg_s, seg_e, is_shift = (a.copy() for a in cached)
        miss = ~((t >= seg_s) & (t < seg_e))
        if miss.any():
            for s in np.unique(site[miss]).tolist():
                m = miss & (site == s)
                cal = self.calendars[s]
                i = cal.locate(t[m])
                seg_s[m], seg_e[m], is_shift[m] = cal.starts[i], cal.ends[i], cal.is_shift[i]
        return seg_s, seg_e, is_shift

    def note_times(self, site: I64, t: F64) -> None:
        """Remember the latest event time of each site (a site's shift closes once it moves past)."""
        if t.shape[0] == 0:
            return
        latest = np.full(len(self.calendars), -np.inf)
        np.maximum.at(latest, site, t)
        self.max_t = np.maximum(np.asarray(self.max_t), latest).tolist()

    def label(self, site: int, start_s: float) -> str:
        return self.calendars[site].segment_at(start_s).label
