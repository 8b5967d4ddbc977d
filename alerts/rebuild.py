"""Open alerts rebuilt from a store's alert log (SPEC §6: gateway state belongs to its store).

An alert is open when its last stored event is `raised`, `escalated` or `acknowledged` (not
`cleared`). "Last" follows the audit chain (`audit_seq`, the order the gateway emitted the
events), not the time stamp: `acknowledged`/`escalated` carry the wall clock and `raised`/`cleared`
the readings' event time, which may be hours behind. Rows without an audit seal keep the store's
time order. An alert touched by two chains (a gateway renamed) orders its chains by their first
event.

Two passes over the log keep memory small: `OpenScan` folds every event into one tiny record
per alert; `rebuild_states` reads only the rows of the alerts found open (from the earliest of
them on) and turns each into an `AlertState` with its timers. Pure: rows in, states out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.policy import AlertPolicy
from alerts.state import AlertState, AlertSubject
from alerts.types import AlertEventKind
from rules.results import Direction, Limit
from rules.types import Hazard, RuleKind, Severity

log = logging.getLogger(__name__)

Row = Mapping[str, Any]
_UNSEALED = ""  # chain name of rows written without an audit seal


def row_time(row: Row, key: str = "t") -> float:
    return datetime.fromisoformat(str(row[key])).timestamp()


@dataclass(slots=True)
class _Chain:
    first_t: float
    last_seq: int
    last_event: str


@dataclass(slots=True)
class _Fold:
    first_t: float
    chains: dict[str, _Chain] = field(default_factory=dict)

    def last_event(self) -> str:
        latest = max(self.chains.values(), key=lambda c: c.first_t)
        return latest.last_event


@dataclass(slots=True)
class OpenScan:
    """Pass 1: which alerts are open, from every stored alert event (one small record per alert).

    `accept(row)` decides which alerts this gateway takes over (its sites, its own chain).
    """

    folds: dict[str, _Fold] = field(default_factory=dict)
    _n: int = 0

    def add(self, row: Row) -> None:
        self._n += 1
        t = row_time(row)
        chain, seq = _seal(row, self._n)
        fold = self.folds.get(str(row["alert_id"]))
        if fold is None:
            fold = self.folds[str(row["alert_id"])] = _Fold(t)
        fold.first_t = min(fold.first_t, t)
        c = fold.chains.get(chain)
        if c is None:
            fold.chains[chain] = _Chain(t, seq, str(row["event"]))
        else:
            c.first_t = min(c.first_t, t)
            if seq >= c.last_seq:
                c.last_seq, c.last_event = seq, str(row["event"])

    def open_since(self) -> dict[str, float]:
        """{alert_id: time of its first stored event} of every alert whose last event is not `cleared`."""
        return {a: f.first_t for a, f in self.folds.items() if f.last_event() != AlertEventKind.CLEARED}


def _seal(row: Row, n: int) -> tuple[str, int]:
    chain, seq = row.get("audit_chain"), row.get("audit_seq")
    if chain is None or seq is None:
        return _UNSEALED, n
    return str(chain), int(seq)


def rebuild_states(
    rows: Iterable[Row], open_ids: Mapping[str, float], limits: Sequence[Limit], policy: AlertPolicy
) -> list[AlertState]:
    """Pass 2: the `AlertState` of every alert in `open_ids`, from its stored events."""
    by_id: dict[str, list[tuple[str, int, Row]]] = {}
    for n, row in enumerate(rows):
        aid = str(row["alert_id"])
        if aid in open_ids:
            chain, seq = _seal(row, n)
            by_id.setdefault(aid, []).append((chain, seq, row))
    states: list[AlertState] = []
    for aid, events in by_id.items():
        first: dict[str, float] = {}
        for chain, _seq, row in events:
            first[chain] = min(first.get(chain, float("inf")), row_time(row))
        ordered = [r for _c, _s, r in sorted(events, key=lambda e: (first[e[0]], e[1]))]
        try:
            states.append(_state(ordered, limits, policy))
        except (KeyError, TypeError, ValueError) as exc:
            log.error("alert %s: its stored events cannot be rebuilt (%s); it stays open in the log only", aid, exc)
    return states


def _state(rows: list[Row], limits: Sequence[Limit], policy: AlertPolicy) -> AlertState:
    """One open alert from its events in emission order."""
    raises = [i for i, r in enumerate(rows) if r["event"] == AlertEventKind.RAISED]
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
        since_s=row_time(base, "since"), last_t_s=row_time(base), message=str(base.get("message") or ""),
        deadline_s=None, armed_wall_s=row_time(base),
        escalations=sum(r["event"] == AlertEventKind.ESCALATED for r in rows),
        flaps=sum(r["event"] == AlertEventKind.CLEARED for r in rows),
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
