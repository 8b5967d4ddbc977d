"""Scripted incidents laid over the baseline: what the gateway's rules are meant to catch.

Each incident starts `at_s` seconds after the simulation start and targets a zone (or, for a
silent sensor, one device). Leave `site`/`zone`/`device` as None to let `resolve()` pick a
suitable target in the layout; naming one that does not exist raises ValueError.

Shapes (minutes after `at_s`; `r` = time since start of the incident):
- MethaneRise: CH4 + 1.0 %vol over 8 min (background 0.1-0.4 → 1.1-1.4 %vol), held to 20 min,
  + 1.5 %vol by 24 min (1.6-1.9 %vol), held to 34 min, down to + 0.3 by 44 min, gone at 60 min.
  Crosses the usual 1.0 %vol (warning / cut power) and 1.5 %vol (withdraw) levels and returns
  below 1.0 %vol.
- BlastingFumes: CO rises linearly to `co_peak_ppm` in 2 min, then decays as exp(-(r-2 min)/tau)
  (tau = 8 min: ~1/80 of the peak after 35 min); NO2, NO, CO2 and dust follow in fixed ratios.
  Its 15-min mean from the start is peak*(rise/2 + tau*(1 - e^(-(15 min - rise)/tau)))/15 min
  ≈ 0.49*peak ≈ 173 ppm for a 350 ppm peak, above the 100 ppm CO STEL of Directive (EU) 2017/164.
- OxygenDip: O2 falls by 2.4 %vol in 6 min (20.9 → 18.5 %vol, below the 19.5 %vol minimum),
  held to 18 min, recovers by 30 min; CO2 rises by 2500 ppm with it (blackdamp).
- NoisyShift: noise channels in the zone read LAeq N(93.5, 0.8) clipped to 92-95 dBA for
  `duration_s`.
- SilentSensor: the device stops publishing for `duration_s` (None: for good); its retained
  status goes `{"state": "offline"}` `lwt_delay_s` later (the broker sending its Last Will after
  1.5 keep-alive periods) and back to online when it returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from simulators.baseline import F64
from simulators.layout import Device, DeviceKind, ZoneRole, zone_role

_MIN = 60.0


class Incident(Protocol):
    @property
    def at_s(self) -> float:
        """Seconds after the simulation start."""
        ...

    @property
    def label(self) -> str: ...

    def resolve(self, devices: Sequence[Device]) -> Incident:
        """A copy with site/zone/device filled in from the layout."""
        ...

    def where(self) -> str: ...

    def touches(self, device: Device) -> bool: ...

    def apply(self, hazard: str, r_s: F64, values: F64, rng: np.random.Generator) -> None:
        """Change `values` (canonical unit) in place; `r_s` is time since the incident start."""
        ...

    def silent_span(self, device: Device) -> tuple[float, float] | None:
        """(from, to) in seconds after the simulation start when `device` publishes nothing."""
        ...


def _resolve_zone(
    devices: Sequence[Device],
    site: str | None,
    zone: str | None,
    hazards: frozenset[str],
    roles: tuple[ZoneRole, ...],
    *,
    last: bool = False,
) -> tuple[str, str]:
    sites = list(dict.fromkeys(d.site for d in devices))
    site = site or sites[0]
    if site not in sites:
        raise ValueError(f"site {site!r} is not in the simulated mine ({', '.join(sites)})")
    zones = list(dict.fromkeys(d.zone for d in devices if d.site == site and hazards & set(d.hazards)))
    if zone is not None:
        if zone not in zones:
            raise ValueError(f"zone {site}/{zone} has no device measuring {', '.join(sorted(hazards))}")
        return site, zone
    for role in roles:
        matching = [z for z in zones if zone_role(z) is role]
        if matching:
            return site, matching[-1] if last else matching[0]
    raise ValueError(f"site {site} has no zone with a device measuring {', '.join(sorted(hazards))}")


def _in_zone(device: Device, site: str | None, zone: str | None) -> bool:
    return device.site == site and device.zone == zone


def _interp_minutes(r_s: F64, knots_min: tuple[float, ...], deltas: tuple[float, ...]) -> F64:
    return np.asarray(np.interp(r_s / _MIN, knots_min, deltas, left=0.0, right=0.0), np.float64)


class _ZoneIncident:
    """An incident in one zone of one site (`site`/`zone` filled in by `resolve`)."""

    __slots__ = ()
    site: str | None
    zone: str | None

    def where(self) -> str:
        return f"{self.site}/{self.zone}"

    def touches(self, device: Device) -> bool:
        return _in_zone(device, self.site, self.zone)


@dataclass(frozen=True, slots=True)
class MethaneRise(_ZoneIncident):
    at_s: float
    site: str | None = None
    zone: str | None = None
    first_pct: float = 1.0  # added above background in the first step
    second_pct: float = 1.5  # added above background at the peak

    @property
    def label(self) -> str:
        return "methane rise"

    def resolve(self, devices: Sequence[Device]) -> MethaneRise:
        roles = (ZoneRole.FACE, ZoneRole.RETURN, ZoneRole.HAULAGE, ZoneRole.WORKSHOP)
        site, zone = _resolve_zone(devices, self.site, self.zone, frozenset({"ch4"}), roles)
        return replace(self, site=site, zone=zone)

    def apply(self, hazard: str, r_s: F64, values: F64, rng: np.random.Generator) -> None:
        if hazard == "ch4":
            f, s = self.first_pct, self.second_pct
            values += _interp_minutes(r_s, (0, 8, 20, 24, 34, 44, 60), (0, f, f, s, s, 0.3, 0))

    def silent_span(self, device: Device) -> tuple[float, float] | None:
        return None


#: Blasting fume composition relative to the CO peak (ppm per ppm CO; CO2 in ppm, dust in mg/m3).
_FUME_RATIOS = {"co": 1.0, "no2": 0.03, "no": 0.08}
_FUME_EXTRA = {"co2": 1500.0, "respirable_dust": 2.0}


@dataclass(frozen=True, slots=True)
class BlastingFumes(_ZoneIncident):
    at_s: float
    site: str | None = None
    zone: str | None = None
    co_peak_ppm: float = 350.0
    tau_s: float = 8 * _MIN
    rise_s: float = 2 * _MIN

    @property
    def label(self) -> str:
        return "blasting fumes"

    def resolve(self, devices: Sequence[Device]) -> BlastingFumes:
        roles = (ZoneRole.FACE, ZoneRole.HAULAGE, ZoneRole.RETURN, ZoneRole.WORKSHOP)
        site, zone = _resolve_zone(devices, self.site, self.zone, frozenset({"co"}), roles, last=True)
        return replace(self, site=site, zone=zone)

    def shape(self, r_s: F64) -> F64:
        """0..1: linear rise over `rise_s`, then exp(-(r - rise)/tau), cut off after 6 tau."""
        rising = np.clip(r_s / self.rise_s, 0.0, 1.0)
        decay = np.exp(-np.maximum(r_s - self.rise_s, 0.0) / self.tau_s)
        live = (r_s >= 0) & (r_s < self.rise_s + 6 * self.tau_s)
        return np.asarray(np.where(live, np.where(r_s < self.rise_s, rising, decay), 0.0), np.float64)

    def apply(self, hazard: str, r_s: F64, values: F64, rng: np.random.Generator) -> None:
        if hazard in _FUME_RATIOS:
            values += self.co_peak_ppm * _FUME_RATIOS[hazard] * self.shape(r_s)
        elif hazard in _FUME_EXTRA:
            values += _FUME_EXTRA[hazard] * self.shape(r_s)

    def silent_span(self, device: Device) -> tuple[float, float] | None:
        return None


@dataclass(frozen=True, slots=True)
class OxygenDip(_ZoneIncident):
    at_s: float
    site: str | None = None
    zone: str | None = None
    drop_pct: float = 2.4  # 20.9 → 18.5 %vol
    co2_rise_ppm: float = 2500.0

    @property
    def label(self) -> str:
        return "oxygen dip"

    def resolve(self, devices: Sequence[Device]) -> OxygenDip:
        roles = (ZoneRole.RETURN, ZoneRole.HAULAGE, ZoneRole.FACE, ZoneRole.WORKSHOP)
        site, zone = _resolve_zone(devices, self.site, self.zone, frozenset({"o2"}), roles)
        return replace(self, site=site, zone=zone)

    def apply(self, hazard: str, r_s: F64, values: F64, rng: np.random.Generator) -> None:
        knots = (0, 6, 18, 30)
        if hazard == "o2":
            values += _interp_minutes(r_s, knots, (0, -self.drop_pct, -self.drop_pct, 0))
        elif hazard == "co2":
            values += _interp_minutes(r_s, knots, (0, self.co2_rise_ppm, self.co2_rise_ppm, 0))

    def silent_span(self, device: Device) -> tuple[float, float] | None:
        return None


@dataclass(frozen=True, slots=True)
class NoisyShift(_ZoneIncident):
    at_s: float
    site: str | None = None
    zone: str | None = None
    duration_s: float = 8 * 3600.0
    level_dba: tuple[float, float] = (92.0, 95.0)

    @property
    def label(self) -> str:
        return "noisy shift"

    def resolve(self, devices: Sequence[Device]) -> NoisyShift:
        roles = (ZoneRole.FACE, ZoneRole.WORKSHOP, ZoneRole.HAULAGE, ZoneRole.RETURN)
        site, zone = _resolve_zone(devices, self.site, self.zone, frozenset({"noise"}), roles)
        return replace(self, site=site, zone=zone)

    def apply(self, hazard: str, r_s: F64, values: F64, rng: np.random.Generator) -> None:
        if hazard != "noise":
            return
        on = (r_s >= 0) & (r_s < self.duration_s)
        if on.any():
            lo, hi = self.level_dba
            loud = rng.normal((lo + hi) / 2, (hi - lo) / 4 * 0.8, int(on.sum()))
            values[on] = np.clip(loud, lo, hi)

    def silent_span(self, device: Device) -> tuple[float, float] | None:
        return None


@dataclass(frozen=True, slots=True)
class SilentSensor:
    at_s: float
    site: str | None = None
    device: str | None = None
    duration_s: float | None = 30 * _MIN  # None: never comes back
    lwt_delay_s: float = 45.0  # 1.5 x a 30 s keep-alive
    zone: str | None = None  # filled in by resolve()

    @property
    def label(self) -> str:
        return "sensor silent"

    def resolve(self, devices: Sequence[Device]) -> SilentSensor:
        pool = [d for d in devices if self.site in (None, d.site)]
        if self.device is not None:
            found = [d for d in pool if d.device == self.device]
            if not found:
                raise ValueError(f"device {self.device!r} is not in the simulated mine")
            return replace(self, site=found[0].site, zone=found[0].zone)
        if not pool:
            raise ValueError(f"site {self.site!r} is not in the simulated mine")
        fixed = [d for d in pool if not d.spec.personal]
        gas = [d for d in fixed if d.kind is DeviceKind.GAS4 and d.role is ZoneRole.HAULAGE]
        chosen = (gas or fixed or pool)[0]
        return replace(self, site=chosen.site, device=chosen.device, zone=chosen.zone)

    def where(self) -> str:
        return f"{self.site}/{self.zone}/{self.device}"

    def touches(self, device: Device) -> bool:
        return device.site == self.site and device.device == self.device

    def apply(self, hazard: str, r_s: F64, values: F64, rng: np.random.Generator) -> None:
        return None

    def silent_span(self, device: Device) -> tuple[float, float] | None:
        if not self.touches(device):
            return None
        end = math.inf if self.duration_s is None else self.at_s + self.duration_s
        return (self.at_s, end)

    def offline_at_s(self) -> float | None:
        """When the retained status goes offline (None if the device is back before that)."""
        if self.duration_s is not None and self.duration_s <= self.lwt_delay_s:
            return None
        return self.at_s + self.lwt_delay_s
