"""What the board reads from the store: each device's latest value against its limit, and the
running shift exposure of personal monitors. Refreshed every few seconds in a thread.

The running figures follow SPEC §3 exactly as the gateway does: each reading holds until the next
one of its channel, for at most `max_gap_s`; TWA so far = ∫C dt / 8 h over the current shift
(rules.exposure.twa8); LEX,8h so far = 10·log10(∫10^(L/10) dt / 8 h) (rules.exposure.lex8h); the
projection assumes the average level measured so far continues until the end of the shift.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from rules.errors import OshError
from rules.exposure import energy, lex8h, twa8
from rules.profiles import ProfileBook
from rules.results import Averaging, Direction, Limit
from rules.shifts import ShiftCalendar, SiteConfig
from rules.types import Hazard, RuleKind
from storage.base import HistoryQuery, RecordKind, Store

Row = dict[str, Any]
LATEST_WINDOW_S = 600.0  # a channel silent for longer shows "no recent reading"
SEVERITY_ORDER = ("warning", "alarm", "critical")
EIGHT_HOURS_S = 8 * 3600.0


@dataclass(frozen=True, slots=True)
class Reference:
    """The limit a live value is shown against: the instant-level tiers when the profile has
    them, else the averaged limit it is judged by (STEL/TWA/LEX: shown, not compared)."""

    threshold: float | None
    label: str
    rule: str
    direction: str
    source: str
    tiers: tuple[tuple[str, float], ...] = ()  # (severity, threshold) of the level rule


def reference(book: ProfileBook, profile: str, hazard: str) -> Reference | None:
    """None: the profile sets no limit for this hazard — the board says "not judged"."""
    try:
        p = book.profile(profile)
        h = Hazard(hazard)
    except (ValueError, OshError):  # unknown profile or hazard name: nothing to show it against
        return None
    level = [book.limits[i] for i in p.tiers(h, RuleKind.LEVEL)]
    if level:
        first = level[0]
        tiers = tuple((str(lim.severity), lim.threshold) for lim in level)
        return Reference(first.threshold, first.label or "level", "level", str(first.direction), first.source, tiers)
    for rule in (RuleKind.STEL, RuleKind.TWA, RuleKind.LEX8H, RuleKind.DOSE):
        ids = p.tiers(h, rule)
        if ids:
            lim: Limit = book.limits[ids[-1]]
            return Reference(lim.threshold, lim.label or str(rule), str(rule), str(lim.direction), lim.source)
    return None


def judge_level(value: float, ref: Reference | None) -> str:
    """`not_judged`, `averaged` (judged over time by the gateway), `ok`, or the tier exceeded."""
    if ref is None:
        return "not_judged"
    if not ref.tiers:
        return "averaged"
    state = "ok"
    for severity, threshold in ref.tiers:
        beyond = value <= threshold if ref.direction == str(Direction.BELOW) else value >= threshold
        if beyond:
            state = severity
    return state


@dataclass(frozen=True, slots=True)
class ShiftSoFar:
    shift: str
    start_s: float
    end_s: float
    twa8: float | None  # ∫C dt / 8 h so far (gases, dust)
    twa8_projected: float | None
    lex8h: float | None  # noise
    lex8h_projected: float | None
    covered_s: float


def shift_so_far(t_s: np.ndarray, value: np.ndarray, seg: tuple[float, float, str], now_s: float,
                 max_gap_s: float, noise: bool) -> ShiftSoFar:  # fmt: skip
    start, end, label = seg
    keep = (t_s >= start) & (t_s < min(end, now_s))
    t, v = t_s[keep], value[keep]
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    hold = np.minimum(np.diff(np.append(t, min(end, now_s))), max_gap_s).clip(min=0.0)
    covered = float(hold.sum())
    remaining = max(0.0, end - now_s)
    if noise:
        e = float((energy(v) * hold).sum())
        so_far = float(lex8h(np.array([e]))[0]) if e > 0 else None
        mean_e = e / covered if covered else 0.0
        proj = float(lex8h(np.array([e + mean_e * remaining]))[0]) if e > 0 else None
        return ShiftSoFar(label, start, end, None, None, so_far, proj, covered)
    integral = float((v * hold).sum())
    mean = integral / covered if covered else 0.0
    so_far_twa = float(twa8(np.array([integral]))[0]) if covered else None
    projected = float(twa8(np.array([integral + mean * remaining]))[0]) if covered else None
    return ShiftSoFar(label, start, end, so_far_twa, projected, None, None, covered)


@dataclass(slots=True)
class StoreView:
    """Latest values and running exposures per site, from a read-only store."""

    open_store: Callable[[], Store]
    book: ProfileBook
    profile_of: Callable[[str], str]
    site_config: Callable[[str], SiteConfig]
    max_gap_s: float
    error: str | None = None
    channels: list[dict[str, Any]] = field(default_factory=list)
    monitors: list[dict[str, Any]] = field(default_factory=list)
    refreshed_s: float | None = None
    _store: Store | None = None

    def refresh(self, now_s: float) -> None:
        """Re-read the store (opened once, reopened after a failure); errors go to `error`."""
        try:
            if self._store is None:
                self._store = self.open_store()
            store = self._store
            latest = self._latest(iter(store.latest_readings(now_s - LATEST_WINDOW_S)))
            self.channels = [self._channel(row, now_s) for row in latest.values()]
            self.monitors = self._monitors(store, latest, now_s)
            self.error, self.refreshed_s = None, now_s
        except Exception as exc:  # store missing or down: the page says so instead of showing stale values
            self.error = str(exc) or type(exc).__name__
            self.channels, self.monitors = [], []
            self.close()

    def close(self) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()
            self._store = None

    @staticmethod
    def _latest(rows: Iterator[dict[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
        latest: dict[tuple[str, ...], dict[str, Any]] = {}
        for row in rows:
            key = (row["site"], row["zone"], row["device"], row["hazard"], row["worker"] or "")
            if key not in latest or row["t"] >= latest[key]["t"]:
                latest[key] = row
        return latest

    def _channel(self, row: dict[str, Any], now_s: float) -> dict[str, Any]:
        ref = reference(self.book, self.profile_of(row["site"]), row["hazard"])
        value = float(row["value"])
        t_s = _epoch(row["t"])
        return {
            "site": row["site"], "zone": row["zone"], "device": row["device"], "hazard": row["hazard"],
            "worker": row["worker"] or None, "value": value, "unit": row.get("unit"), "t": row["t"],
            "age_s": max(0.0, now_s - t_s), "state": judge_level(value, ref),
            "limit": ref.threshold if ref else None, "limit_label": ref.label if ref else None,
            "limit_rule": ref.rule if ref else None, "limit_source": ref.source if ref else None,
            "profile": self.profile_of(row["site"]),
        }  # fmt: skip

    def _monitors(
        self, store: Store, latest: dict[tuple[str, ...], dict[str, Any]], now_s: float
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for (site, zone, device, hazard, worker), _row in sorted(latest.items()):
            if not worker or hazard == str(Hazard.NOISE_PEAK):
                continue
            seg = ShiftCalendar(self.site_config(site)).segment_at(now_s)
            if not seg.label:
                continue
            q = HistoryQuery(RecordKind.READINGS, site=site, zone=zone, device=device, hazard=hazard, worker=worker,
                             t_from_s=seg.start_s, t_to_s=now_s + 1)  # fmt: skip
            rows = list(store.query(q))
            t = np.array([_epoch(r["t"]) for r in rows], dtype=np.float64)
            v = np.array([float(r["value"]) for r in rows], dtype=np.float64)
            noise = hazard == str(Hazard.NOISE)
            so_far = shift_so_far(t, v, (seg.start_s, seg.end_s, seg.label), now_s, self.max_gap_s, noise)
            ref = reference(self.book, self.profile_of(site), hazard)
            limit, averaging = self._averaged_limit(site, hazard, noise)
            # a shift-average limit (30 CFR 70.100) divides ∫C dt by the shift length, not 8 h
            scale = EIGHT_HOURS_S / (seg.end_s - seg.start_s) if averaging == Averaging.SHIFT else 1.0
            out.append({"site": site, "zone": zone, "device": device, "hazard": hazard, "worker": worker,
                        "shift": so_far.shift, "twa8": _scaled(so_far.twa8, scale), "averaging": str(averaging),
                        "twa8_projected": _scaled(so_far.twa8_projected, scale), "lex8h": _finite(so_far.lex8h),
                        "lex8h_projected": _finite(so_far.lex8h_projected), "covered_s": so_far.covered_s,
                        "limit": limit, "judged": ref is not None})  # fmt: skip
        return out

    def _averaged_limit(self, site: str, hazard: str, noise: bool) -> tuple[float | None, Averaging]:
        """The long-term limit of a hazard (LEX,8h for noise, else the TWA) and its averaging period."""
        try:
            p = self.book.profile(self.profile_of(site))
            ids = p.tiers(Hazard(hazard), RuleKind.LEX8H if noise else RuleKind.TWA)
        except (ValueError, OshError):
            return None, Averaging.EIGHT_HOURS
        if not ids:
            return None, Averaging.EIGHT_HOURS
        lim = self.book.limits[ids[-1]]
        return lim.threshold, lim.averaging


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _scaled(x: float | None, factor: float) -> float | None:
    return None if (f := _finite(x)) is None else f * factor


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
