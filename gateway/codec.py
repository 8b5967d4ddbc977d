"""The wire codec (SPEC §2): topics, reading payloads, units, event time, status and ack messages.

Everything that arrives from MQTT passes through here first. A message is accepted whole or
rejected whole with a `PayloadError` whose text tells the sender what to fix; the gateway turns
that text into a dead letter. Nothing here does I/O or reads a clock: `now_s` is passed in.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np

from rules.errors import PayloadError
from rules.text import shorten
from rules.types import CANONICAL_UNIT, F64, Hazard

MAX_PAYLOAD_BYTES = 256 * 1024  # SPEC §2.1
MAX_SERIES_VALUES = 100_000  # bounds one message's work; 256 KiB of JSON holds fewer anyway
DEFAULT_MAX_AGE_S = 7 * 86400.0  # SPEC §2.1: readings up to 7 days old are accepted
DEFAULT_MAX_FUTURE_S = 300.0  # SPEC §2.1: more than 5 minutes in the future is dead-lettered
_LEVEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class TopicKind(StrEnum):
    DATA = "data"
    STATUS = "status"
    ACK = "ack"


@dataclass(frozen=True, slots=True)
class Topic:
    kind: TopicKind
    site: str
    zone: str = ""
    device: str = ""


@functools.lru_cache(maxsize=65536)
def parse_topic(topic: str, prefix: str) -> Topic:
    """`P/{site}/{zone}/{device}/data|status` or `P/{site}/ack`; anything else is a PayloadError."""
    parts = topic.split("/")
    head = prefix.split("/")
    if parts[: len(head)] != head:
        raise PayloadError(f"topic {shorten(topic)!r} is not under the prefix {prefix!r}")
    rest = parts[len(head) :]
    if len(rest) == 2 and rest[1] == TopicKind.ACK:
        _check_levels(topic, rest[:1])
        return Topic(TopicKind.ACK, rest[0])
    if len(rest) == 4 and rest[3] in (TopicKind.DATA, TopicKind.STATUS):
        _check_levels(topic, rest[:3])
        return Topic(TopicKind(rest[3]), rest[0], rest[1], rest[2])
    raise PayloadError(
        f"topic {shorten(topic)!r} is not {prefix}/{{site}}/{{zone}}/{{device}}/data|status or {prefix}/{{site}}/ack"
    )


def _check_levels(topic: str, levels: list[str]) -> None:
    for name, level in zip(("site", "zone", "device"), levels, strict=False):
        if not _LEVEL.fullmatch(level):
            raise PayloadError(
                f"topic {shorten(topic)!r}: {name} {shorten(level, 80)!r} must be 1-64 characters of letters, "
                "digits, '_', '.', '-'"
            )


# ---------------------------------------------------------------------------------------------
# Units: factor to the canonical unit of each hazard (SPEC §2.1 table).
_PPM_PER_PERCENT = 10_000.0  # 1 %vol = 10 000 ppm (by definition of parts per million by volume)
UNIT_FACTORS: dict[Hazard, dict[str, float]] = {
    Hazard.CH4: {"%vol": 1.0, "ppm": 1.0 / _PPM_PER_PERCENT},
    Hazard.CO: {"ppm": 1.0, "ppb": 1e-3},
    Hazard.H2S: {"ppm": 1.0, "ppb": 1e-3},
    Hazard.NO2: {"ppm": 1.0, "ppb": 1e-3},
    Hazard.NO: {"ppm": 1.0, "ppb": 1e-3},
    Hazard.SO2: {"ppm": 1.0, "ppb": 1e-3},
    Hazard.CO2: {"ppm": 1.0, "%vol": _PPM_PER_PERCENT},
    Hazard.O2: {"%vol": 1.0},
    Hazard.RESPIRABLE_DUST: {"mg/m3": 1.0, "ug/m3": 1e-3},
    Hazard.SILICA: {"mg/m3": 1.0, "ug/m3": 1e-3},
    Hazard.DPM: {"mg/m3": 1.0, "ug/m3": 1e-3},
    Hazard.NOISE: {"dBA": 1.0},
    Hazard.NOISE_PEAK: {"dBC": 1.0},
}
#: Physically possible range of each hazard in its canonical unit; outside it a value is an error.
#: Gas fractions cannot exceed the whole (100 %vol = 1e6 ppm); sound in air distorts above ~194 dB.
PHYSICAL_RANGE: dict[Hazard, tuple[float, float]] = {
    **{h: (0.0, 1e6) for h in (Hazard.CO, Hazard.H2S, Hazard.NO2, Hazard.NO, Hazard.SO2, Hazard.CO2)},
    Hazard.CH4: (0.0, 100.0),
    Hazard.O2: (0.0, 100.0),
    Hazard.RESPIRABLE_DUST: (0.0, 1e4),
    Hazard.SILICA: (0.0, 1e4),
    Hazard.DPM: (0.0, 1e4),
    Hazard.NOISE: (0.0, 200.0),
    Hazard.NOISE_PEAK: (0.0, 200.0),
}


_HAZARDS = {h.value: h for h in Hazard}


def hazard_of(name: str) -> Hazard:
    found = _HAZARDS.get(name)
    if found is None:
        raise PayloadError(f"unknown hazard {name!r}: use one of {', '.join(_HAZARDS)}")
    return found


def unit_factor(hazard: Hazard, unit: str) -> float:
    factors = UNIT_FACTORS[hazard]
    factor = factors.get(unit)
    if factor is None:
        raise PayloadError(f"unit {unit!r} is not accepted for {hazard.value}: use {' or '.join(factors)}")
    return factor


def _impossible(hazard: Hazard, value: float, unit: str) -> PayloadError:
    if not math.isfinite(value):
        return PayloadError(f"{hazard.value}: values must be finite numbers (no NaN or infinity)")
    lo, hi = PHYSICAL_RANGE[hazard]
    return PayloadError(
        f"{hazard.value} value {value:g} {unit} is physically impossible "
        f"(allowed {lo:g}..{hi:g} {CANONICAL_UNIT[hazard]})"
    )


def canonical_value(hazard: Hazard, unit: str, value: float) -> float:
    """One value in `unit` → the hazard's canonical unit, checked to be physically possible."""
    out = value * unit_factor(hazard, unit)
    lo, hi = PHYSICAL_RANGE[hazard]
    if not lo <= out <= hi:  # also false for NaN
        raise _impossible(hazard, value, unit)
    return out


