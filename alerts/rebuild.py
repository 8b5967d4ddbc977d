"""Open alerts rebuilt from a store's alert log (SPEC §6: gateway state belongs to its store).

An alert is open when its last stored event is `raised`, `escalated` or `acknowledged` (not
`cleared`). "Last" follows the audit chain (`audit_seq`, the order the gateway emitted the
events), not the time stamp: `acknowledged`/`escalated` carry the wall clock and `raised`/`cleared`
the readings' event time, which may be hours behind. Rows without an audit seal keep the store's
time order. An alert touched by two chains (a gateway renamed) orders its chains by their first
event.

One pass over the log (`OpenScan.add` per stored event) keeps one small record per alert and
the full events of an alert only since its latest `cleared`, so memory follows the open alerts,
not the size of the log; `OpenScan.states()` turns each open alert into an `AlertState` with
its timers. Pure: rows in, states out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.policy import AlertPolicy
from alerts.state import AlertState, AlertSubject
from alerts.types import AlertEventKind, EscalationReason
from rules.results import Direction, Limit
from rules.types import Hazard, RuleKind, Severity

log = logging.getLogger(__name__)

Row = Mapping[str, Any]
_UNSEALED = ""  # chain name of rows written without an audit seal
_FLAPS = re.compile(r"\(raised again (once|\d+ times) within ")


def row_time(row: Row, key: str = "t") -> float:
    return datetime.fromisoformat(str(row[key])).timestamp()


@dataclass(slots=True)
class _Chain:
    first_t: float
    last_seq: int
    last_event: str


@dataclass(slots=True)
class _Alert:
    """What the log says of one alert: its last event per chain, and its events since the latest clear."""

    chains: dict[str, _Chain] = field(default_factory=dict)
    rows: list[tuple[str, int, float, Row]] = field(default_factory=list)  # (chain, seq, t, row)
    cleared: int = 0
    escalated: int = 0

    def add(self, chain: str, seq: int, t: float, row: Row) -> None:
        event = str(row["event"])
        c = self.chains.get(chain)
        if c is None:
            self.chains[chain] = _Chain(t, seq, event)
        else:
            c.first_t = min(c.first_t, t)
            if seq >= c.last_seq:
                c.last_seq, c.last_event = seq, event
        if event == AlertEventKind.CLEARED:
            self.cleared += 1
            self.rows = [r for r in self.rows if (r[1] > seq if r[0] == chain else r[2] > t)]
            return
        self.escalated += event == AlertEventKind.ESCALATED and not _is_rise(row)
        self.rows.append((chain, seq, t, row))

    def is_open(self) -> bool:
        latest = max(self.chains.values(), key=lambda c: c.first_t)
        return latest.last_event != AlertEventKind.CLEARED

    def ordered(self) -> list[Row]:
        """Events since the latest clear, in emission order (chains by their first event)."""
        return [r[3] for r in sorted(self.rows, key=lambda r: (self.chains[r[0]].first_t, r[1]))]


@dataclass(slots=True)
class OpenScan:
    """The open alerts of a store's alert log, from every stored event in one pass."""

    alerts: dict[str, _Alert] = field(default_factory=dict)
    _n: int = 0

    def add(self, row: Row) -> None:
        self._n += 1
        chain, seq = _seal(row, self._n)
        aid = str(row["alert_id"])
        alert = self.alerts.get(aid)
        if alert is None:
            alert = self.alerts[aid] = _Alert()
        alert.add(chain, seq, row_time(row), row)

    def open_ids(self) -> list[str]:
        return [a for a, alert in self.alerts.items() if alert.is_open()]

    def states(self, limits: Sequence[Limit], policy: AlertPolicy) -> list[AlertState]:
        """An `AlertState` (with its timers) for every open alert."""
        states: list[AlertState] = []
        for aid in self.open_ids():
            alert = self.alerts[aid]
            try:
                states.append(_state(alert.ordered(), alert, limits, policy))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                log.error("alert %s: its stored events cannot be rebuilt (%s); it stays open in the log only", aid, exc)
        return states


def _is_rise(row: Row) -> bool:
    """A severity rise (`escalated`, reason `severity_rise`): it arms a new tier like a raise."""
    return row.get("reason") == EscalationReason.SEVERITY_RISE


def _flaps_in(raised: Row) -> int:
    """The flap count a re-raised alert carries on, from its raise message (alerts.messages.flap_suffix)."""
    m = _FLAPS.search(str(raised.get("message") or ""))
    if m is None:
        return 0
    return 1 if m.group(1) == "once" else int(m.group(1).split()[0])


