"""State and shared steps of the alert book: open/cleared alerts, timers, acks, snapshots.

`alerts.lifecycle.AlertBook` builds on this with the condition, health and view methods.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np

from alerts.acks import ACK_IDS_MAX, ACK_REPLAY_WINDOW_S, clean_ack
from alerts.book_io import faults_from_json, faults_to_json
from alerts.errors import DuplicateAckError, InvalidAckError, SnapshotError, StaleAckError, UnknownAlertError
from alerts.ids import new_alert_id
from alerts.messages import ack_message, escalate_message
from alerts.policy import AlertPolicy
from alerts.state import AlertKey, AlertState, AlertSubject, OpenAlert
from alerts.types import AlertEvent, AlertEventKind, EscalationReason, rfc3339
from rules.results import Limit
from rules.types import HEALTH_RULES, RuleKind

#: An acknowledgement applied this much later than the officer made it says so in its message.
ACK_LATE_S = 2.0
SNAPSHOT_VERSION = 1

Tiers = dict[tuple[str, str, RuleKind], Limit]


class BookCore:
    """Open alerts, recently cleared ones (for late acks and flapping) and their timers."""

    def __init__(self, policy: AlertPolicy | None = None, id_factory: Callable[[], str] = new_alert_id) -> None:
        self.policy = policy or AlertPolicy()
        self._new_id = id_factory
        self._open: dict[AlertKey, AlertState] = {}
        self._by_id: dict[str, AlertState] = {}
        self._cleared: dict[str, AlertState] = {}  # insertion order = clear order
        self._cleared_by_key: dict[AlertKey, str] = {}
        self._faults: dict[AlertSubject, list[tuple[float, float]]] = {}  # cleared health intervals
        self.counts: Counter[str] = Counter()
        self._ack_ids: dict[str, float] = {}  # recent ack ids → when recorded (replays are refused)
        self._version = 0
        self._key_cache: tuple[int, int, int, np.ndarray[Any, np.dtype[np.int64]]] | None = None
        self._tier_cache: tuple[Sequence[Limit], int, Tiers] | None = None
        #: True when event time is the clock (a backfill of old readings): a raise then asks for
        #: its acknowledgement from the reading's time, not from when its batch was judged.
        self.clock_is_event_time = False

    def is_open(self, subject: AlertSubject, rule: RuleKind) -> bool:
        return (subject, rule) in self._open

    def open_alert(self, subject: AlertSubject, rule: RuleKind) -> OpenAlert | None:
        state = self._open.get((subject, rule))
        return None if state is None else state.view()

    def _flaps_before(self, key: AlertKey, t_s: float) -> int:
        """Flaps so far when `key` is exceeded again within the flap window of clearing, else 0.

        The new episode is a new alert (its own id, `raised` first, `cleared` last: docs/alerts.md)
        that carries the flap count on, so that it clears only after the longer hold.
        """
        rid = self._cleared_by_key.get(key)
        state = None if rid is None else self._cleared.get(rid)
        if state is None or state.cleared_at_s is None or t_s - state.cleared_at_s > self.policy.flap_window_s:
            return 0
        del self._cleared_by_key[key]
        self.counts["flaps"] += 1
        return state.flaps + 1

    def _arm(self, state: AlertState, t_s: float, now_s: float) -> None:
        """A (new or higher) raise needs a fresh acknowledgement within the policy's time.

        The deadline runs on the clock (`now_s`): a reading that arrives late must not escalate
        before anyone could see it. `armed_at_s` is the earliest moment anyone could have known
        of this tier (the reading's time, or the clock's when that is earlier)."""
        state.acked_by = state.acked_at_s = state.ack_note = None
        if self.clock_is_event_time:
            now_s = t_s
        state.armed_wall_s = now_s
        state.armed_at_s = min(t_s, now_s)
        state.deadline_s = now_s + self.policy.escalate_after(state.severity)

    def _raise(self, state: AlertState, t_s: float, now_s: float) -> AlertEvent:
        self._arm(state, t_s, now_s)
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

    def open_count(self) -> int:
        return len(self._open)

    def next_deadline(self) -> float | None:
        """When `tick` will next escalate something (clock seconds), None when nothing waits."""
        return min((s.deadline_s for s in self._open.values() if s.deadline_s is not None), default=None)

    @staticmethod
    def _due(state: AlertState, now_s: float) -> bool:
        return state.deadline_s is not None and now_s >= state.deadline_s

    def _escalate(self, state: AlertState, now_s: float) -> AlertEvent:
        remind = self.policy.remind_every_s
        state.deadline_s = None if remind is None else now_s + remind
        state.escalations += 1
        self.counts["escalated"] += 1
        text = escalate_message(now_s - state.armed_wall_s, state.message)
        return state.event(AlertEventKind.ESCALATED, now_s, text, reason=EscalationReason.UNACKNOWLEDGED)

    def acknowledge(
        self,
        alert_id: str,
        by: str,
        note: str | None,
        now_s: float,
        *,
        site: str | None = None,
        at_s: float | None = None,
        ack_id: str | None = None,
    ) -> AlertEvent:
        """Record who acknowledged an open alert, and why; stops escalation.

        `site`: the site of the ack topic it came on (it must be the alert's own); `at_s`: when the
        officer acknowledged (the event's time, kept between the latest raise and `now_s`);
        `ack_id`: the sender's id of this acknowledgement. A repeat (same ack id, or the same
        person and note as the acknowledgement in force) raises `DuplicateAckError`: no new event."""
        name, text = clean_ack(by, note)
        state = self._ack_target(alert_id, site)
        if ack_id is not None and ack_id in self._ack_ids:
            raise DuplicateAckError(f"duplicate acknowledgement: ack id {ack_id[:64]!r} of alert {alert_id} was "
                                    "already recorded; nothing changed")  # fmt: skip
        if state.acked_at_s is not None and (state.acked_by, state.ack_note) == (name, text):
            raise DuplicateAckError(f"duplicate acknowledgement: alert {alert_id} is already acknowledged by {name} "
                                    f"at {rfc3339(state.acked_at_s)} with the same note; nothing changed")  # fmt: skip
        made_s = now_s if at_s is None else at_s
        # made while the alert was open but before its current tier (a rise): it never saw that tier
        if state.armed_at_s is not None and state.since_s <= made_s < state.armed_at_s:
            raise StaleAckError(alert_id, made_s, state.severity, state.armed_at_s)
        t_s = now_s if at_s is None else min(max(at_s, state.armed_wall_s, state.since_s), now_s)
        if ack_id is not None:
            self._remember_ack_id(ack_id, now_s)
        state.acked_by, state.acked_at_s, state.ack_note, state.deadline_s = name, t_s, text, None
        self.counts["acknowledged"] += 1
        message = ack_message(name, text)
        if now_s - t_s > ACK_LATE_S:
            message += f" (acknowledged at {rfc3339(t_s)}; the gateway received it at {rfc3339(now_s)})"
        return state.event(AlertEventKind.ACKNOWLEDGED, t_s, message, by=name, note=text)

    def _ack_target(self, alert_id: str, site: str | None) -> AlertState:
        """The open alert an acknowledgement names; its site must be the ack topic's."""
        state = self._by_id.get(alert_id)
        known = state or self._cleared.get(alert_id)
        if known is None:
            raise UnknownAlertError(alert_id)
        if site is not None and known.subject.site != site:
            raise InvalidAckError(
                f"alert {alert_id} belongs to site {known.subject.site!r}, not {site[:64]!r}: an acknowledgement "
                "is accepted only on the ack topic of the alert's own site"
            )
        if state is None:
            cleared = rfc3339(known.cleared_at_s) if known.cleared_at_s is not None else "an earlier time"
            raise InvalidAckError(f"alert {alert_id} was cleared at {cleared}: an acknowledgement after the clear "
                                  "is not recorded")  # fmt: skip
        return state

    def _remember_ack_id(self, ack_id: str, now_s: float) -> None:
        self._ack_ids[ack_id] = now_s
        horizon = now_s - ACK_REPLAY_WINDOW_S
        while self._ack_ids and (len(self._ack_ids) > ACK_IDS_MAX or next(iter(self._ack_ids.values())) < horizon):
            del self._ack_ids[next(iter(self._ack_ids))]

    def adopt_log(self, logged: Sequence[AlertState], *, log_complete: bool = True) -> list[str]:
        """Make the open alerts exactly those of the store's alert log (alerts/rebuild.py).

        The store log wins: an alert this book holds open keeps its own state (timers, clear
        hold) only where it agrees with the log on severity, acknowledgement and escalations;
        an alert open here but not in the log is dropped (kept while `log_complete` is False:
        events still wait in the spool); one open in the log only is taken over. Emits nothing.
        Returns one line per difference, for the log."""
        notes: list[str] = []
        opened: dict[AlertKey, AlertState] = {}
        for s in sorted(logged, key=lambda s: s.armed_wall_s):  # two open on one key: the later wins
            mine = self._by_id.get(s.alert_id)
            if mine is not None and mine.key == s.key and _agrees(mine, s):
                s = mine
            else:
                notes.append(f"alert {s.alert_id} ({s.rule}, {s.subject.device}) rebuilt from the store's alert log")
            if s.key in opened:
                notes.append(f"alert {opened[s.key].alert_id} superseded by {s.alert_id} on the same subject")
            opened[s.key] = s
        kept = {s.alert_id for s in opened.values()}
        if not log_complete:
            for s in self._open.values():
                if s.alert_id not in kept and s.key not in opened:
                    opened[s.key] = s
                    kept.add(s.alert_id)
        notes += [
            f"alert {s.alert_id} ({s.rule}, {s.subject.device}) is not open in the store's alert log: dropped"
            for s in self._open.values()
            if s.alert_id not in kept
        ]
        self._open = opened
        self._by_id = {s.alert_id: s for s in opened.values()}
        for s in [c for c in self._cleared.values() if c.alert_id in kept or c.key in opened]:
            self._forget(s)
        self._version += 1
        return notes

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
    ) -> Self:
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


def _agrees(mine: AlertState, logged: AlertState) -> bool:
    """Does a checkpointed alert say what the store's log says about it?"""
    return (
        mine.severity is logged.severity
        and mine.acked_by == logged.acked_by
        and mine.escalations == logged.escalations
        and mine.flaps == logged.flaps
    )
