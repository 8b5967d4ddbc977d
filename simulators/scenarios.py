"""Named scenarios: which incidents happen, when (seconds after the start) and where.

- `quiet`: baseline only.
- `methane`, `blasting`, `oxygen-dip`: one incident at +10 min (run at least 1-1.5 h).
- `silent-sensor`: a fixed gas detector is silent from +10 min for 30 min (run 1 h).
- `noisy-shift`: noise 92-95 dBA in a face from the start for 8 h (run 8 h).
- `demo`: noisy shift from +5 min (8 h), methane +10 min, silent sensor +20 min (30 min),
  blasting +75 min, oxygen dip +120 min (run at least 2.5 h).
- `month`: methane on days 2 and 23, blasting on days 6 and 27 (just before a shift change),
  silent sensor day 9 (6 h), oxygen dip day 14, noisy shift day 19 (06-14 h) (run 30 days).

Offsets in `month` are chosen so that, when the start is a midnight UTC, the incidents fall at
plausible hours (blasting at 13:50 and 21:50, before the 14:00 and 22:00 shift changes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulators.incidents import (
    BlastingFumes,
    Incident,
    MethaneRise,
    NoisyShift,
    OxygenDip,
    SilentSensor,
)
from simulators.layout import Device

_M = 60.0
_H = 3600.0
_D = 86400.0


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    incidents: tuple[Incident, ...] = ()
    description: str = ""

    def resolve(self, devices: Sequence[Device]) -> Scenario:
        """The same scenario with every incident's target filled in from the layout."""
        return Scenario(self.name, tuple(i.resolve(devices) for i in self.incidents), self.description)

    def timeline(self) -> list[str]:
        """One line per incident, in time order: `+HH:MM  label  where` (day prefix past 24 h)."""
        lines = []
        for inc in sorted(self.incidents, key=lambda i: i.at_s):
            days, rest = divmod(int(inc.at_s), int(_D))
            hh, mm = divmod(rest // 60, 60)
            when = f"+{days}d{hh:02d}:{mm:02d}" if days else f"+{hh:02d}:{mm:02d}"
            lines.append(f"{when}  {inc.label}  {inc.where()}")
        return lines


def _demo() -> tuple[Incident, ...]:
    return (
        NoisyShift(5 * _M),
        MethaneRise(10 * _M),
        SilentSensor(20 * _M, duration_s=30 * _M),
        BlastingFumes(75 * _M),
        OxygenDip(120 * _M),
    )


def _month() -> tuple[Incident, ...]:
    return (
        MethaneRise(2 * _D + 9.5 * _H),
        BlastingFumes(6 * _D + 13 * _H + 50 * _M),
        SilentSensor(9 * _D + 10 * _H, duration_s=6 * _H),
        OxygenDip(14 * _D + 10 * _H),
        NoisyShift(19 * _D + 6 * _H, duration_s=8 * _H),
        MethaneRise(23 * _D + 17 * _H),
        BlastingFumes(27 * _D + 21 * _H + 50 * _M),
    )


_SCENARIOS: dict[str, tuple[str, Callable[[], tuple[Incident, ...]]]] = {
    "quiet": ("baseline only, no incidents", tuple),
    "methane": (
        "methane rises past 1.0 and 1.5 %vol in a face, then clears",
        lambda: (MethaneRise(10 * _M),),
    ),
    "blasting": ("blasting fumes: CO/NO2 spike decaying over ~30 min", lambda: (BlastingFumes(10 * _M),)),
    "silent-sensor": (
        "a fixed gas detector stops publishing for 30 min (status offline)",
        lambda: (SilentSensor(10 * _M, duration_s=30 * _M),),
    ),
    "oxygen-dip": ("oxygen falls to 18.5 %vol for ~15 min", lambda: (OxygenDip(10 * _M),)),
    "noisy-shift": ("noise 92-95 dBA in a face for a whole shift", lambda: (NoisyShift(0.0),)),
    "demo": ("every incident within the first 2.5 h", _demo),
    "month": ("incidents spread over 30 days, for a monthly report", _month),
}
SCENARIO_NAMES: tuple[str, ...] = tuple(_SCENARIOS)


def scenario(name: str) -> Scenario:
    """The named scenario (see `SCENARIO_NAMES`); ValueError naming the choices otherwise."""
    try:
        description, make = _SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}: use one of {', '.join(SCENARIO_NAMES)}") from None
    return Scenario(name, make(), description)
