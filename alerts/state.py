"""Mutable per-alert state held by the `AlertBook`, its read-only view and its snapshot form."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from typing import Any

from alerts.types import AlertEvent, AlertEventKind, rfc3339
from rules.results import Direction
from rules.types import ChannelKey, RuleKind, Severity

#: `hazard` of health alerts about a whole device (offline, gap, calibration of all sensors);
#: the retained topic is then `P/{site}/alarms/{zone}/{device}/device/{rule}`.
DEVICE_HAZARD = "device"
#: At most this many member ids in a group alert's event: 2,000 ids of up to 64 characters stay
#: well below the 256 KiB payload limit of SPEC §2.1 (a broker with max_packet_size refuses more).
MAX_LISTED_MEMBERS = 2000


@dataclass(frozen=True, slots=True)
class AlertSubject:
    """What an alert is about: a channel (device, hazard, worker) or a whole device."""

    site: str
    zone: str
    device: str
    hazard: str
    worker: str | None = None

    @staticmethod
    def of(key: ChannelKey) -> AlertSubject:
        return AlertSubject(key.site, key.zone, key.device, str(key.hazard), key.worker)

    def device_subject(self) -> AlertSubject:
        """The device-wide subject (hazard `device`, no worker) of this channel's device."""
        return AlertSubject(self.site, self.zone, self.device, DEVICE_HAZARD, None)


AlertKey = tuple[AlertSubject, RuleKind]


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """Read-only view of one open alert (for the live board, `oshmon`, the gateway)."""

    alert_id: str
    subject: AlertSubject
    rule: RuleKind
    severity: Severity
    value: float | None
    peak: float | None
    threshold: float | None
    unit: str
    since_s: float
    last_t_s: float
    message: str
    acknowledged_by: str | None
    acknowledged_at_s: float | None
    escalations: int
    flaps: int


@dataclass(slots=True)
class AlertState:
    """One alert's lifecycle state; `deadline_s` and `*_wall_s` are wall clock, the rest event time."""

    alert_id: str
    subject: AlertSubject
    rule: RuleKind
    severity: Severity
    profile: str
    source: str
    action: str
    unit: str
    label: str
    direction: Direction
    threshold: float | None
    clear_level: float | None
    value: float | None
    peak: float | None
    since_s: float
    last_t_s: float
    message: str  # the latest raise message (escalations repeat it)
    deadline_s: float | None  # next escalation; None once acknowledged
    armed_wall_s: float = 0.0  # when the latest raise asked for an acknowledgement
    escalations: int = 0
    acked_by: str | None = None
    acked_at_s: float | None = None
    ack_note: str | None = None
    clear_since_s: float | None = None
    flaps: int = 0
    cleared_at_s: float | None = None
    cleared_wall_s: float | None = None
    members: dict[str, None] | None = None  # a group alert's devices (an ordered set), else None
    last_event_t_s: float | None = None  # time of the latest event in this alert's record
    armed_at_s: float | None = None  # earliest moment anyone could know the current tier

    @property
    def key(self) -> AlertKey:
        return (self.subject, self.rule)

    def observe(self, value: float) -> None:
        """Record the latest figure and keep the worst one (lowest for BELOW limits)."""
        self.value = value
        if self.peak is None:
            self.peak = value
        elif self.direction is Direction.BELOW:
            self.peak = min(self.peak, value)
        else:
            self.peak = max(self.peak, value)

    def event(
        self, kind: AlertEventKind, t_s: float, message: str, by: str | None = None, note: str | None = None,
        reason: str | None = None,
    ) -> AlertEvent:  # fmt: skip
        """The next event of this alert's record, with the tier in force now.

        Its time is its cause's time (a reading's for raised/cleared, the clock's for escalated,
        the officer's for acknowledged) but never earlier than the alert's previous event, so that
        each alert's record is in event-time order (docs/alerts.md, "Alert log invariants").
        """
        if self.last_event_t_s is not None and t_s < self.last_event_t_s:
            message += f" (event time {rfc3339(t_s)}; recorded after the alert's previous event)"
            t_s = self.last_event_t_s
        self.last_event_t_s = t_s
        return self.describe(kind, t_s, message, by=by, note=note, reason=reason)

    def describe(
        self, kind: AlertEventKind, t_s: float, message: str, *, by: str | None = None, note: str | None = None,
        reason: str | None = None,
    ) -> AlertEvent:  # fmt: skip
        """The alert's current state as an event, without adding it to the record."""
        s = self.subject
        return AlertEvent(
            alert_id=self.alert_id, event=kind, severity=self.severity, rule=self.rule,
            site=s.site, zone=s.zone, device=s.device, hazard=s.hazard, worker=s.worker,
            value=self.value, threshold=self.threshold, unit=self.unit, t_s=t_s, since_s=self.since_s,
            profile=self.profile, limit_source=self.source, action=self.action, message=message,
            by=by, note=note, devices=self.listed_members(), peak=self.peak, reason=reason,
        )  # fmt: skip

    def listed_members(self) -> tuple[str, ...] | None:
        """The first `MAX_LISTED_MEMBERS` members (the count is the alert's value)."""
        if self.members is None:
            return None
        return tuple(itertools.islice(self.members, MAX_LISTED_MEMBERS))

    def view(self) -> OpenAlert:
        return OpenAlert(
            alert_id=self.alert_id, subject=self.subject, rule=self.rule, severity=self.severity,
            value=self.value, peak=self.peak, threshold=self.threshold, unit=self.unit,
            since_s=self.since_s, last_t_s=self.last_t_s, message=self.message,
            acknowledged_by=self.acked_by, acknowledged_at_s=self.acked_at_s,
            escalations=self.escalations, flaps=self.flaps,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for `AlertBook.snapshot()`; field by field, not `dataclasses.asdict`,
        which deep-copies and took over 2 s for 20,000 open alerts (issue 15 point 5)."""
        d = {name: getattr(self, name) for name in _STATE_FIELDS}
        d["subject"] = {name: getattr(self.subject, name) for name in _SUBJECT_FIELDS}
        d["members"] = None if self.members is None else list(self.members)
        d["rule"] = str(self.rule)
        d["severity"] = str(self.severity)
        d["direction"] = str(self.direction)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> AlertState:
        known = {f.name for f in fields(AlertState)}
        data = {k: v for k, v in d.items() if k in known}
        data["subject"] = AlertSubject(**d["subject"])
        data["rule"] = RuleKind(d["rule"])
        data["severity"] = Severity(d["severity"])
        data["direction"] = Direction(d["direction"])
        if d.get("members") is not None:
            data["members"] = dict.fromkeys(d["members"])
        return AlertState(**data)


_STATE_FIELDS = tuple(f.name for f in fields(AlertState))
_SUBJECT_FIELDS = tuple(f.name for f in fields(AlertSubject))
