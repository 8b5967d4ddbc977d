"""Named alert-lifecycle policy: hysteresis, hold times, flapping and escalation timers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rules.results import Direction, Limit
from rules.types import Hazard, RuleKind, Severity

#: Deadband (canonical unit) below a limit that a value must reach before an alert may clear,
#: used when the limit has no explicit `clear_at`. Chosen a little above typical sensor
#: resolution/noise so one noisy sample cannot clear: CH4 detectors resolve 0.01-0.05 %vol,
#: O2 cells about 0.1 %vol, sound level meters are class 1/2 (±1 dB).
DEFAULT_DEADBAND: dict[str, float] = {
    Hazard.CH4: 0.1,
    Hazard.O2: 0.3,
    Hazard.CO2: 500.0,
    Hazard.NOISE: 1.0,
    Hazard.NOISE_PEAK: 1.0,
}

#: Time to acknowledge before an `escalated` event, per severity. Control rooms aim to answer
#: immediate-danger alarms within a minute (anchors.md [BL6]: 99 % of alerts acknowledged within
#: 60 s); a malfunction must be answered during the shift, but not left for long (75.351(b)(2)).
DEFAULT_ESCALATE_AFTER_S: dict[Severity, float] = {
    Severity.CRITICAL: 60.0,
    Severity.ALARM: 120.0,
    Severity.WARNING: 900.0,
    Severity.MALFUNCTION: 600.0,
}


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """How alerts are held, cleared, suppressed and escalated (documented in docs/alerts.md).

    - `clear_hold_s`: event-time seconds the value must stay beyond the clear level.
    - `deadband_fraction` / `deadband_abs`: clear level = lowest tier threshold ∓ deadband, where
      the deadband is `deadband_abs[hazard]` (level/STEL/TWA/LEX rules) or else
      `deadband_fraction * |threshold|`; a limit's own `clear_at` wins over both.
    - `flap_window_s`: a cleared alert raised again within this event time re-opens (same id);
      from then on it clears only after `flap_window_s` beyond the clear level.
    - `escalate_after_s`: wall-clock seconds to acknowledge, per severity; `remind_every_s`
      repeats `escalated` while still unacknowledged (None: once only).
    - `keep_cleared_s` / `max_cleared`: how long cleared alerts can still be acknowledged.
    """

    clear_hold_s: float = 60.0
    deadband_fraction: float = 0.05
    deadband_abs: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_DEADBAND))
    flap_window_s: float = 600.0
    escalate_after_s: Mapping[Severity, float] = field(default_factory=lambda: dict(DEFAULT_ESCALATE_AFTER_S))
    remind_every_s: float | None = 900.0
    keep_cleared_s: float = 86_400.0
    max_cleared: int = 10_000

    def clear_level(self, lowest: Limit) -> float:
        """Value at or beyond which an alert on `lowest`'s rule may start its clear hold."""
        if lowest.clear_at is not None:
            return lowest.clear_at
        band = self.deadband_fraction * abs(lowest.threshold)
        if lowest.rule is not RuleKind.DOSE and str(lowest.hazard) in self.deadband_abs:
            band = self.deadband_abs[str(lowest.hazard)]
        if lowest.direction is Direction.BELOW:
            return lowest.threshold + band
        return lowest.threshold - band

    def escalate_after(self, severity: Severity) -> float:
        return self.escalate_after_s.get(severity, DEFAULT_ESCALATE_AFTER_S[severity])
