"""Normal working-day levels of every hazard, as vectorized functions of event time.

A channel's value is
    v(t) = base + g_sc * shift_change(t) + g_p * production(t) + g_c * cutting(t) + drift(t) + e,
with e ~ N(0, noise_sd) sensor noise, clipped to the hazard's plausible range. The activity
curves depend only on t (three 8-h shifts from 06:00 UTC), and drift is a sum of slow
sinusoids with per-channel random periods and phases, so any stretch of time can be generated
on its own: no state is carried between chunks, which keeps generation deterministic and
memory-bounded for a month of data.

The levels are plausible for a ventilated underground mine and sit below the usual limits
(EU Directive 2017/164 and 2019/130 indicative/binding values, MSHA 30 CFR 75 dust standard),
so alarms come from the scripted incidents, not from the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulators.layout import ZoneRole

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

DAY_S = 86400.0
SHIFT_S = 8 * 3600.0
FIRST_SHIFT_START_S = 6 * 3600.0  # SPEC §3: shifts start 06:00, 14:00, 22:00 (UTC by default)
SHIFT_CHANGE_SIGMA_S = 20 * 60.0  # diesel traffic around a shift change, ~±40 min
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)
_SUNDAY = 6
_SUNDAY_CUTTING = 0.25  # maintenance day: a quarter of the usual cutting

# Hour within a shift → cutting (0..1): two cutting runs around a meal break, with ramps.
_CUT_H = np.array([0.0, 1.0, 1.1, 3.5, 3.6, 4.5, 4.6, 7.0, 7.1, 8.0])
_CUT_V = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
# Hour within a shift → production (0..1): machines run except at start, break and end.
_PROD_H = np.array([0.0, 0.5, 0.7, 3.8, 4.0, 4.3, 4.5, 7.5, 7.7, 8.0])
_PROD_V = np.array([0.0, 0.0, 1.0, 1.0, 0.3, 0.3, 1.0, 1.0, 0.0, 0.0])


def hour_in_shift(t_s: F64) -> F64:
    return np.asarray(((t_s - FIRST_SHIFT_START_S) % SHIFT_S) / 3600.0, np.float64)


def shift_change(t_s: F64) -> F64:
    """Diesel traffic at shift change: a Gaussian bump of width σ = 20 min at 06, 14 and 22 h."""
    d = (t_s - FIRST_SHIFT_START_S) % SHIFT_S
    d = np.minimum(d, SHIFT_S - d)
    return np.asarray(np.exp(-0.5 * (d / SHIFT_CHANGE_SIGMA_S) ** 2), np.float64)


def production(t_s: F64) -> F64:
    return np.asarray(np.interp(hour_in_shift(t_s), _PROD_H, _PROD_V), np.float64)


def cutting(t_s: F64) -> F64:
    """Cutting periods within each shift; Sundays are maintenance days with little cutting."""
    c = np.interp(hour_in_shift(t_s), _CUT_H, _CUT_V)
    sunday = ((np.floor(t_s / DAY_S) + _EPOCH_WEEKDAY) % 7) == _SUNDAY
    return np.asarray(np.where(sunday, c * _SUNDAY_CUTTING, c), np.float64)


@dataclass(frozen=True, slots=True)
class HazardModel:
    """Baseline of one hazard (canonical unit); role gains scale the activity terms per zone."""

    base: tuple[float, float]  # per-channel base level drawn uniformly from this range
    shift_change: float = 0.0
    production: float = 0.0
    cutting: float = 0.0
    drift: float = 0.0  # amplitude of the slow wander
    noise_sd: float = 0.0
    lo: float = 0.0
    hi: float = float("inf")
    base_by_role: dict[ZoneRole, tuple[float, float]] = field(default_factory=dict)


_R = ZoneRole
#: Role multipliers of (shift_change, production, cutting).
ROLE_GAINS: dict[ZoneRole, tuple[float, float, float]] = {
    _R.HAULAGE: (1.0, 1.0, 0.0),
    _R.WORKSHOP: (0.7, 1.0, 0.0),
    _R.FACE: (0.5, 0.6, 1.0),
    _R.RETURN: (0.4, 0.5, 0.35),
}

MODELS: dict[str, HazardModel] = {
    "ch4": HazardModel((0.10, 0.25), cutting=0.08, drift=0.03, noise_sd=0.01, hi=100.0),
    "o2": HazardModel((20.85, 20.95), drift=0.03, noise_sd=0.03, hi=100.0),
    "co": HazardModel((1.0, 3.0), shift_change=14.0, production=2.0, drift=0.5, noise_sd=0.5),
    "h2s": HazardModel((0.0, 0.1), drift=0.05, noise_sd=0.05),
    "no2": HazardModel((0.05, 0.10), shift_change=0.35, production=0.05, drift=0.02, noise_sd=0.02),
    "no": HazardModel((0.3, 0.6), shift_change=2.0, production=0.3, drift=0.1, noise_sd=0.1),
    "so2": HazardModel((0.02, 0.05), shift_change=0.10, drift=0.01, noise_sd=0.01),
    "co2": HazardModel((550.0, 750.0), shift_change=400.0, production=200.0, drift=60.0, noise_sd=15.0),
    "dpm": HazardModel((0.008, 0.015), shift_change=0.04, production=0.012, drift=0.002, noise_sd=0.002),
    "respirable_dust": HazardModel((0.10, 0.20), cutting=0.85, drift=0.05, noise_sd=0.06),
    "silica": HazardModel((0.003, 0.005), cutting=0.030, drift=0.002, noise_sd=0.003),
    "noise": HazardModel(
        (70.0, 72.0),
        shift_change=8.0,
        production=5.0,
        cutting=10.0,
        drift=1.0,
        noise_sd=1.5,
        lo=30.0,
        hi=140.0,
        base_by_role={_R.FACE: (72.0, 75.0), _R.WORKSHOP: (76.0, 79.0), _R.RETURN: (70.0, 71.0)},
    ),
}
_DRIFT_PERIODS_S = (1800.0, 6 * 3600.0)  # slow wander: periods drawn between 30 min and 6 h
_DRIFT_TERMS = 3
_PERSONAL_NOISE_FACTOR = 2.0  # a worn monitor moves with its wearer: noisier readings


@dataclass(frozen=True, slots=True)
class ChannelModel:
    """The baseline of one device channel, with its random parameters fixed."""

    base: float
    gains: tuple[float, float, float]  # shift_change, production, cutting
    drift: float
    drift_omega: tuple[float, ...]  # rad/s
    drift_phase: tuple[float, ...]
    noise_sd: float
    lo: float
    hi: float

    def expected(self, t_s: F64) -> F64:
        """Noise-free level at event times `t_s` (epoch seconds)."""
        g_sc, g_p, g_c = self.gains
        v = np.full(t_s.shape, self.base)
        if g_sc:
            v += g_sc * shift_change(t_s)
        if g_p:
            v += g_p * production(t_s)
        if g_c:
            v += g_c * cutting(t_s)
        if self.drift:
            wander = sum(np.sin(w * t_s + p) for w, p in zip(self.drift_omega, self.drift_phase, strict=True))
            v += self.drift / np.sqrt(len(self.drift_omega)) * wander
        return v

    def sample(self, t_s: F64, rng: np.random.Generator) -> F64:
        """Readings at `t_s`: expected level plus sensor noise (clipping is left to the caller)."""
        v = self.expected(t_s)
        if self.noise_sd:
            v += rng.normal(0.0, self.noise_sd, t_s.shape)
        return v

    def clip(self, v: F64) -> F64:
        return np.asarray(np.clip(v, self.lo, self.hi), np.float64)


def channel_model(hazard: str, role: ZoneRole, personal: bool, rng: np.random.Generator) -> ChannelModel:
    """Draw one channel's parameters for `hazard` in a zone of `role`."""
    m = MODELS[hazard]
    lo_b, hi_b = m.base_by_role.get(role, m.base)
    r_sc, r_p, r_c = ROLE_GAINS[role]
    base = float(rng.uniform(lo_b, hi_b))
    if role is ZoneRole.RETURN and hazard == "ch4":
        base += 0.05  # return air carries the faces' methane
    periods = rng.uniform(*_DRIFT_PERIODS_S, _DRIFT_TERMS)
    return ChannelModel(
        base=base,
        gains=(m.shift_change * r_sc, m.production * r_p, m.cutting * r_c),
        drift=m.drift,
        drift_omega=tuple((2 * np.pi / periods).tolist()),
        drift_phase=tuple(rng.uniform(0, 2 * np.pi, _DRIFT_TERMS).tolist()),
        noise_sd=m.noise_sd * (_PERSONAL_NOISE_FACTOR if personal else 1.0),
        lo=m.lo,
        hi=m.hi,
    )
