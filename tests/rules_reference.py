"""A small, obviously-correct reference of the exposure semantics (SPEC §3): plain Python, one
reading at a time, whole history kept. The vectorized engine must agree with it.

- Readings of a channel are replayed in event-time order (ties: arrival order).
- Reading j holds v_j on [t_j, min(t_{j+1}, t_j + max_gap)).
- Shifts: wall-clock starts in the site's zone, `shift_hours` of wall-clock time long.
- At reading i: level = v_i; STEL = (1/900 s)·∫ C over [t_i − 900 s, t_i]; shift-to-date
  integrals over [shift start, t_i]; TWA8 = ∫C/8 h; LEX,8h = 10·log10(∫10^(L/10)/8 h);
  dose = 100·∫2^((L − criterion)/exchange)[L ≥ floor]/8 h.
- A shift's record (for shifts holding at least one reading) integrates every hold inside it,
  the last reading held to min(next reading, t + max_gap, shift end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rules.profiles import ProfileBook
from rules.results import Direction
from rules.shifts import SiteConfig
from rules.types import SOUND_LEVEL_HAZARDS, ChannelKey, Hazard, RuleKind

EIGHT_H = 28_800.0
WINDOW = 900.0


@dataclass(frozen=True)
class Shift:
    start: float
    end: float
    label: str


def shifts_near(site: SiteConfig, t: float) -> list[Shift]:
    """Every shift starting on the local dates around t (wall-clock start + shift_hours)."""
    zone = ZoneInfo(site.tz)
    day = datetime.fromtimestamp(t, zone).date()
    out = []
    for d in (day - timedelta(days=2), day - timedelta(days=1), day, day + timedelta(days=1)):
        for n, hhmm in enumerate(site.shift_starts, start=1):
            h, m = (int(x) for x in hhmm.split(":"))
            local = datetime.combine(d, time(h, m))
            out.append(
                Shift(
                    local.replace(tzinfo=zone).timestamp(),
                    (local + timedelta(hours=site.shift_hours)).replace(tzinfo=zone).timestamp(),
                    f"{date.isoformat(d)}/{n}",
                )
            )
    return out


def shift_of(site: SiteConfig, t: float) -> Shift | None:
    for s in shifts_near(site, t):
        if s.start <= t < s.end:
            return s
    return None


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


@dataclass
class RefChannel:
    key: ChannelKey
    site: SiteConfig
    profile: str
    readings: list[tuple[float, float]]  # in-order replay: sorted by t, ties in arrival order

    def holds(self, max_gap: float, upto: int) -> list[tuple[float, float, float]]:
        """(start, end, value) of the holds closed by readings 1..upto (indices into readings)."""
        r = self.readings
        return [(r[j][0], min(r[j + 1][0], r[j][0] + max_gap), r[j][1]) for j in range(upto)]

    def all_holds(self, max_gap: float) -> list[tuple[float, float, float]]:
        r = self.readings
        out = self.holds(max_gap, len(r) - 1)
        if r:
            out.append((r[-1][0], r[-1][0] + max_gap, r[-1][1]))
        return out


def weight(book: ProfileBook, profile: str, hazard: Hazard, v: float, floor: float | None = None) -> tuple[float, ...]:
    """(primary, dose) integrands: C, or 10^(L/10) and 2^((L − crit)/exch)[L ≥ floor]."""
    if hazard not in SOUND_LEVEL_HAZARDS:
        return (v, 0.0)
    noise = book.profile(profile).noise
    f = noise.threshold_db if floor is None else floor
    return (10 ** (v / 10), 2 ** ((v - noise.criterion_db) / noise.exchange_db) if v >= f else 0.0)


def figures_at(
    book: ProfileBook, ch: RefChannel, i: int, max_gap: float, floor: float | None = None
) -> dict[str, float]:
    """Running figures at reading i (0-based in the replay order)."""
    t_i, v_i = ch.readings[i]
    holds = ch.holds(max_gap, i)
    out = {"level": v_i}
    if ch.key.hazard not in SOUND_LEVEL_HAZARDS:
        out["stel"] = sum(v * overlap(a, b, t_i - WINDOW, t_i) for a, b, v in holds) / WINDOW
    shift = shift_of(ch.site, t_i)
    if shift is not None:
        prim = dose = covered = 0.0
        for a, b, v in holds:
            piece = overlap(a, b, shift.start, t_i)
            w = weight(book, ch.profile, ch.key.hazard, v, floor)
            prim, dose, covered = prim + w[0] * piece, dose + w[1] * piece, covered + piece
        if ch.key.hazard in SOUND_LEVEL_HAZARDS:
            out["lex8h"] = 10 * math.log10(prim / EIGHT_H) if prim > 0 else -math.inf
            out["dose"] = 100 * dose / EIGHT_H
        else:
            out["twa"] = prim / EIGHT_H
            if covered > 0:  # projected to the shift's end at the shift's mean so far
                out["twa_projected"] = (prim + prim / covered * (shift.end - t_i)) / EIGHT_H
    return out


def records(book: ProfileBook, ch: RefChannel, max_gap: float) -> dict[str, dict[str, float]]:
    """Final record per shift label for every shift with at least one reading."""
    out: dict[str, dict[str, float]] = {}
    holds = ch.all_holds(max_gap)
    for i, (t, _) in enumerate(ch.readings):
        shift = shift_of(ch.site, t)
        if shift is None or shift.label in out:
            continue
        out[shift.label] = _record(book, ch, shift, holds, max_gap)
        out[shift.label]["first_index"] = i
    return out


def _record(
    book: ProfileBook, ch: RefChannel, shift: Shift, holds: list[tuple[float, float, float]], max_gap: float
) -> dict[str, float]:
    prim = dose = covered = 0.0
    covers = []
    for a, b, v in holds:
        piece = overlap(a, b, shift.start, shift.end)
        if piece > 0:
            w = weight(book, ch.profile, ch.key.hazard, v)
            prim, dose, covered = prim + w[0] * piece, dose + w[1] * piece, covered + piece
            covers.append((max(a, shift.start), min(b, shift.end)))
    inside = [(i, v) for i, (t, v) in enumerate(ch.readings) if shift.start <= t < shift.end]
    gaps, edge = [], shift.start
    for a, b in sorted(covers):
        gaps.append(a - edge)
        edge = max(edge, b)
    gaps.append(shift.end - edge)
    sound = ch.key.hazard in SOUND_LEVEL_HAZARDS
    rec = {
        "peak": max(v for _, v in inside),
        "coverage": covered / (shift.end - shift.start),
        "max_gap_s": max(gaps),
        "twa8": (10 * math.log10(prim / EIGHT_H) if prim > 0 else -math.inf) if sound else prim / EIGHT_H,
    }
    if sound:
        rec["dose_pct"] = 100 * dose / EIGHT_H
    else:
        rec["stel15_max"] = max(figures_at(book, ch, i, max_gap)["stel"] for i, _ in inside)
    return rec


class StreamingReference:
    """The same semantics, one reading at a time in event-time order, for throughput comparison
    (bench/engine.py): per channel the open reading, the shift's integrals and a list of the
    holds inside the last 900 s. Every tier of every rule is judged per reading in plain Python."""

    def __init__(
        self, book: ProfileBook, profiles: dict[int, str], keys: dict[int, ChannelKey],
        sites: dict[str, SiteConfig], max_gap: float = 60.0,
    ) -> None:  # fmt: skip
        self.book, self.profiles, self.keys, self.sites, self.max_gap = book, profiles, keys, sites, max_gap
        self.state: dict[int, dict[str, Any]] = {}
        self.exceeded = 0

    def feed(self, ch: int, t: float, v: float) -> dict[str, float]:
        s = self.state.setdefault(ch, {"last": None, "shift": None, "prim": 0.0, "dose": 0.0, "window": []})
        key = self.keys[ch]
        shift = s["shift"]
        if shift is None or not shift.start <= t < shift.end:
            shift = shift_of(self.sites.get(key.site) or SiteConfig(key.site), t)
        if shift != s["shift"]:
            s["shift"], s["prim"], s["dose"] = shift, 0.0, 0.0
        if s["last"] is not None:
            self._close_hold(ch, s, s["last"], t, shift)
        s["last"] = (t, v)
        return self._judge(ch, s, t, v)

    def _close_hold(self, ch: int, s: dict[str, Any], last: tuple[float, float], t: float, shift: Shift | None) -> None:
        t0, v0 = last
        end = min(t, t0 + self.max_gap)
        w = weight(self.book, self.profiles[ch], self.keys[ch].hazard, v0)
        if shift is not None:
            piece = overlap(t0, end, shift.start, shift.end)
            s["prim"] += w[0] * piece
            s["dose"] += w[1] * piece
        window = s["window"]
        window.append((t0, end, v0))
        while window and window[0][1] <= t - WINDOW:
            window.pop(0)

    def _judge(self, ch: int, s: dict[str, Any], t: float, v: float) -> dict[str, float]:
        key, prof = self.keys[ch], self.book.profile(self.profiles[ch])
        figures = {"level": v}
        if key.hazard not in SOUND_LEVEL_HAZARDS:
            figures["stel"] = sum(vv * overlap(a, b, t - WINDOW, t) for a, b, vv in s["window"]) / WINDOW
            figures["twa"] = s["prim"] / EIGHT_H
        else:
            figures["lex8h"] = 10 * math.log10(s["prim"] / EIGHT_H) if s["prim"] > 0 else -math.inf
            figures["dose"] = 100 * s["dose"] / EIGHT_H
        for rule_name, value in figures.items():
            for lid in prof.tiers(key.hazard, RuleKind(rule_name)):
                lim = self.book.limits[lid]
                if (value >= lim.threshold) if lim.direction is Direction.ABOVE else (value <= lim.threshold):
                    self.exceeded += 1
        return figures