def _tier_message(base: Row) -> str:
    """The raise message of the tier in force (a rise's message without its "Rose from …: ")."""
    text = str(base.get("message") or "")
    if _is_rise(base) and text.startswith("Rose from ") and ": " in text:
        return text.split(": ", 1)[1]
    return text


def _seal(row: Row, n: int) -> tuple[str, int]:
    chain, seq = row.get("audit_chain"), row.get("audit_seq")
    if chain is None or seq is None:
        return _UNSEALED, n
    return str(chain), int(seq)


def _state(rows: list[Row], alert: _Alert, limits: Sequence[Limit], policy: AlertPolicy) -> AlertState:
    """One open alert from its events since the latest clear, in emission order."""
    raises = [i for i, r in enumerate(rows) if r["event"] == AlertEventKind.RAISED or _is_rise(r)]
    base_i = raises[-1] if raises else 0
    base, after = rows[base_i], rows[base_i + 1 :]
    severity, rule = Severity(base["severity"]), RuleKind(base["rule"])
    subject = AlertSubject(base["site"], base["zone"], base["device"], base["hazard"], base.get("worker") or None)
    value = _float(base.get("value"))
    threshold = _float(base.get("threshold"))
    direction, label, clear_level = _limit_facts(base, severity, rule, value, threshold, limits, policy)
    values = [
        v for v in (_float(r.get("value")) for r in rows if r["event"] != AlertEventKind.ACKNOWLEDGED) if v is not None
    ]
    state = AlertState(
        alert_id=str(base["alert_id"]), subject=subject, rule=rule, severity=severity,
        profile=str(base.get("profile") or ""), source=str(base.get("limit_source") or ""),
        action=str(base.get("action") or ""), unit=str(base.get("unit") or ""), label=label,
        direction=direction, threshold=threshold, clear_level=clear_level, value=value,
        peak=(min(values) if direction is Direction.BELOW else max(values)) if values else value,
        since_s=row_time(base, "since"), last_t_s=row_time(base), message=_tier_message(base),
        deadline_s=None, armed_wall_s=row_time(base), escalations=alert.escalated,
        flaps=alert.cleared + _flaps_in(next((r for r in rows if r["event"] == AlertEventKind.RAISED), base)),
        last_event_t_s=max(row_time(r) for r in rows), armed_at_s=row_time(base),
    )  # fmt: skip
    _timers(state, after, policy)
    return state


def _timers(state: AlertState, after: Sequence[Row], policy: AlertPolicy) -> None:
    """Acknowledgement and next escalation from the events after the latest raise."""
    acks = [r for r in after if r["event"] == AlertEventKind.ACKNOWLEDGED]
    if acks:
        ack = acks[-1]
        state.acked_by, state.acked_at_s = ack.get("by") or None, row_time(ack)
        state.ack_note = ack.get("note") or None
        return
    escalated = [r for r in after if r["event"] == AlertEventKind.ESCALATED]
    if escalated:
        remind = policy.remind_every_s
        state.deadline_s = None if remind is None else row_time(escalated[-1]) + remind
    else:
        state.deadline_s = state.armed_wall_s + policy.escalate_after(state.severity)


def _limit_facts(
    row: Row,
    severity: Severity,
    rule: RuleKind,
    value: float | None,
    threshold: float | None,
    limits: Sequence[Limit],
    policy: AlertPolicy,
) -> tuple[Direction, str, float | None]:
    """(direction, label, clear level) of an exposure alert from the active profiles' limits."""
    if severity is Severity.MALFUNCTION:
        return Direction.ABOVE, "", None
    same = [
        lim
        for lim in limits
        if lim.profile == row.get("profile") and str(lim.hazard) == row["hazard"] and lim.rule is rule
    ]
    tier = next((lim for lim in same if lim.severity is severity), None)
    if tier is not None:
        lowest = min(same, key=lambda lim: lim.severity.rank)
        return tier.direction, tier.label, policy.clear_level(lowest)
    # The profile no longer has this limit: clear around the stored threshold.
    log.warning(
        "alert %s: profile %r has no %s %s limit any more; it clears around its stored threshold",
        row["alert_id"], row.get("profile"), row["hazard"], rule,
    )  # fmt: skip
    if threshold is None:
        return Direction.ABOVE, "", None
    below = value is not None and value < threshold
    direction = Direction.BELOW if below else Direction.ABOVE
    stand_in = Limit(
        str(row.get("profile") or ""), Hazard(row["hazard"]), rule, severity, threshold,
        str(row.get("unit") or ""), direction, "", "",
    )  # fmt: skip
    return direction, "", policy.clear_level(stand_in)


def _float(v: Any) -> float | None:
    return None if v is None or v == "" else float(v)
