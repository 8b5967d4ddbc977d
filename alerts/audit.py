"""Tamper-evident alert log: a SHA-256 hash chain over lifecycle events (30 CFR 75.351(o)(3)).

    hash_n = sha256(hash_{n-1} (64 ASCII hex chars) + canonical_json(event_n)),  hash_{-1} = "0" * 64

`canonical_json` is the SPEC §2.2 wire object (`AlertEvent.to_wire()`, or a stored row with the
same keys) with sorted keys, no whitespace, UTF-8, and `value`/`threshold` as floats. Changing,
deleting, inserting or reordering any stored event changes every later hash. The store keeps, per
event, `audit_seq` (0, 1, 2 ... in append order), `prev_hash` and `hash`; `verify_chain` recomputes
them. Anchoring the latest head elsewhere (printed by `oshmon audit verify`, kept in a report)
also detects events cut off at the end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from alerts.types import AlertEvent

GENESIS = "0" * 64
#: The keys that are hashed (SPEC §2.2 plus `by`/`note`); anything else in a stored row is ignored.
HASHED_KEYS = (
    "alert_id", "event", "severity", "rule", "site", "zone", "device", "hazard", "worker", "value",
    "threshold", "unit", "t", "since", "profile", "limit_source", "action", "message", "by", "note",
)  # fmt: skip
_FLOAT_KEYS = ("value", "threshold")


def canonical_json(event: AlertEvent | Mapping[str, Any]) -> bytes:
    """The exact bytes that are hashed for one event."""
    wire = event.to_wire() if isinstance(event, AlertEvent) else event
    doc = {k: wire.get(k) for k in HASHED_KEYS}
    for k in _FLOAT_KEYS:
        v = doc[k]
        if v is not None:
            doc[k] = float(v)
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def link_hash(prev_hash: str, event: AlertEvent | Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(event)).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditLink:
    """What the store keeps next to an event: its position and hashes."""

    audit_seq: int
    prev_hash: str
    hash: str


class AuditChain:
    """Appends events to the chain; `head`/`next_seq` are restored from the store at start-up."""

    def __init__(self, head: str = GENESIS, next_seq: int = 0) -> None:
        self.head = head
        self.next_seq = next_seq

    def append(self, event: AlertEvent | Mapping[str, Any]) -> AuditLink:
        link = AuditLink(self.next_seq, self.head, link_hash(self.head, event))
        self.head, self.next_seq = link.hash, self.next_seq + 1
        return link


def compute_chain(events: Iterable[AlertEvent | Mapping[str, Any]], start: str = GENESIS) -> list[str]:
    """The hash of every event, in the given order."""
    chain = AuditChain(start)
    return [chain.append(ev).hash for ev in events]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int  # events looked at
    head: str  # hash of the last event (recomputed)
    first_bad: int | None = None  # audit_seq (or position) of the first bad event
    reason: str = ""

    def message(self) -> str:
        """One line for `oshmon audit verify`."""
        if self.ok:
            return f"audit chain OK: {self.checked} events, head {self.head}"
        return f"audit chain BROKEN: {self.reason}"


def verify_chain(
    events: Iterable[AlertEvent | Mapping[str, Any]],
    *,
    expected_head: str | None = None,
    start: str = GENESIS,
) -> VerifyResult:
    """Recompute the chain and compare with stored `hash`/`prev_hash`/`audit_seq` where present.

    Rows with `audit_seq` are checked in that order and must be 0, 1, 2 ... without holes.
    `expected_head` (an anchored head) makes truncation at the end detectable too.
    """
    rows = list(events)
    if rows and all(isinstance(r, Mapping) and "audit_seq" in r for r in rows):
        rows.sort(key=lambda r: int(r["audit_seq"]))  # type: ignore[index]
    head = start
    for pos, row in enumerate(rows):
        bad = _check_row(pos, row, head)
        if bad:
            return VerifyResult(False, pos + 1, head, pos, bad)
        head = link_hash(head, row)
    if expected_head is not None and head != expected_head:
        why = f"after {len(rows)} events the head is {head}, not the anchored {expected_head} (events removed?)"
        return VerifyResult(False, len(rows), head, len(rows), why)
    return VerifyResult(True, len(rows), head)


def _check_row(pos: int, row: AlertEvent | Mapping[str, Any], head: str) -> str:
    """Why stored row `pos` does not fit the chain ("" if it fits or carries no hashes)."""
    if not isinstance(row, Mapping):
        return ""
    what = f"event {pos} (alert {row.get('alert_id')}, {row.get('event')} at {row.get('t')})"
    if "audit_seq" in row and int(row["audit_seq"]) != pos:
        return f"{what}: audit_seq {row['audit_seq']} where {pos} was expected (events missing or inserted)"
    if row.get("prev_hash") not in (None, head):
        return f"{what}: prev_hash does not match the previous event (events missing, inserted or reordered)"
    stored = row.get("hash")
    if stored is not None and stored != link_hash(head, row):
        return f"{what}: content does not match its hash (altered)"
    return ""
