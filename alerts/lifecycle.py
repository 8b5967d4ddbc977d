"""The alert book: one active alert per (device, hazard, worker, rule), from raise to clear.

Input is the engine's columnar `ConditionBatch`. Rows that cannot matter (nothing exceeded and no
open alert on that channel+rule) are dropped with numpy; the few rows left go through the
per-alert state machine below (design notes: docs/alerts.md).

    raised ──(not acked in time)──> escalated ──> acknowledged ──(hysteresis + hold)──> cleared
      │ severity rises: `escalated` (reason `severity_rise`), same alert_id, ack reset
      └ exceeded again within `flap_window_s` of clearing: a new alert, counted as a flap

Per alert_id the record holds the invariants of docs/alerts.md ("Alert log invariants"): one
`raised` first, at most one `cleared` last, events in time order, acks only of the tier seen.

Event times (`t_s`) drive hysteresis and flapping; the wall clock (`now_s`) drives escalation.
Not thread-safe: the gateway calls it from one task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np
import orjson

from alerts.acks import ACK_BY_MAX, ACK_NOTE_MAX
from alerts.book_core import SNAPSHOT_VERSION, BookCore, Tiers
from alerts.errors import InvalidAckError, SnapshotError, UnknownAlertError
from alerts.messages import (
    HEALTH_ACTION,
    HEALTH_SOURCE,
    clear_message,
    exceed_message,
    flap_suffix,
    limit_label,
    rise_message,
)
from alerts.policy import AlertPolicy
from alerts.state import DEVICE_HAZARD, AlertKey, AlertState, AlertSubject, OpenAlert
from alerts.types import AlertEvent, AlertEventKind, EscalationReason
from rules.results import ConditionBatch, Direction, Limit
from rules.types import (
    HEALTH_RULES,
    RULE_BY_CODE,
    RULE_CODE,
    SEVERITY_BY_CODE,
    ChannelKey,
    ChannelRegistry,
    Hazard,
    RuleKind,
    Severity,
)

__all__ = [
    "ACK_BY_MAX",
    "ACK_NOTE_MAX",
    "DEVICE_HAZARD",
    "SNAPSHOT_VERSION",
    "AlertBook",
    "AlertPolicy",
    "AlertSubject",
    "InvalidAckError",
    "OpenAlert",
    "SnapshotError",
    "UnknownAlertError",
]

_N_RULES = len(RULE_BY_CODE)
_HAZARDS = frozenset(str(h) for h in Hazard)


class _Row(NamedTuple):
    channel: int
    rule: int
    severity: int
    value: float
    t_s: float
    limit: int


class AlertBook(BookCore):
    """Alerts from exposure conditions and sensor health; see the module docstring."""

    _topic_index: tuple[int, dict[str, AlertKey]] | None = None

    def on_conditions(
        self, conditions: ConditionBatch, registry: ChannelRegistry, limits: Sequence[Limit], now_s: float
    ) -> list[AlertEvent]:
        """Events caused by one batch of rule evaluations, in event-time order."""
        idx = self._rows_that_matter(conditions, registry)
        if idx.size == 0:
            return []
        tiers = self._lowest_tiers(limits)
        cols = (conditions.channel, conditions.rule, conditions.severity, conditions.value,
                conditions.t_s, conditions.limit)  # fmt: skip
        events: list[AlertEvent] = []
        for row in zip(*(c[idx].tolist() for c in cols), strict=True):
            events.extend(self._on_row(_Row(*row), registry, limits, tiers, now_s))
        return events

    def _rows_that_matter(self, c: ConditionBatch, registry: ChannelRegistry) -> np.ndarray[Any, Any]:
        """Indices of rows with an exceeded limit or an open alert, sorted by event time."""
        if len(c) == 0:
            return np.empty(0, np.int64)
        finite = np.isfinite(c.value)
        exceeded = (c.severity >= 0) & finite
        open_keys = self._open_channel_keys(registry)
        if open_keys.size or exceeded.any():
            # rows of keys with an open alert, or exceeded anywhere in this batch (they may clear)
            keys = c.channel.astype(np.int64) * _N_RULES + c.rule.astype(np.int64)
            watched = np.union1d(open_keys, keys[exceeded])
            exceeded |= np.isin(keys, watched) & finite
        idx = np.flatnonzero(exceeded)
        return idx[np.argsort(c.t_s[idx], kind="stable")]

    def _open_channel_keys(self, registry: ChannelRegistry) -> np.ndarray[Any, np.dtype[np.int64]]:
        """`channel * n_rules + rule` of every open alert on a known channel (cached)."""
        stamp = (self._version, id(registry), len(registry))
        if self._key_cache is not None and self._key_cache[:3] == stamp:
            return self._key_cache[3]
        keys: list[int] = []
        for subject, rule in self._open:
            if subject.hazard not in _HAZARDS:
                continue
            ck = ChannelKey(subject.site, subject.zone, subject.device, Hazard(subject.hazard), subject.worker)
            cid = registry.get(ck)
            if cid is not None:
                keys.append(cid * _N_RULES + RULE_CODE[rule])
        arr = np.array(sorted(keys), dtype=np.int64)
        self._key_cache = (*stamp, arr)
        return arr

    def _lowest_tiers(self, limits: Sequence[Limit]) -> Tiers:
        """Lowest-severity limit of each (profile, hazard, rule): its clear level ends an alert."""
        cached = self._tier_cache
        if cached is not None and cached[0] is limits and cached[1] == len(limits):
            return cached[2]
        tiers: Tiers = {}
        for lim in limits:
            k = (lim.profile, str(lim.hazard), lim.rule)
            if k not in tiers or lim.severity.rank < tiers[k].severity.rank:
                tiers[k] = lim
        self._tier_cache = (limits, len(limits), tiers)
        return tiers

    def _on_row(
        self, row: _Row, registry: ChannelRegistry, limits: Sequence[Limit], tiers: Tiers, now_s: float
    ) -> list[AlertEvent]:
        key = (AlertSubject.of(registry[row.channel]), RULE_BY_CODE[row.rule])
        state = self._open.get(key)
        if row.severity < 0:
            return [] if state is None else self._on_within(state, row, now_s)
        if not 0 <= row.limit < len(limits) or row.severity >= len(SEVERITY_BY_CODE):
            self.counts["skipped_rows"] += 1
            return []
        limit, severity = limits[row.limit], SEVERITY_BY_CODE[row.severity]
        if state is None:
            return [self._open_exceeded(key, limit, severity, row, tiers, now_s)]
        state.observe(row.value)
        state.last_t_s = max(state.last_t_s, row.t_s)
        state.clear_since_s = None
        if severity.rank <= state.severity.rank or severity is Severity.MALFUNCTION:
            return []
        return [self._rise(state, limit, severity, row, now_s)]

    def _rise(self, state: AlertState, limit: Limit, severity: Severity, row: _Row, now_s: float) -> AlertEvent:
        """A higher tier of an open alert: `escalated` (reason `severity_rise`), same id, new ack needed."""
        before = state.severity
        self._set_tier(state, limit, severity, row.value)
        self._arm(state, row.t_s, now_s)
        self.counts["severity_rises"] += 1
        text = rise_message(before, severity, state.message)
        return state.event(AlertEventKind.ESCALATED, row.t_s, text, reason=EscalationReason.SEVERITY_RISE)

    def _open_exceeded(
        self, key: AlertKey, limit: Limit, severity: Severity, row: _Row, tiers: Tiers, now_s: float
    ) -> AlertEvent:
        state = AlertState(
            alert_id=self._new_id(), subject=key[0], rule=key[1], severity=severity,
            profile=limit.profile, source=limit.source, action=limit.action, unit=limit.unit,
            label=limit.label, direction=limit.direction, threshold=limit.threshold,
            clear_level=None, value=row.value, peak=row.value, since_s=row.t_s,
            last_t_s=row.t_s, message="", deadline_s=None, flaps=self._flaps_before(key, row.t_s),
        )  # fmt: skip
        state.observe(row.value)
        state.last_t_s = max(state.last_t_s, row.t_s)
        lowest = tiers.get((limit.profile, str(limit.hazard), limit.rule), limit)
        state.clear_level = self.policy.clear_level(lowest)
        self._set_tier(state, limit, severity, row.value)
        if state.flaps:
            state.message += flap_suffix(state.flaps, self.policy.flap_window_s)
        return self._raise(state, row.t_s, now_s)

    @staticmethod
    def _set_tier(state: AlertState, limit: Limit, severity: Severity, value: float) -> None:
        state.severity, state.threshold, state.label = severity, limit.threshold, limit.label
        state.source, state.action, state.profile, state.unit = (
            limit.source,
            limit.action,
            limit.profile,
            limit.unit,
        )
        state.message = exceed_message(
            state.subject.hazard,
            state.rule,
            severity,
            value,
            limit.threshold,
            limit.unit,
            limit.direction,
            limit.label,
            limit.averaging,
        )

    def _on_within(self, state: AlertState, row: _Row, now_s: float) -> list[AlertEvent]:
        """A row with no limit exceeded: start, continue or break the clear hold."""
        state.observe(row.value)
        state.last_t_s = max(state.last_t_s, row.t_s)
        level = state.clear_level
        beyond = level is not None and (
            row.value >= level if state.direction is Direction.BELOW else row.value <= level
        )
        if not beyond:
            state.clear_since_s = None
            return []
        if state.clear_since_s is None:
            state.clear_since_s = row.t_s
        hold = self._hold_s(state)
        if row.t_s - state.clear_since_s < hold:
            return []
        what = limit_label(state.rule, state.severity, state.label)
        text = clear_message(
            state.subject.hazard, state.rule, row.value, level, state.unit, state.direction, hold, what
        )
        return [self._clear(state, row.t_s, now_s, text)]

    def _hold_s(self, state: AlertState) -> float:
        return self.policy.flap_window_s if state.flaps else self.policy.clear_hold_s

    def raise_health(
        self, subject: AlertSubject, rule: RuleKind, *, t_s: float, now_s: float, message: str,
        value: float | None = None, threshold: float | None = None, unit: str = "", profile: str = "",
    ) -> list[AlertEvent]:  # fmt: skip
        """Open (or keep open) a malfunction alert; [] while one is already open on the key."""
        key = (subject, rule)
        state = self._open.get(key)
        if state is not None:
            if value is not None:
                state.observe(value)
            state.last_t_s, state.clear_since_s = max(state.last_t_s, t_s), None
            return []
        state = AlertState(
            alert_id=self._new_id(), subject=subject, rule=rule, severity=Severity.MALFUNCTION,
            profile=profile, source=HEALTH_SOURCE.get(rule, ""), action=HEALTH_ACTION.get(rule, ""),
            unit=unit, label="", direction=Direction.ABOVE, threshold=threshold, clear_level=None,
            value=value, peak=value, since_s=t_s, last_t_s=t_s, message="", deadline_s=None,
            flaps=self._flaps_before(key, t_s),
        )  # fmt: skip
        state.value, state.threshold, state.last_t_s = value, threshold, max(state.last_t_s, t_s)
        state.message = message + (flap_suffix(state.flaps, self.policy.flap_window_s) if state.flaps else "")
        return [self._raise(state, t_s, now_s)]

    def raise_group(
        self, subject: AlertSubject, rule: RuleKind, members: Sequence[str], *, t_s: float, now_s: float,
        message: Callable[[Sequence[str]], str],
    ) -> list[AlertEvent]:  # fmt: skip
        """Open a malfunction alert about many `members` (devices), or add them to the open one
        (no event then: its value, the member count, is updated). `message(members)` words it."""
        state = self._open.get((subject, rule))
        if state is not None and state.members is not None:
            state.members.update(dict.fromkeys(members))
            state.observe(float(len(state.members)))
            state.last_t_s, state.clear_since_s = max(state.last_t_s, t_s), None
            return []
        events = self.raise_health(
            subject, rule, t_s=t_s, now_s=now_s, message=message(members), value=float(len(members)), unit="devices"
        )
        self._open[(subject, rule)].members = dict.fromkeys(members)
        return [replace(ev, devices=self._open[(subject, rule)].listed_members()) for ev in events]

    def group_members(self, subject: AlertSubject, rule: RuleKind) -> Mapping[str, None]:
        """The members of the open group alert on the key (empty when there is none)."""
        state = self._open.get((subject, rule))
        return {} if state is None or state.members is None else state.members

    def leave_group(
        self, subject: AlertSubject, rule: RuleKind, member: str, *, t_s: float, now_s: float, message: str
    ) -> list[AlertEvent]:
        """`member` is healthy again; the group alert clears with its last member."""
        state = self._open.get((subject, rule))
        members = None if state is None else state.members
        if state is None or members is None or member not in members:
            return []
        del members[member]
        state.value = float(len(members))
        return [] if members else [self._clear(state, t_s, now_s, message)]

    def clear_health(
        self, subject: AlertSubject, rule: RuleKind, *, t_s: float, now_s: float, message: str
    ) -> list[AlertEvent]:
        """Clear a malfunction alert: at once, or for a flapping one after `flap_window_s` healthy."""
        state = self._open.get((subject, rule))
        if state is None:
            return []
        if state.flaps:
            if state.clear_since_s is None:
                state.clear_since_s = t_s
            if t_s - state.clear_since_s < self.policy.flap_window_s:
                return []
        return [self._clear(state, t_s, now_s, message)]

    def is_faulty(self, key: ChannelKey, t_from_s: float | None = None, t_to_s: float | None = None) -> bool:
        """Was a malfunction alert open on this channel or its device (now, or in [t_from, t_to])?"""
        subject = AlertSubject.of(key)
        subjects = {subject, replace(subject, worker=None), subject.device_subject()}
        for s in subjects:
            for rule in HEALTH_RULES:
                st = self._open.get((s, rule))
                if st is not None and (t_to_s is None or st.since_s <= t_to_s):
                    return True
        if t_from_s is None or t_to_s is None:
            return False
        return any(a <= t_to_s and b >= t_from_s for s in subjects for a, b in self._faults.get(s, ()))

    def open_alerts(self) -> list[OpenAlert]:
        return sorted((s.view() for s in self._open.values()), key=lambda a: (a.since_s, a.alert_id))

    def state_on_topic(self, suffix: str) -> bytes | None:
        """The retained state the topic `{site}/alarms/{zone}/{device}/{hazard}/{rule}` (below the
        prefix) must hold now; None: no open alert there. For the gateway's check of its own topics."""
        if self._topic_index is None or self._topic_index[0] != self._version:
            index = {}
            for k, st in self._open.items():
                s = st.subject
                index[f"{s.site}/alarms/{s.zone}/{s.device}/{s.hazard}/{st.rule}"] = k
            self._topic_index = (self._version, index)
        key = self._topic_index[1].get(suffix)
        state = None if key is None else self._open.get(key)
        if state is None:
            return None
        return self.retained_state(state.event(AlertEventKind.RAISED, state.last_t_s, state.message))

    def open_alarm_states(self) -> list[tuple[str, bytes]]:
        """(`{site}/alarms/{zone}/{device}/{hazard}/{rule}`, retained state) of every open alert."""
        out = []
        for st in self._open.values():
            s = st.subject
            state = self.retained_state(st.event(AlertEventKind.RAISED, st.last_t_s, st.message))
            if state:
                out.append((f"{s.site}/alarms/{s.zone}/{s.device}/{s.hazard}/{st.rule}", state))
        return out

    def knows_alert(self, alert_id: str) -> bool:
        """Is `alert_id` open or recently cleared here?"""
        return alert_id in self._by_id or alert_id in self._cleared

    def retained_state(self, event: AlertEvent) -> bytes | None:
        """Payload for the retained `P/{site}/alarms/{zone}/{device}/{hazard}/{rule}` topic.

        JSON of the alert's current state; `b""` (zero-length: clear the retained message) when
        the event cleared it; None when nothing must be published (the event is about an alert
        that is no longer the current one on that topic, e.g. a late ack of a cleared alert).
        """
        key = (AlertSubject(event.site, event.zone, event.device, event.hazard, event.worker), event.rule)
        current = self._open.get(key)
        if event.event is AlertEventKind.CLEARED:
            return b"" if current is None else None
        if current is None or current.alert_id != event.alert_id:
            return None
        doc = current.describe(AlertEventKind.RAISED, current.last_t_s, current.message).to_wire()
        for k in ("event", "by", "note", "reason"):
            doc.pop(k)
        acked = current.acked_by is not None
        doc.update(
            state="acknowledged" if acked else ("escalated" if current.escalations else "active"),
            peak=current.peak, acknowledged_by=current.acked_by, ack_note=current.ack_note,
            escalations=current.escalations, flaps=current.flaps,
        )  # fmt: skip
        return orjson.dumps(doc)
