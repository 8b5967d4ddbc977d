"""Errors of the alert stage; each message is shown to the officer as is and carries no secret."""

from __future__ import annotations

from datetime import UTC, datetime

from rules.errors import OshError


class UnknownAlertError(OshError):
    """An acknowledgement named an alert id that is neither open nor recently cleared."""

    def __init__(self, alert_id: str) -> None:
        shown = alert_id if len(alert_id) <= 64 else alert_id[:64] + "..."
        super().__init__(
            f"unknown alert id {shown!r}: no open or recently cleared alert has it "
            "(check the alert_id field of the alert event)"
        )
        self.alert_id = alert_id


class InvalidAckError(OshError):
    """An acknowledgement without a name, or with an oversized name or note."""


class DuplicateAckError(InvalidAckError):
    """The same acknowledgement again (same ack id, or same person and note): nothing changes."""


def _when(t_s: float | None) -> str:
    return "?" if t_s is None else datetime.fromtimestamp(t_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class StaleAckError(InvalidAckError):
    """An acknowledgement made before the alert's current tier was raised (it never saw it)."""

    def __init__(self, alert_id: str, ack_s: float, severity: str, raised_s: float) -> None:
        super().__init__(
            f"alert {alert_id} rose to {severity} at {_when(raised_s)}, after this acknowledgement "
            f"({_when(ack_s)}): acknowledge it again"
        )
        self.alert_id = alert_id


class SnapshotError(OshError):
    """A saved alert-book snapshot cannot be restored (wrong version or damaged)."""
