"""The one small interface every store implements (SQLite, InfluxDB).

The gateway and `reports/` use only this. Methods are synchronous; the gateway calls them from
a worker thread. A write returns only once the data is durable (committed / accepted).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from alerts.types import AlertEvent
from rules.errors import StoreError
from rules.results import ExposureRecord
from rules.types import ChannelKey, ReadingBatch


class RecordKind(StrEnum):
    READINGS = "readings"
    EXPOSURES = "exposures"
    ALERTS = "alerts"


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """Filters for `oshmon history`; None means "any". Times are epoch seconds, [t_from, t_to)."""

    kind: RecordKind
    site: str | None = None
    zone: str | None = None
    device: str | None = None
    worker: str | None = None
    hazard: str | None = None
    rule: str | None = None
    severity: str | None = None
    t_from_s: float | None = None
    t_to_s: float | None = None
    limit: int | None = None
    newest_first: bool = False  # time order reversed (ties in reversed tag order): `--limit N` = the latest N


#: Columns of each record kind, in output order; both stores return rows with exactly these keys.
#: `t` is an RFC 3339 UTC string ("2026-11-22T09:41:07Z", fractional seconds when present).
COLUMNS: dict[RecordKind, tuple[str, ...]] = {
    RecordKind.READINGS: ("t", "site", "zone", "device", "hazard", "worker", "value", "unit"),
    RecordKind.EXPOSURES: (
        "t", "site", "zone", "device", "hazard", "worker", "shift", "twa8", "stel15_max", "peak",
        "coverage", "max_gap_s", "lex8h", "dose_pct", "shift_avg", "profile", "limits", "final", "sensor_faulty",
    ),
    RecordKind.ALERTS: (
        "t", "alert_id", "event", "severity", "rule", "site", "zone", "device", "hazard", "worker",
        "value", "threshold", "unit", "since", "profile", "limit_source", "action", "message",
        "by", "note", "peak", "reason", "audit_chain", "audit_seq", "prev_hash", "hash",
    ),
}  # fmt: skip


class Store(Protocol):
    """Durable home of readings, shift exposures and alert events (SPEC §4)."""

    def write_readings(self, keys: Sequence[ChannelKey], batch: ReadingBatch) -> None:
        """Store a batch; `keys[batch.channel[i]]` names row i's channel. Same series+time overwrites."""

    def write_exposures(self, records: Sequence[ExposureRecord]) -> None: ...

    def write_alert_events(self, events: Sequence[AlertEvent]) -> None: ...

    def query(self, q: HistoryQuery) -> Iterator[dict[str, Any]]:
        """Rows of `COLUMNS[q.kind]` in time order (newest first with `q.newest_first`), streamed."""

    def sites(self) -> list[str]:
        """Every site that has any stored record, sorted (for checking `--site` values)."""

    def latest_readings(self, t_from_s: float, site: str | None = None) -> list[dict[str, Any]]:
        """The last reading of every channel at or after `t_from_s` (rows of `COLUMNS[READINGS]`)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Rejected:
    """One record a store refused for good (never worth retrying): what it was, and why."""

    record: str  # line protocol (InfluxDB) or a JSON description of the record
    reason: str  # the server's or store's words, for the dead-letter topic


class PartialWriteError(StoreError):
    """Some records were refused for good; every other record of the call is stored.

    Not retryable: the caller dead-letters `rejected` (with their reasons) and acks the rest.
    """

    def __init__(self, rejected: Sequence[Rejected], *, accepted: int) -> None:
        self.rejected = tuple(rejected)
        self.accepted = accepted
        first = self.rejected[0].reason if self.rejected else "no reason given"
        super().__init__(
            f"{len(self.rejected)} record(s) rejected, {accepted} stored; first reason: {first}",
            retryable=False,
        )
