"""What the exposure engine hands to the alert and storage stages.

`ConditionBatch` is columnar: one row per (channel, rule) touched by a batch, holding the worst
(highest-severity, then latest) evaluation of that rule in the batch, or the latest one when no
limit is exceeded. `ExposureRecord` is a per-channel, per-shift figure (SPEC §3, §4 `exposure`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from rules.types import F64, I8, I32, I64, ChannelKey, Hazard, RuleKind, Severity


class Direction(StrEnum):
    ABOVE = "above"  # exceeded when value >= threshold (gases, dust, noise)
    BELOW = "below"  # exceeded when value <= threshold (oxygen deficiency)


class Averaging(StrEnum):
    """What a `twa` limit divides the shift's ∫C dt by (docs/exposure.md, "Averaging period")."""

    EIGHT_HOURS = "8h"  # 8-h TWA: Σ C·t / 8 h (29 CFR 1910.1000(d)(1)(i); Directive 98/24/EC Annex I)
    SHIFT = "shift"  # average over the shift: Σ C·t / shift length (30 CFR 70.100, 90.100)


@dataclass(frozen=True, slots=True)
class Limit:
    """One threshold tier of one rule for one hazard in one profile, with its legal source."""

    profile: str
    hazard: Hazard
    rule: RuleKind
    severity: Severity
    threshold: float  # in the hazard's canonical unit (dose: percent)
    unit: str
    direction: Direction
    source: str  # citation, e.g. "Directive (EU) 2017/164, Annex (CO, 15 min)"
    action: str  # what a safety officer should do, in plain words
    label: str = ""  # short name for messages, e.g. "STEL", "LEX,8h limit"
    clear_at: float | None = None  # hysteresis: the alert clears only beyond this value
    integration_db: float | None = None  # dose only: levels below this (dBA) add no dose
    averaging: Averaging = Averaging.EIGHT_HOURS  # twa only: 8-h TWA or shift average


@dataclass(frozen=True, slots=True)
class ConditionBatch:
    """Columnar rule evaluations; `limit` indexes `ProfileBook.limits` (-1: none exceeded)."""

    channel: I64
    rule: I8  # index into rules.types.RULE_BY_CODE
    severity: I8  # index into rules.types.SEVERITY_BY_CODE, or NO_SEVERITY (-1)
    value: F64  # the figure the rule compares (ppm, %vol, dBA, % dose ...)
    threshold: F64  # threshold of the exceeded tier, or of the lowest tier when none is exceeded
    t_s: F64  # event time of the evaluation
    limit: I32

    def __len__(self) -> int:
        return int(self.channel.shape[0])

    @staticmethod
    def empty() -> ConditionBatch:
        return ConditionBatch(
            np.empty(0, np.int64),
            np.empty(0, np.int8),
            np.empty(0, np.int8),
            np.empty(0, np.float64),
            np.empty(0, np.float64),
            np.empty(0, np.float64),
            np.empty(0, np.int32),
        )


@dataclass(frozen=True, slots=True)
class ExposureRecord:
    """Shift exposure of one channel (SPEC §3); `final` once the shift has closed."""

    key: ChannelKey
    shift: str  # "YYYY-MM-DD/N"
    shift_start_s: float
    shift_end_s: float
    twa8: float  # (1/8 h) * integral(C dt), canonical unit; for noise the energy-average level
    stel15_max: float | None  # largest 15-min trailing time-weighted mean (None: no data)
    peak: float
    coverage: float  # fraction of the shift with data, 0..1
    max_gap_s: float  # longest silence inside the shift
    lex8h: float | None = None  # noise only, dB(A)
    dose_pct: float | None = None  # noise only, with the profile's criterion / exchange rate
    profile: str = ""
    limits: dict[str, float] = field(default_factory=dict)  # e.g. {"limit_twa8": 20.0}
    final: bool = True
    sensor_faulty: bool = False  # computed while the sensor was flagged (issue 5)
    averaging: Averaging = Averaging.EIGHT_HOURS  # what the profile's twa limit compares
    shift_avg: float | None = None  # ∫C dt / shift length, when the twa limit is a shift average


@dataclass(frozen=True, slots=True)
class EngineResult:
    conditions: ConditionBatch
    exposures: list[ExposureRecord]
