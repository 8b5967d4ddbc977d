"""Named sensor-health policy: sensor ranges, stuck detection, silence and calibration intervals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rules.types import Hazard

#: Measuring range of typical mine sensors, canonical unit (low, high). A reading outside it is
#: not a measurement of the atmosphere but of a sensor fault (saturation, broken cell, wrong
#: firmware scaling). Low bounds allow the small negative zero drift of electrochemical cells.
#: Sources: typical manufacturer ranges (electrochemical CO 0-2000 ppm, H2S 0-500 ppm,
#: NDIR CH4 0-100 %vol, NDIR CO2 0-5 %vol, O2 cells 0-30 %vol, class 1 sound level meters
#: 30-140 dBA / peak to 160 dBC, continuous dust monitors 0-200 mg/m3).
DEFAULT_SENSOR_RANGE: dict[str, tuple[float, float]] = {
    Hazard.CH4: (-0.2, 100.0),
    Hazard.CO: (-5.0, 2000.0),
    Hazard.H2S: (-2.0, 500.0),
    Hazard.NO2: (-1.0, 100.0),
    Hazard.NO: (-2.0, 1000.0),
    Hazard.SO2: (-1.0, 100.0),
    Hazard.CO2: (-50.0, 50_000.0),
    Hazard.O2: (0.0, 30.0),
    Hazard.RESPIRABLE_DUST: (-0.05, 200.0),
    Hazard.SILICA: (-0.01, 20.0),
    Hazard.DPM: (-0.01, 20.0),
    Hazard.NOISE: (30.0, 140.0),
    Hazard.NOISE_PEAK: (50.0, 160.0),
}

#: Hazards whose true value always moves a little (sound, ambient CO2, O2 near 20.9 %vol with
#: 0.01 resolution is *not* among them, nor are toxic gases that sit at 0 ppm in fresh air).
DEFAULT_STUCK_HAZARDS: frozenset[str] = frozenset({Hazard.NOISE, Hazard.CO2, Hazard.RESPIRABLE_DUST})

#: 30 CFR 75.351(n): CO and CH4 sensors calibrated at intervals not exceeding 31 days.
CALIBRATION_INTERVAL_DAYS = 31.0
#: Bounds of a device's declared `interval_s`: fast noise/gas loggers report several times a
#: second; a fixed monitor silent for more than an hour is not monitoring (and a huge interval
#: would switch off offline detection: issue 15).
INTERVAL_MIN_S = 0.1
INTERVAL_MAX_S = 3600.0

#: Offline alerts of one site within STORM_WINDOW_S before they are folded into one site-level
#: alert. Ten separate alerts are still readable on a board; twenty thousand bury a real alarm.
STORM_DEVICES = 10
STORM_WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """Thresholds of the sensor-health checks (documented in docs/alerts.md).

    - `sensor_range`: per hazard (low, high) in the canonical unit → `out_of_range`.
    - `stuck_hazards` / `stuck_after_s` / `stuck_tolerance`: a value that changes by no more than
      the tolerance for `stuck_after_s` of event time → `stuck`.
    - `offline_k` × the device's `interval_s` (status metadata, else `default_interval_s`), at
      least `min_silence_s`, without a reading → `offline`; a status `offline` (Last Will) too.
    - `gap_clear_s`: a `gap` alert clears after this long (event time) without a new gap.
    - `calibration_days`: `calibrated_on` older than this → `calibration_due`.
    - `storm_devices` / `storm_window_s`: that many devices of one site going offline within the
      window → one site-level alert for all of them (alerts/health_storm.py).
    - `interval_min_s` / `interval_max_s`: the accepted range of a status `interval_s`; outside
      it the value is dead-lettered and ignored.
    """

    sensor_range: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_SENSOR_RANGE))
    stuck_hazards: frozenset[str] = DEFAULT_STUCK_HAZARDS
    stuck_after_s: float = 1800.0
    stuck_tolerance: Mapping[str, float] = field(default_factory=dict)
    offline_k: float = 3.0
    default_interval_s: float = 60.0
    min_silence_s: float = 30.0
    gap_clear_s: float = 600.0
    calibration_days: float = CALIBRATION_INTERVAL_DAYS
    storm_devices: int = STORM_DEVICES
    storm_window_s: float = STORM_WINDOW_S
    interval_min_s: float = INTERVAL_MIN_S
    interval_max_s: float = INTERVAL_MAX_S

    def silence_limit_s(self, interval_s: float | None) -> float:
        return max(self.offline_k * (interval_s or self.default_interval_s), self.min_silence_s)
