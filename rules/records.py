"""Exposure records (SPEC §3, §4 `exposure`) from a channel's segment accumulators."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rules import exposure as ex
from rules.profiles import ProfileBook, limit_tier
from rules.results import Averaging, ExposureRecord
from rules.state import NQ, Q_COVERED, Q_DOSE, Q_PRIMARY
from rules.types import SOUND_LEVEL_HAZARDS, ChannelKey, Hazard, RuleKind

#: Record field name for the limit of each rule (SPEC §4: `limit_twa8` etc.).
LIMIT_FIELD = {
    RuleKind.TWA: "limit_twa8",
    RuleKind.STEL: "limit_stel15",
    RuleKind.LEX8H: "limit_lex8h",
    RuleKind.DOSE: "limit_dose_pct",
    RuleKind.LEVEL: "limit_level",
}


@dataclass(frozen=True, slots=True)
class SegmentTotals:
    """What a record is made of: integrals over the segment and its extremes."""

    start_s: float
    end_s: float
    label: str
    acc: tuple[float, ...]  # NQ integrals
    peak: float
    stel_max: float
    silence_max: float
    n: int


#: Record field of a `twa` limit that is a shift average (it compares `shift_avg`, not `twa8`).
SHIFT_AVG_LIMIT_FIELD = "limit_shift_avg"


def limits_of(book: ProfileBook, profile: str, hazard: Hazard) -> dict[str, float]:
    """The `limit_*` fields of a record: the tier that is "the limit" of each rule."""
    prof = book.profile(profile)
    out: dict[str, float] = {}
    for rule, name in LIMIT_FIELD.items():
        ids = prof.tiers(hazard, rule)
        if ids:
            lim = book.limits[limit_tier(book.limits, ids)]
            out[SHIFT_AVG_LIMIT_FIELD if lim.averaging is Averaging.SHIFT else name] = lim.threshold
    return out


def twa_averaging(book: ProfileBook, profile: str, hazard: Hazard) -> Averaging:
    """The averaging period of the profile's `twa` limit of a hazard (8 h when it has none)."""
    ids = book.profile(profile).tiers(hazard, RuleKind.TWA)
    return book.limits[ids[0]].averaging if ids else Averaging.EIGHT_HOURS


def make_record(
    key: ChannelKey, seg: SegmentTotals, profile: str, limits: Mapping[str, float], final: bool,
    averaging: Averaging = Averaging.EIGHT_HOURS,
) -> ExposureRecord:  # fmt: skip
    """twa8 = ∫C dt / 8 h (noise: LEX,8h), coverage = covered / segment length (SPEC §3); with a
    shift-average limit also shift_avg = ∫C dt / segment length (30 CFR 70.100)."""
    acc = np.asarray(seg.acc, dtype=np.float64).reshape(NQ)
    sound = key.hazard in SOUND_LEVEL_HAZARDS
    lex = float(ex.lex8h(float(acc[Q_PRIMARY]))) if sound else None
    length = seg.end_s - seg.start_s
    per_shift = averaging is Averaging.SHIFT and not sound and length > 0
    return ExposureRecord(
        key=key,
        shift=seg.label,
        shift_start_s=seg.start_s,
        shift_end_s=seg.end_s,
        twa8=lex if lex is not None else float(ex.twa8(float(acc[Q_PRIMARY]))),
        stel15_max=None if sound or not math.isfinite(seg.stel_max) else seg.stel_max,
        peak=seg.peak,
        coverage=float(min(1.0, acc[Q_COVERED] / length)) if length > 0 else 0.0,
        max_gap_s=seg.silence_max,
        lex8h=lex if key.hazard is Hazard.NOISE else None,
        dose_pct=float(ex.dose_pct(float(acc[Q_DOSE]))) if key.hazard is Hazard.NOISE else None,
        profile=profile,
        limits=dict(limits),
        final=final,
        averaging=averaging if per_shift else Averaging.EIGHT_HOURS,
        shift_avg=float(ex.shift_average(float(acc[Q_PRIMARY]), length)) if per_shift else None,
    )
