"""Exposure records (SPEC §3, §4 `exposure`) from a channel's segment accumulators."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from rules import exposure as ex
from rules.profiles import ProfileBook, limit_tier
from rules.results import ExposureRecord
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


def limits_of(book: ProfileBook, profile: str, hazard: Hazard) -> dict[str, float]:
    """The `limit_*` fields of a record: the tier that is "the limit" of each rule."""
    prof = book.profile(profile)
    out: dict[str, float] = {}
    for rule, name in LIMIT_FIELD.items():
        ids = prof.tiers(hazard, rule)
        if ids:
            out[name] = book.limits[limit_tier(book.limits, ids)].threshold
    return out


def make_record(
    key: ChannelKey, seg: SegmentTotals, profile: str, limits: Mapping[str, float], final: bool
) -> ExposureRecord:
    """twa8 = ∫C dt / 8 h (noise: LEX,8h), coverage = covered / segment length (SPEC §3)."""
    acc = np.asarray(seg.acc, dtype=np.float64).reshape(NQ)
    sound = key.hazard in SOUND_LEVEL_HAZARDS
    lex = float(ex.lex8h(float(acc[Q_PRIMARY]))) if sound else None
    length = seg.end_s - seg.start_s
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
    )
