"""Alert lifecycles from stored alert events: counts by rule and severity, time to acknowledge.

An alert belongs to the month its condition started in (`since`). Time to acknowledge is
`t(acknowledged) − since`; an alert with no `acknowledged` event is unacknowledged, whether or
not it has cleared since. `escalations` counts the escalations for want of an acknowledgement,
`severity_rises` the rises to a higher tier (`escalated` with reason `severity_rise`); the worst
value follows the limit's direction (the events' `peak` where they carry it).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rules.types import RuleKind, Severity

#: Severities ordered for "highest reached"; malfunction is its own track (rank 3).
_RANK = {s.value: s.rank for s in Severity}
#: Severities that call for an acknowledgement in the headline (limit exceeded or worse).
URGENT = frozenset({Severity.ALARM.value, Severity.CRITICAL.value})
#: Alerts about the configuration, not about a device: "this hazard is measured without a limit"
#: (`malfunction` severity, subject zone "profile"). The report shows them with the hazards not
#: judged, never as a sensor failure.
CONFIGURATION_RULES = frozenset({RuleKind.NOT_JUDGED.value})


def parse_t(text: str) -> float:
    """RFC 3339 time stamp (store rows) → epoch seconds."""
    return datetime.fromisoformat(text).timestamp()


@dataclass(slots=True)
class AlertLife:
    """Everything the events of one alert_id tell."""

    alert_id: str
    site: str
    zone: str
    device: str
    hazard: str
    worker: str | None
    rule: str
    severity: str  # highest reached
    since_s: float
    unit: str
    threshold: float | None
    peak_value: float | None
    limit_source: str
    profile: str = ""
    direction: str = "above"  # "below" when the raising value was under its threshold (oxygen)
    ack_s: float | None = None
    ack_by: str | None = None
    ack_note: str | None = None
    cleared_s: float | None = None
    escalations: int = 0
    severity_rises: int = 0

    @property
    def time_to_ack_s(self) -> float | None:
        return None if self.ack_s is None else max(0.0, self.ack_s - self.since_s)

    def as_dict(self) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in self.__slots__}
        d["time_to_ack_s"] = self.time_to_ack_s
        return d


def _start(row: Mapping[str, Any]) -> AlertLife:
    return AlertLife(
        alert_id=str(row["alert_id"]), site=row["site"], zone=row["zone"], device=row["device"],
        hazard=row["hazard"], worker=row.get("worker"), rule=row["rule"], severity=row["severity"],
        since_s=parse_t(row.get("since") or row["t"]), unit=row.get("unit") or "",
        threshold=None, peak_value=None,
        limit_source=row.get("limit_source") or "", profile=row.get("profile") or "", direction="",
    )  # fmt: skip


def _direction(row: Mapping[str, Any]) -> str:
    """ "below" when a value under its threshold raised the alert (oxygen deficiency), else "above"."""
    value, threshold = row.get("value"), row.get("threshold")
    if value is None or threshold is None or row.get("severity") == Severity.MALFUNCTION.value:
        return "above"
    return "below" if value < threshold else "above"


def _worse(life: AlertLife, value: float) -> bool:
    """Is `value` further past the threshold than the worst seen so far (in the alert's direction)?"""
    if life.peak_value is None:
        return True
    return value < life.peak_value if life.direction == "below" else value > life.peak_value


def _raising(life: AlertLife, row: Mapping[str, Any]) -> None:
    """A raised/escalated event: its value and threshold are the alert's (acks carry the value at ack time)."""
    if not life.direction:
        life.direction = _direction(row)
    value = row.get("value")
    if value is not None and _worse(life, value):
        life.peak_value = value
    if row.get("threshold") is not None and (
        life.threshold is None or _RANK.get(row["severity"], -1) >= _RANK.get(life.severity, -1)
    ):
        life.threshold, life.limit_source = row["threshold"], row.get("limit_source") or life.limit_source


def _apply(life: AlertLife, row: Mapping[str, Any]) -> None:
    t = parse_t(row["t"])
    life.since_s = min(life.since_s, parse_t(row.get("since") or row["t"]))
    event = row["event"]
    if event in ("raised", "escalated"):
        _raising(life, row)
    peak = row.get("peak")  # the worst value so far, as the gateway kept it (every event carries it)
    if peak is not None and _worse(life, peak):
        life.peak_value = peak
    if _RANK.get(row["severity"], -1) > _RANK.get(life.severity, -1):
        life.severity = row["severity"]
    if event == "acknowledged" and (life.ack_s is None or t < life.ack_s):
        life.ack_s, life.ack_by, life.ack_note = t, row.get("by"), row.get("note")
    elif event == "cleared":
        life.cleared_s = t if life.cleared_s is None else min(life.cleared_s, t)
    elif event == "escalated" and row.get("reason") == "severity_rise":
        life.severity_rises += 1
    elif event == "escalated":
        life.escalations += 1


def lifecycles(rows: Iterable[Mapping[str, Any]]) -> list[AlertLife]:
    """Fold alert events (any order) into one AlertLife per alert_id, sorted by `since`."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row["alert_id"]), []).append(row)
    lives: dict[str, AlertLife] = {}
    for alert_id, events in groups.items():
        events.sort(key=lambda r: (parse_t(r["t"]), r.get("audit_seq") or 0))  # the raise decides the direction
        life = lives[alert_id] = _start(events[0])
        for row in events:
            _apply(life, row)
    for life in lives.values():
        life.direction = life.direction or "above"
    return sorted(lives.values(), key=lambda a: (a.since_s, a.alert_id))


def _ack_figures(lives: list[AlertLife]) -> dict[str, Any]:
    times = [t for a in lives if (t := a.time_to_ack_s) is not None]
    return {
        "alerts": len(lives),
        "acknowledged": len(times),
        "unacknowledged": len(lives) - len(times),
        "escalated": sum(1 for a in lives if a.escalations),
        "ack_median_s": statistics.median(times) if times else None,
        "ack_worst_s": max(times) if times else None,
    }


def not_judged_alerts(lives: Iterable[AlertLife]) -> dict[str, dict[str, Any]]:
    """hazard → the first configuration alert of the month that says it is measured without a limit."""
    out: dict[str, dict[str, Any]] = {}
    for a in sorted(lives, key=lambda a: (a.since_s, a.alert_id)):
        if a.rule in CONFIGURATION_RULES:
            out.setdefault(a.hazard, a.as_dict())
    return out


def alert_summary(lives: list[AlertLife]) -> dict[str, Any]:
    """Totals, per (rule, severity) rows and the unacknowledged alerts (oldest first)."""
    by_key: dict[tuple[str, str], list[AlertLife]] = {}
    for a in lives:
        by_key.setdefault((a.rule, a.severity), []).append(a)
    order = sorted(by_key, key=lambda k: (-_RANK.get(k[1], -1) if k[1] != "malfunction" else 1, k[0]))
    return {
        **_ack_figures(lives),
        "urgent": sum(1 for a in lives if a.severity in URGENT),
        "urgent_unacknowledged": sum(1 for a in lives if a.severity in URGENT and a.ack_s is None),
        "by_rule_severity": [{"rule": r, "severity": s, **_ack_figures(by_key[(r, s)])} for r, s in order],
        "unacknowledged_alerts": [a.as_dict() for a in lives if a.ack_s is None],
    }
