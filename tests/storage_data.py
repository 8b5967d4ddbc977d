"""Builders of readings, exposures and alert events for the storage tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from alerts.types import AlertEvent, AlertEventKind
from rules.results import ExposureRecord
from rules.types import ChannelKey, Hazard, ReadingBatch, RuleKind, Severity

T0 = 1_795_327_200.0  # 2026-11-22T06:00:00Z, start of shift 1

KEYS = [
    ChannelKey("kop-1", "north-adit", "gd-17", Hazard.CO),
    ChannelKey("kop-1", "north-adit", "gd-17", Hazard.CH4),
    ChannelKey("kop-1", "south", "pm-3", Hazard.NOISE, worker="w-042"),
    ChannelKey("kop-2", "shaft", "gd-1", Hazard.O2),
]


def batch(channel: Any, t_s: Any, value: Any) -> ReadingBatch:
    """A batch from sequences or arrays."""
    return ReadingBatch(np.asarray(channel, np.int64), np.asarray(t_s, np.float64), np.asarray(value, np.float64))


def grid(n_per_channel: int, step_s: float = 1.0) -> ReadingBatch:
    """Every channel of KEYS at T0, T0+step, ...; value = channel*1000 + i + 0.25."""
    n = len(KEYS)
    channel = np.tile(np.arange(n, dtype=np.int64), n_per_channel)
    i = np.repeat(np.arange(n_per_channel, dtype=np.float64), n)
    return ReadingBatch(channel, T0 + i * step_s, channel * 1000.0 + i + 0.25)


def exposure(key: ChannelKey = KEYS[0], *, final: bool = True, twa8: float = 12.5, **kw: object) -> ExposureRecord:
    base: dict[str, object] = dict(
        key=key, shift="2026-11-22/1", shift_start_s=T0, shift_end_s=T0 + 8 * 3600, twa8=twa8,
        stel15_max=40.0, peak=112.4, coverage=0.97, max_gap_s=61.0, profile="eu",
        limits={"limit_twa8": 20.0, "limit_stel15": 100.0}, final=final,
    )  # fmt: skip
    base.update(kw)
    return ExposureRecord(**base)  # type: ignore[arg-type]


def alert(
    event: AlertEventKind = AlertEventKind.RAISED,
    *,
    t_s: float = T0 + 100.5,
    key: ChannelKey = KEYS[0],
    rule: RuleKind = RuleKind.STEL,
    severity: Severity = Severity.ALARM,
    **kw: object,
) -> AlertEvent:
    base: dict[str, object] = dict(
        alert_id="a-1", event=event, severity=severity, rule=rule, site=key.site, zone=key.zone,
        device=key.device, hazard=str(key.hazard), worker=key.worker, value=112.4, threshold=100.0,
        unit="ppm", t_s=t_s, since_s=T0 + 100.5, profile="eu",
        limit_source="Directive (EU) 2017/164, Annex (CO, 15 min)",
        action="Leave the area; ventilate; find the source",
        message='CO 15-min average 112 ppm exceeds the 100 ppm "STEL", \\ here',
    )  # fmt: skip
    base.update(kw)
    return AlertEvent(**base)  # type: ignore[arg-type]
