"""Synthetic shift exposures and alert events for report tests and the report benchmark.

Deterministic (seeded). Shifts follow the default calendar (06:00, 14:00, 22:00 UTC); area
monitors report every shift, personal monitors the one shift a day their wearer works.
Limits are carried in each record's `limits` dict the way the engine writes them.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from alerts.types import AlertEvent, AlertEventKind
from rules.results import ExposureRecord
from rules.types import ChannelKey, Hazard, RuleKind, Severity

SHIFT_STARTS_H = (6, 14, 22)
SHIFT_S = 8 * 3600.0
#: Limits as the engine stores them in a record: the limit tier of each rule (rules/records.py).
LIMITS: dict[Hazard, dict[str, float]] = {
    Hazard.CO: {"limit_twa8": 20.0, "limit_stel15": 100.0},
    Hazard.SILICA: {"limit_twa8": 0.1},
    Hazard.NOISE: {"limit_lex8h": 87.0},
}
#: Profile rows as `rules.profiles.describe_limits` gives them (EU values; the CO and silica
#: action levels are a site's own, as a test profile would add them).
PROFILE_ROWS: list[dict[str, str]] = [
    {"hazard": h, "rule": r, "severity": s, "threshold": t, "unit": u, "direction": "above", "label": lab,
     "source": src, "action": ""}
    for h, r, s, t, u, lab, src in (
        ("noise", "lex8h", "warning", "80", "dBA", "LEX,8h lower action value", "Directive 2003/10/EC, Art. 3(1)(c)"),
        ("noise", "lex8h", "warning", "85", "dBA", "LEX,8h upper action value", "Directive 2003/10/EC, Art. 3(1)(b)"),
        ("noise", "lex8h", "alarm", "87", "dBA", "LEX,8h exposure limit value", "Directive 2003/10/EC, Art. 3(1)(a)"),
        ("co", "stel", "alarm", "100", "ppm", "CO 15-min limit", "Directive (EU) 2017/164, Annex (CO, 15 min)"),
        ("co", "twa", "warning", "10", "ppm", "CO 8-h action level", "site rule (test)"),
        ("co", "twa", "alarm", "20", "ppm", "CO 8-h limit", "Directive (EU) 2017/164, Annex (CO, 8 h)"),
        ("silica", "twa", "warning", "0.05", "mg/m3", "silica action level", "site rule (test)"),
        ("silica", "twa", "alarm", "0.1", "mg/m3", "silica 8-h limit", "Directive 2004/37/EC, Annex III"),
    )
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Channel:
    key: ChannelKey
    gm: float  # geometric mean of the shift TWA (noise: mean LEX,8h in dB)
    gsd: float  # geometric standard deviation (noise: standard deviation in dB)
    shift_no: int | None = None  # personal monitors: the one shift a day the wearer works


@dataclass(slots=True)
class MonthSpec:
    site: str = "kop-1"
    zones: tuple[str, ...] = ("north-adit", "face-3", "workshop")
    area_devices_per_zone: int = 2
    workers_per_zone: int = 3
    gm_scale: float = 1.0  # multiply every GM (a worse or better month)
    seed: int = 7
    faulty_rate: float = 0.01
    low_coverage_rate: float = 0.02
    zone_gm: dict[str, float] = field(default_factory=lambda: {"north-adit": 4.0, "face-3": 9.0, "workshop": 1.5})


def channels(spec: MonthSpec) -> list[Channel]:
    out = []
    for zi, zone in enumerate(spec.zones):
        gm = spec.zone_gm.get(zone, 3.0) * spec.gm_scale
        for d in range(spec.area_devices_per_zone):
            dev = f"gd-{zi}{d}"
            out.append(Channel(ChannelKey(spec.site, zone, dev, Hazard.CO), gm, 1.8))
            out.append(Channel(ChannelKey(spec.site, zone, dev, Hazard.SILICA), gm / 100.0, 2.2))
        for w in range(spec.workers_per_zone):
            dev, worker = f"pm-{zi}{w}", f"worker-{zi}{w}"
            shift_no = 1 + w % 3
            out.append(Channel(ChannelKey(spec.site, zone, dev, Hazard.CO, worker), gm * 0.8, 2.0, shift_no))
            noise_db = 78.0 + 2.0 * zi + 2.0 * np.log2(spec.gm_scale)
            out.append(Channel(ChannelKey(spec.site, zone, dev, Hazard.NOISE, worker), noise_db, 3.0, shift_no))
    return out


def shifts_of(month: str) -> list[tuple[str, float]]:
    """(shift id, start epoch s) of every shift that starts in the month (UTC calendar)."""
    y, m = (int(p) for p in month.split("-"))
    out = []
    for day in range(1, calendar.monthrange(y, m)[1] + 1):
        for n, h in enumerate(SHIFT_STARTS_H, start=1):
            out.append((f"{y:04d}-{m:02d}-{day:02d}/{n}", datetime(y, m, day, h, tzinfo=UTC).timestamp()))
    return out


def exposures(spec: MonthSpec, month: str) -> Iterator[ExposureRecord]:
    rng = np.random.default_rng(spec.seed)
    shifts = shifts_of(month)
    for ch in channels(spec):
        mine = [s for s in shifts if ch.shift_no is None or s[0].endswith(f"/{ch.shift_no}")]
        n = len(mine)
        if ch.key.hazard is Hazard.NOISE:
            values = rng.normal(ch.gm, ch.gsd, n)
        else:
            values = np.exp(rng.normal(np.log(ch.gm), np.log(ch.gsd), n))
        coverage = np.where(rng.random(n) < spec.low_coverage_rate, rng.uniform(0.05, 0.2, n), 1.0)
        faulty = rng.random(n) < spec.faulty_rate
        for (shift, start), v, cov, bad in zip(mine, values, coverage, faulty, strict=True):
            yield _record(ch, shift, start, float(v), float(cov), bool(bad))


def _record(ch: Channel, shift: str, start: float, v: float, cov: float, bad: bool) -> ExposureRecord:
    noise = ch.key.hazard is Hazard.NOISE
    return ExposureRecord(
        key=ch.key, shift=shift, shift_start_s=start, shift_end_s=start + SHIFT_S,
        twa8=v, stel15_max=None if noise else v * 2.5, peak=v * 4.0, coverage=cov,
        max_gap_s=0.0 if cov == 1.0 else (1 - cov) * SHIFT_S,
        lex8h=v if noise else None, dose_pct=100.0 * 10 ** ((v - 87.0) / 10.0) if noise else None,
        profile="eu", limits=dict(LIMITS[ch.key.hazard]), final=True, sensor_faulty=bad,
    )  # fmt: skip


def alert_events(spec: MonthSpec, month: str, count: int, *, seed: int = 11) -> list[AlertEvent]:
    """`count` alerts over the month: raised, mostly acknowledged after a few minutes, cleared."""
    rng = np.random.default_rng(seed)
    shifts = shifts_of(month)
    chans = [c for c in channels(spec) if c.key.hazard is Hazard.CO]
    kinds = [
        (RuleKind.STEL, Severity.ALARM),
        (RuleKind.LEVEL, Severity.WARNING),
        (RuleKind.LEVEL, Severity.CRITICAL),
        (RuleKind.OFFLINE, Severity.MALFUNCTION),
        (RuleKind.CALIBRATION_DUE, Severity.MALFUNCTION),
    ]
    events = []
    for i in range(count):
        ch = chans[int(rng.integers(len(chans)))]
        rule, sev = kinds[int(rng.integers(len(kinds)))]
        since = shifts[int(rng.integers(len(shifts)))][1] + float(rng.uniform(0, SHIFT_S))
        ack_after = float(rng.exponential(180.0)) if rng.random() > 0.15 else None
        clear_after = None if rule is RuleKind.CALIBRATION_DUE and rng.random() < 0.5 else 3600.0
        events += _alert(f"{spec.site}-{month}-a{i:05d}", ch, rule, sev, since, ack_after, clear_after, spec)
    return events


def _alert(
    alert_id: str, ch: Channel, rule: RuleKind, sev: Severity, since: float,
    ack_after: float | None, clear_after: float | None, spec: MonthSpec,
) -> list[AlertEvent]:  # fmt: skip
    k = ch.key

    def ev(kind: AlertEventKind, t: float, by: str | None = None, note: str | None = None) -> AlertEvent:
        return AlertEvent(
            alert_id,
            kind,
            sev,
            rule,
            k.site,
            k.zone,
            k.device,
            str(k.hazard),
            k.worker,
            112.0,
            100.0,
            "ppm",
            t,
            since,
            "eu",
            "Directive (EU) 2017/164, Annex (CO, 15 min)",
            "Leave the area",
            f"{rule} on {k.device}",
            by,
            note,
        )

    out = [ev(AlertEventKind.RAISED, since)]
    if ack_after is not None:
        out.append(ev(AlertEventKind.ACKNOWLEDGED, since + ack_after, "officer-1", "ventilation fixed"))
    if clear_after is not None:
        out.append(ev(AlertEventKind.CLEARED, since + clear_after))
    return out
