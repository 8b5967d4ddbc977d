"""The alert book: one active alert per (device, hazard, worker, rule), from raise to clear.

Input is the engine's columnar `ConditionBatch`. Rows that cannot matter (nothing exceeded and no
open alert on that channel+rule) are dropped with numpy; the few rows left go through the
per-alert state machine below (design notes: docs/alerts.md).

    raised ──(not acked in time)──> escalated ──> acknowledged ──(hysteresis + hold)──> cleared
      │ severity rises: a new `raised` event, same alert_id, ack reset
      └ re-raised within `flap_window_s` of clearing: same alert_id re-opens, counted as a flap

Event times (`t_s`) drive hysteresis and flapping; the wall clock (`now_s`) drives escalation.
Not thread-safe: the gateway calls it from one task.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import orjson

from alerts.book_io import faults_from_json, faults_to_json
from alerts.errors import InvalidAckError, SnapshotError, UnknownAlertError
from alerts.ids import new_alert_id
from alerts.messages import (
    HEALTH_ACTION,
    HEALTH_SOURCE,
    ack_message,
    clear_message,
    escalate_message,
    exceed_message,
    flap_suffix,
    limit_label,
)
from alerts.policy import AlertPolicy
from alerts.state import AlertKey, AlertState, AlertSubject, OpenAlert
from alerts.types import AlertEvent, AlertEventKind
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

_N_RULES = len(RULE_BY_CODE)
ACK_NAME_MAX = 120
ACK_NOTE_MAX = 2000
SNAPSHOT_VERSION = 1
_HAZARDS = frozenset(str(h) for h in Hazard)

Tiers = dict[tuple[str, str, RuleKind], Limit]


class _Row(NamedTuple):
    channel: int
    rule: int
    severity: int
    value: float
    t_s: float
    limit: int


class AlertBook:
    """Open alerts, recently cleared ones (for late acks and flapping) and their timers."""

    def __init__(
        self, policy: AlertPolicy | None = None, id_factory: Callable[[], str] = new_alert_id
    ) -> None:
        self.policy = policy or AlertPolicy()
        self._new_id = id_factory
        self._open: dict[AlertKey, AlertState] = {}
        self._by_id: dict[str, AlertState] = {}
        self._cleared: dict[str, AlertState] = {}  # insertion order = clear order
        self._cleared_by_key: dict[AlertKey, str] = {}
        self._faults: dict[AlertSubject, list[tuple[float, float]]] = {}  # cleared health intervals
        self.counts: Counter[str] = Counter()
        self._version = 0
        self._key_cache: tuple[int, int, int, np.ndarray[Any, np.dtype[np.int64]]] | None = None
        self._tier_cache: tuple[int, int, Tiers] | None = None

    # ---- exposure conditions -------------------------------------------------------------
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
            ck = ChannelKey(
                subject.site, subject.zone, subject.device, Hazard(subject.hazard), subject.worker
            )
            cid = registry.get(ck)
            if cid is not None:
                keys.append(cid * _N_RULES + RULE_CODE[rule])
        arr = np.array(sorted(keys), dtype=np.int64)
        self._key_cache = (*stamp, arr)
        return arr

    def _lowest_tiers(self, limits: Sequence[Limit]) -> Tiers:
        """Lowest-severity limit of each (profile, hazard, rule): its clear level ends an alert."""
        if self._tier_cache is not None and self._tier_cache[:2] == (id(limits), len(limits)):
            return self._tier_cache[2]
        tiers: Tiers = {}
        for lim in limits:
            k = (lim.profile, str(lim.hazard), lim.rule)
            if k not in tiers or lim.severity.rank < tiers[k].severity.rank:
                tiers[k] = lim
        self._tier_cache = (id(limits), len(limits), tiers)
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
        self._set_tier(state, limit, severity, row.value)
        self._arm(state, now_s)
        self.counts["severity_rises"] += 1
        return [state.event(AlertEventKind.RAISED, row.t_s, state.message)]

    def _open_exceeded(
        self, key: AlertKey, limit: Limit, severity: Severity, row: _Row, tiers: Tiers, now_s: float
    ) -> AlertEvent:
        state = self._reopen(key, row.t_s)
        if state is None:
            state = AlertState(
                alert_id=self._new_id(), subject=key[0], rule=key[1], severity=severity,
                profile=limit.profile, source=limit.source, action=limit.action, unit=limit.unit,
                label=limit.label, direction=limit.direction, threshold=limit.threshold,
                clear_level=None, value=row.value, peak=row.value, since_s=row.t_s,
                last_t_s=row.t_s, message="", deadline_s=None,
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

    # ---- shared lifecycle steps ----------------------------------------------------------
    def _reopen(self, key: AlertKey, t_s: float) -> AlertState | None:
        """The alert cleared on `key` within the flap window, taken back to be re-opened."""
        rid = self._cleared_by_key.get(key)
        if rid is None:
            return None
        state = self._cleared[rid]
        if state.cleared_at_s is None or t_s - state.cleared_at_s > self.policy.flap_window_s:
            return None
        del self._cleared[rid], self._cleared_by_key[key]
        state.flaps += 1
        state.cleared_at_s = state.cleared_wall_s = state.clear_since_s = None
        self.counts["flaps"] += 1
        return state

    def _arm(self, state: AlertState, now_s: float) -> None:
        """A (new or higher) raise needs a fresh acknowledgement within the policy's time."""
        state.acked_by = state.acked_at_s = state.ack_note = None
        state.armed_wall_s = now_s
        state.deadline_s = now_s + self.policy.escalate_after(state.severity)

    def _raise(self, state: AlertState, t_s: float, now_s: float) -> AlertEvent:
        self._arm(state, now_s)
        self._open[state.key] = state
        self._by_id[state.alert_id] = state
        self._version += 1
        self.counts["raised"] += 1
        return state.event(AlertEventKind.RAISED, t_s, state.message)

    def _clear(self, state: AlertState, t_s: float, now_s: float, text: str) -> AlertEvent:
        del self._open[state.key], self._by_id[state.alert_id]
        self._version += 1
        state.cleared_at_s, state.cleared_wall_s, state.deadline_s = t_s, now_s, None
        old = self._cleared_by_key.pop(state.key, None)
        if old is not None:
            self._cleared.pop(old, None)
        self._cleared[state.alert_id] = state
        self._cleared_by_key[state.key] = state.alert_id
        if state.rule in HEALTH_RULES:
            self._faults.setdefault(state.subject, []).append((state.since_s, t_s))
        while len(self._cleared) > self.policy.max_cleared:
            self._forget(next(iter(self._cleared.values())))
        self.counts["cleared"] += 1
        return state.event(AlertEventKind.CLEARED, t_s, text)

    def _forget(self, state: AlertState) -> None:
        del self._cleared[state.alert_id]
        if self._cleared_by_key.get(state.key) == state.alert_id:
            del self._cleared_by_key[state.key]

    # ---- timers and acknowledgements -----------------------------------------------------
    def tick(self, now_s: float) -> list[AlertEvent]:
        """`escalated` events for alerts not acknowledged in time; forgets old cleared alerts."""
        events = [self._escalate(s, now_s) for s in list(self._open.values()) if self._due(s, now_s)]
        horizon = now_s - self.policy.keep_cleared_s
        for state in [s for s in self._cleared.values() if (s.cleared_wall_s or 0.0) < horizon]:
            self._forget(state)
        for subject, spans in list(self._faults.items()):
            kept = [sp for sp in spans if sp[1] >= horizon - self.policy.keep_cleared_s]
            if kept:
                self._faults[subject] = kept
            else:
                del self._faults[subject]
        return events

    @staticmethod
    def _due(state: AlertState, now_s: float) -> bool:
        return state.deadline_s is not None and now_s >= state.deadline_s

    def _escalate(self, state: AlertState, now_s: float) -> AlertEvent:
        remind = self.policy.remind_every_s
        state.deadline_s = None if remind is None else now_s + remind
        state.escalations += 1
        self.counts["escalated"] += 1
        text = escalate_message(now_s - state.armed_wall_s, state.message)
        return state.event(AlertEventKind.ESCALATED, now_s, text)

    def acknowledge(self, alert_id: str, by: str, note: str | None, now_s: float) -> AlertEvent:
        """Record who acknowledged an open (or recently cleared) alert, and why; stops escalation."""
        name = (by or "").strip()
        text = (note or "").strip() or None
        if not name:
            raise InvalidAckError('an acknowledgement needs the name of the person (--by / "by")')
        if len(name) > ACK_NAME_MAX or (text is not None and len(text) > ACK_NOTE_MAX):
            raise InvalidAckError(
                f"acknowledgement too long: name at most {ACK_NAME_MAX}, "
                f"note at most {ACK_NOTE_MAX} characters"
            )
        state = self._by_id.get(alert_id) or self._cleared.get(alert_id)
        if state is None:
            raise UnknownAlertError(alert_id)
        state.acked_by, state.acked_at_s, state.ack_note, state.deadline_s = name, now_s, text, None
        self.counts["acknowledged"] += 1
        return state.event(AlertEventKind.ACKNOWLEDGED, now_s, ack_message(name, text), by=name, note=text)

    # ---- sensor health (severity malfunction) --------------------------------------------
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
        state = self._reopen(key, t_s) or AlertState(
            alert_id=self._new_id(), subject=subject, rule=rule, severity=Severity.MALFUNCTION,
            profile=profile, source=HEALTH_SOURCE.get(rule, ""), action=HEALTH_ACTION.get(rule, ""),
            unit=unit, label="", direction=Direction.ABOVE, threshold=threshold, clear_level=None,
            value=value, peak=value, since_s=t_s, last_t_s=t_s, message="", deadline_s=None,
        )  # fmt: skip
        state.value, state.threshold, state.last_t_s = value, threshold, max(state.last_t_s, t_s)
        state.message = message + (flap_suffix(state.flaps, self.policy.flap_window_s) if state.flaps else "")
        return [self._raise(state, t_s, now_s)]

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
        subjects = (subject, subject.device_subject())
        for s in subjects:
            for rule in HEALTH_RULES:
                st = self._open.get((s, rule))
                if st is not None and (t_to_s is None or st.since_s <= t_to_s):
                    return True
        if t_from_s is None or t_to_s is None:
            return False
        return any(a <= t_to_s and b >= t_from_s for s in subjects for a, b in self._faults.get(s, ()))

    # ---- views, retained state, persistence ----------------------------------------------
    def open_alerts(self) -> list[OpenAlert]:
        return sorted((s.view() for s in self._open.values()), key=lambda a: (a.since_s, a.alert_id))

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
        doc = current.event(AlertEventKind.RAISED, current.last_t_s, current.message).to_wire()
        for k in ("event", "by", "note"):
            doc.pop(k)
        acked = current.acked_by is not None
        doc.update(
            state="acknowledged" if acked else ("escalated" if current.escalations else "active"),
            peak=current.peak, acknowledged_by=current.acked_by, ack_note=current.ack_note,
            escalations=current.escalations, flaps=current.flaps,
        )  # fmt: skip
        return orjson.dumps(doc)

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state (open alerts with timers, cleared memory, fault spans, counters)."""
        return {
            "version": SNAPSHOT_VERSION,
            "open": [s.to_dict() for s in self._open.values()],
            "cleared": [s.to_dict() for s in self._cleared.values()],
            "faults": faults_to_json(self._faults),
            "counts": dict(self.counts),
        }

    @classmethod
    def restore(
        cls,
        data: dict[str, Any],
        policy: AlertPolicy | None = None,
        id_factory: Callable[[], str] = new_alert_id,
    ) -> AlertBook:
        """A book with the snapshot's alerts and timers; emits nothing (no re-notification)."""
        if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
            raise SnapshotError(f"alert snapshot: unsupported version (expected {SNAPSHOT_VERSION})")
        book = cls(policy, id_factory)
        try:
            for d in data.get("open", []):
                s = AlertState.from_dict(d)
                book._open[s.key], book._by_id[s.alert_id] = s, s
            for d in data.get("cleared", []):
                s = AlertState.from_dict(d)
                book._cleared[s.alert_id], book._cleared_by_key[s.key] = s, s.alert_id
            book._faults = faults_from_json(data.get("faults", []))
            book.counts.update({str(k): int(v) for k, v in data.get("counts", {}).items()})
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"alert snapshot is damaged: {type(exc).__name__}: {exc}") from None
        return book
