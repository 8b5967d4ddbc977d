"""Typed values shared by every stage: hazards, severities, rules, channels and batches.

Readings travel between stages as columnar arrays (`ReadingBatch`), never as per-reading
objects. A channel is one (site, zone, device, hazard, worker) stream; its integer id indexes
every per-channel state array in the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]


class Hazard(StrEnum):
    CH4 = "ch4"
    CO = "co"
    H2S = "h2s"
    NO2 = "no2"
    NO = "no"
    SO2 = "so2"
    CO2 = "co2"
    O2 = "o2"
    RESPIRABLE_DUST = "respirable_dust"
    SILICA = "silica"
    DPM = "dpm"
    NOISE = "noise"
    NOISE_PEAK = "noise_peak"


#: Canonical unit of each hazard (SPEC §2.1); every stored and computed value uses it.
CANONICAL_UNIT: dict[Hazard, str] = {
    Hazard.CH4: "%vol",
    Hazard.CO: "ppm",
    Hazard.H2S: "ppm",
    Hazard.NO2: "ppm",
    Hazard.NO: "ppm",
    Hazard.SO2: "ppm",
    Hazard.CO2: "ppm",
    Hazard.O2: "%vol",
    Hazard.RESPIRABLE_DUST: "mg/m3",
    Hazard.SILICA: "mg/m3",
    Hazard.DPM: "mg/m3",
    Hazard.NOISE: "dBA",
    Hazard.NOISE_PEAK: "dBC",
}

#: Hazards whose exposure is a sound level (energy-averaged, not arithmetic).
SOUND_LEVEL_HAZARDS = frozenset({Hazard.NOISE, Hazard.NOISE_PEAK})


class Severity(StrEnum):
    WARNING = "warning"
    ALARM = "alarm"
    CRITICAL = "critical"
    MALFUNCTION = "malfunction"

    @property
    def rank(self) -> int:
        """Order for escalation: warning < alarm < critical; malfunction is its own track."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.WARNING: 0, Severity.ALARM: 1, Severity.CRITICAL: 2, Severity.MALFUNCTION: 3}
#: Severity codes used in columnar arrays (`ConditionBatch.severity`); -1 means "no limit exceeded".
SEVERITY_BY_CODE: tuple[Severity, ...] = (Severity.WARNING, Severity.ALARM, Severity.CRITICAL, Severity.MALFUNCTION)
NO_SEVERITY = -1


class RuleKind(StrEnum):
    LEVEL = "level"
    STEL = "stel"
    TWA = "twa"
    LEX8H = "lex8h"
    DOSE = "dose"
    OFFLINE = "offline"
    OUT_OF_RANGE = "out_of_range"
    STUCK = "stuck"
    CALIBRATION_DUE = "calibration_due"
    GAP = "gap"
    MIXTURE = "mixture"  # Σ Ci/Li of the gases a profile groups (29 CFR 1910.1000(d)(2)(i))
    TWA_PROJECTED = "twa_projected"  # shift TWA projected to the shift's end: an early warning
    NOT_JUDGED = "not_judged"  # a measured hazard has no limit in the site's profile (configuration)
    INTEGRITY = "integrity"  # the gateway's retained alarm topics or alert stream tampered with
    CAPACITY = "capacity"  # readings refused: channels beyond a site's inventory


#: Rule codes used in columnar arrays (`ConditionBatch.rule`).
RULE_BY_CODE: tuple[RuleKind, ...] = tuple(RuleKind)
RULE_CODE: dict[RuleKind, int] = {r: i for i, r in enumerate(RULE_BY_CODE)}
#: Rules about the monitoring itself (severity `malfunction`), not about exposure.
HEALTH_RULES = frozenset(
    {RuleKind.OFFLINE, RuleKind.OUT_OF_RANGE, RuleKind.STUCK, RuleKind.CALIBRATION_DUE, RuleKind.GAP,
     RuleKind.INTEGRITY, RuleKind.CAPACITY}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChannelKey:
    """One monitored stream: a hazard measured by a device (worn by `worker`, if personal)."""

    site: str
    zone: str
    device: str
    hazard: Hazard
    worker: str | None = None


@dataclass(slots=True)
class ChannelRegistry:
    """Dense integer ids for channels; ids are never reused, so arrays only ever grow."""

    keys: list[ChannelKey] = field(default_factory=list)
    _ids: dict[ChannelKey, int] = field(default_factory=dict)

    def id_for(self, key: ChannelKey) -> int:
        found = self._ids.get(key)
        if found is None:
            found = len(self.keys)
            self._ids[key] = found
            self.keys.append(key)
        return found

    def get(self, key: ChannelKey) -> int | None:
        return self._ids.get(key)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, channel: int) -> ChannelKey:
        return self.keys[channel]


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Readings in canonical units, one row per reading; `t_s` is event time (epoch seconds)."""

    channel: I64
    t_s: F64
    value: F64

    def __len__(self) -> int:
        return int(self.channel.shape[0])

    @staticmethod
    def empty() -> ReadingBatch:
        return ReadingBatch(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.float64))

    @staticmethod
    def concat(parts: list[ReadingBatch]) -> ReadingBatch:
        if not parts:
            return ReadingBatch.empty()
        return ReadingBatch(
            np.concatenate([p.channel for p in parts]),
            np.concatenate([p.t_s for p in parts]),
            np.concatenate([p.value for p in parts]),
        )