def to_canonical(hazard: Hazard, unit: str, values: F64) -> F64:
    """Values in `unit` → the hazard's canonical unit, checked to be physically possible."""
    factor = unit_factor(hazard, unit)
    out = values * factor if factor != 1.0 else values
    lo, hi = PHYSICAL_RANGE[hazard]
    ok = (out >= lo) & (out <= hi)  # NaN compares false
    if not ok.all():
        raise _impossible(hazard, float(values[np.argmin(ok)]), unit)
    return out


# ---------------------------------------------------------------------------------------------
# Event time.
def parse_time(raw: object) -> float:
    """Epoch seconds (number) or RFC 3339 with an offset ('Z' or '+hh:mm') → epoch seconds."""
    if isinstance(raw, bool):
        raise PayloadError("time must be epoch seconds or an RFC 3339 string, not a boolean")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise PayloadError("time must be a finite number of epoch seconds")
        return float(raw)
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            dt = None
        if dt is None or dt.tzinfo is None or "T" not in raw.upper():
            raise PayloadError(
                f"time {raw[:64]!r} is not RFC 3339 with an offset (e.g. 2026-11-22T09:41:07Z) nor epoch seconds"
            )
        return dt.timestamp()
    raise PayloadError("time must be epoch seconds (number) or an RFC 3339 string")


def check_window(t_s: F64, now_s: float, max_age_s: float, max_future_s: float) -> None:
    if t_s.size:
        check_span(float(t_s.min()), float(t_s.max()), now_s, max_age_s, max_future_s)


def check_span(oldest: float, newest: float, now_s: float, max_age_s: float, max_future_s: float) -> None:
    """Event times must lie within [now - max_age, now + max_future] (SPEC §2.1)."""
    if newest > now_s + max_future_s:
        raise PayloadError(
            f"time stamp {newest - now_s:.0f} s in the future (more than {max_future_s:.0f} s): "
            "check the sensor's clock (NTP)"
        )
    if oldest < now_s - max_age_s:
        raise PayloadError(
            f"time stamp {(now_s - oldest) / 86400:.1f} days old (older than "
            f"{max_age_s / 86400:g} days are not accepted): replay it through a backfill instead"
        )
