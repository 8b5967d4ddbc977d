"""The alert log's invariants (docs/alerts.md), checked over stored or published events.

`AlertBook` keeps them by construction; `record_problems` checks a record as an inspector would
(stored rows or wire objects, any order: each alert's events are taken in `audit_seq` order when
they carry one). Per `alert_id`:

1. exactly one `raised`, and it comes first;
2. at most one `cleared`, and it comes last;
3. event times never go back (the record is in event-time order);
4. the severity never falls, and severity, threshold and limit source change only at an
   `escalated` event with reason `severity_rise`, which raises the severity;
5. `escalated` for want of an acknowledgement only while the current tier is unacknowledged;
6. the worst value (`peak`) follows the limit's direction: never below any value seen for an
   "above" limit, never above any for a "below" one.

`escalation_problems` adds the policy: an unacknowledged tier escalates `escalate_after_s` after
it was raised, then every `remind_every_s`, until it is acknowledged, rises or clears.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from alerts.policy import AlertPolicy
from alerts.types import EscalationReason
from rules.types import Severity

_RANK = {s.value: s.rank for s in Severity}
_RISE = EscalationReason.SEVERITY_RISE.value
Row = Mapping[str, Any]


def event_time(row: Row) -> float:
    """Epoch seconds of a stored row (`t` RFC 3339) or an event object (`t_s`)."""
    if "t_s" in row:
        return float(row["t_s"])
    return datetime.fromisoformat(str(row["t"])).timestamp()


def by_alert(rows: Iterable[Row]) -> dict[str, list[Row]]:
    """Events grouped per alert_id, each group in record order (`audit_seq`, else as given)."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(str(row["alert_id"]), []).append(row)
    for events in groups.values():
        if all(e.get("audit_seq") is not None for e in events):
            events.sort(key=lambda e: int(e["audit_seq"]))
    return groups


def record_problems(rows: Iterable[Row]) -> list[str]:
    """Every broken invariant (1-6 of the module docstring), one line each; [] when all hold."""
    problems: list[str] = []
    for alert_id, events in by_alert(rows).items():
        problems += [f"alert {alert_id}: {p}" for p in _alert_problems(events)]
    return problems


def _alert_problems(events: list[Row]) -> list[str]:
    kinds = [str(e["event"]) for e in events]
    out: list[str] = []
    if kinds[0] != "raised" or kinds.count("raised") != 1:
        out.append(f"must have exactly one raised, first: {kinds}")
    if kinds.count("cleared") > 1 or ("cleared" in kinds and kinds[-1] != "cleared"):
        out.append(f"must have at most one cleared, last: {kinds}")
    times = [event_time(e) for e in events]
    out += [f"{kinds[i]} at {times[i]} before {kinds[i - 1]} at {times[i - 1]}"
            for i in range(1, len(times)) if times[i] < times[i - 1]]  # fmt: skip
    out += _tier_problems(events)
    out += _peak_problems(events)
    return out


def _tier(e: Row) -> tuple[Any, Any, Any]:
    return (e.get("severity"), e.get("threshold"), e.get("limit_source"))


def _tier_problems(events: list[Row]) -> list[str]:
    out: list[str] = []
    acked = False
    for prev, e in itertools.pairwise(events):
        rise = e["event"] == "escalated" and e.get("reason") == _RISE
        if rise and _RANK.get(str(e["severity"]), -1) <= _RANK.get(str(prev["severity"]), -1):
            out.append(f"severity_rise from {prev['severity']} to {e['severity']} does not rise")
        elif not rise and _tier(e) != _tier(prev):
            out.append(f"{e['event']} changes the tier {_tier(prev)} -> {_tier(e)} without a severity_rise event")
        if rise:
            acked = False
        elif e["event"] == "acknowledged":
            acked = True
        elif e["event"] == "escalated" and acked:
            out.append(f"escalated at {event_time(e)} for want of an ack, but the tier was acknowledged")
    return out


def _direction(events: list[Row]) -> int:
    """+1 for an "above" limit, -1 for "below", 0 unknown (from the raise: value vs threshold)."""
    first = events[0]
    value, threshold = first.get("value"), first.get("threshold")
    if value is None or threshold is None or value == threshold:
        return 0
    return 1 if value > threshold else -1


def _peak_problems(events: list[Row]) -> list[str]:
    sign = _direction(events)
    if sign == 0:
        return []
    worst = -math.inf
    out: list[str] = []
    for e in events:
        if e.get("value") is not None:
            worst = max(worst, sign * float(e["value"]))
        peak = e.get("peak")
        if peak is not None and sign * float(peak) < worst - 1e-9:
            side = "above" if sign > 0 else "below"
            out.append(f"{e['event']}: peak {peak} is not the worst value for an '{side}' limit")
    return out


def escalation_problems(rows: Iterable[Row], policy: AlertPolicy, end_s: float, slack_s: float) -> list[str]:
    """Unacknowledged escalations that disagree with the policy (count and timing).

    `end_s`: when the record ends (an open tier may still escalate up to it); `slack_s`: how late
    the clock that drives escalation may see a deadline (the gateway ticks once a second; a
    backfill judges a batch of readings at once).
    """
    out: list[str] = []
    for alert_id, events in by_alert(rows).items():
        arms = [i for i, e in enumerate(events) if e["event"] == "raised" or e.get("reason") == _RISE]
        for n, i in enumerate(arms):
            stop = arms[n + 1] if n + 1 < len(arms) else len(events)
            out += [f"alert {alert_id}: {p}" for p in _tier_escalations(events[i:stop], policy, end_s, slack_s)]
    return out


def _tier_escalations(events: list[Row], policy: AlertPolicy, end_s: float, slack_s: float) -> list[str]:
    armed = event_time(events[0])
    after = policy.escalate_after(Severity(str(events[0]["severity"])))
    ends = [event_time(e) for e in events[1:] if e["event"] in ("acknowledged", "cleared")]
    until = ends[0] if ends else end_s
    seen = [event_time(e) for e in events[1:] if e["event"] == "escalated" and e.get("reason") != _RISE]
    remind = policy.remind_every_s
    deadlines = [armed + after]
    while remind is not None and deadlines[-1] + remind <= until + slack_s:
        deadlines.append(deadlines[-1] + remind)
    n_max = sum(1 for d in deadlines if d <= until + slack_s)
    n_min = sum(1 for d in deadlines if d + slack_s < until)
    out = [f"escalated at {t} before its deadline {armed + after}" for t in seen if t < armed + after - 1e-3]
    if not n_min <= len(seen) <= n_max:
        what = f"{events[0]['severity']} tier from {armed} unacknowledged until {until}"
        out.append(f"{what}: {len(seen)} escalation(s), the policy gives {n_min}..{n_max}")
    return out
