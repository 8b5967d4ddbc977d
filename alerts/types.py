"""Alert events (SPEC §2.2): the record published on `P/{site}/alerts` and stored."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from rules.types import RuleKind, Severity


class AlertEventKind(StrEnum):
    RAISED = "raised"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class EscalationReason(StrEnum):
    """Why an `escalated` event was sent (its `reason` field; docs/alerts.md)."""

    UNACKNOWLEDGED = "unacknowledged"  # not acknowledged within the policy's time (SPEC §2.2)
    SEVERITY_RISE = "severity_rise"  # the alert reached a higher tier (warning → alarm → critical)


def rfc3339(t_s: float) -> str:
    """Epoch seconds → RFC 3339 UTC with a Z; milliseconds only when the time has them."""
    dt = datetime.fromtimestamp(t_s, tz=UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One lifecycle event of one alert; `t_s`/`since_s` are event time in epoch seconds."""

    alert_id: str
    event: AlertEventKind
    severity: Severity
    rule: RuleKind
    site: str
    zone: str
    device: str
    hazard: str
    worker: str | None
    value: float | None
    threshold: float | None
    unit: str
    t_s: float
    since_s: float
    profile: str
    limit_source: str
    action: str
    message: str
    by: str | None = None
    note: str | None = None
    # The worst value so far in the limit's direction (lowest for a "below" limit), and for an
    # `escalated` event why it was sent (EscalationReason). Both None on events of older records.
    peak: float | None = None
    reason: str | None = None
    # Tamper evidence (alerts/audit.py): which writer's chain, position in it, and the hashes.
    audit_chain: str | None = None
    audit_seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None
    # A site-level alert about many devices (alerts/health_storm.py): the ids it covers. Not
    # hashed and not stored (the message names the count and the first ids); omitted when None.
    devices: tuple[str, ...] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON object of SPEC §2.2 (times as RFC 3339 strings)."""
        d = {name: getattr(self, name) for name in _EVENT_FIELDS}  # not asdict: no deep copy (issue 15)
        d["t"] = rfc3339(d.pop("t_s"))
        d["since"] = rfc3339(d.pop("since_s"))
        d["event"] = str(self.event)
        d["severity"] = str(self.severity)
        d["rule"] = str(self.rule)
        if self.devices is None:
            del d["devices"]
        else:
            d["devices"] = list(self.devices)
        return d

    def alarm_topic_suffix(self) -> str:
        """`alarms/{zone}/{device}/{hazard}/{rule}` below `P/{site}/` (SPEC §2)."""
        return f"alarms/{self.zone}/{self.device}/{self.hazard}/{self.rule}"


_EVENT_FIELDS = tuple(f.name for f in fields(AlertEvent))
