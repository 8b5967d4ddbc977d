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
#: Keys added later (`peak`, `reason`): hashed only when set, so older stored events keep their hash.
OPTIONAL_HASHED_KEYS = ("peak", "reason")
_FLOAT_KEYS = ("value", "threshold", "peak")


def canonical_json(event: AlertEvent | Mapping[str, Any]) -> bytes:
    """The exact bytes that are hashed for one event."""
    wire = event.to_wire() if isinstance(event, AlertEvent) else event
    doc = {k: wire.get(k) for k in HASHED_KEYS}
    doc.update({k: wire[k] for k in OPTIONAL_HASHED_KEYS if wire.get(k) is not None})
    for k in _FLOAT_KEYS:
        v = doc.get(k)
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


#: How many breaks `VerifyResult.message()` lists before "... and N more".
SHOWN_BREAKS = 5


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """One place where the stored chain does not hold: its position and why."""

    audit_seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Anchor:
    """A chain head kept outside the store (retained MQTT message, report, bundle): `SEQ:HASH`."""

    audit_seq: int
    hash: str

    @staticmethod
    def parse(text: str) -> Anchor:
        """`"144:9f86…"` → Anchor; ValueError with the expected form otherwise."""
        seq, sep, digest = text.strip().partition(":")
        digest = digest.strip().lower()
        if (
            not sep
            or not seq.strip().isdigit()
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)
        ):
            raise ValueError(f"{text!r} is not an anchored head: expected SEQ:HASH (audit_seq, 64 hex digits)")
        return Anchor(int(seq), digest)

    def __str__(self) -> str:
        return f"{self.audit_seq}:{self.hash}"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int  # events looked at
    head: str  # hash of the last event (as stored; recomputed where none is stored)
    breaks: tuple[ChainBreak, ...] = ()
    head_seq: int = -1  # audit_seq of the last event
    anchored: Anchor | None = None  # the anchor that was checked, if any

    @property
    def first_bad(self) -> int | None:
        return self.breaks[0].audit_seq if self.breaks else None

    @property
    def reason(self) -> str:
        return self.breaks[0].reason if self.breaks else ""

    def message(self, shown: int = SHOWN_BREAKS) -> str:
        """What `oshmon audit verify` prints: one line when OK, else the count and the first breaks."""
        anchor = f", anchored at {self.anchored.audit_seq}" if self.anchored is not None else ""
        if self.ok:
            return f"audit chain OK: {self.checked} events{anchor}, head {self.head_seq}:{self.head}"
        n = len(self.breaks)
        if n == 1:
            return f"audit chain BROKEN: {self.reason}"
        lines = [f"audit chain BROKEN: {n} breaks in {self.checked} events{anchor}; first: {self.reason}"]
        lines += [f"  - {b.reason}" for b in self.breaks[1:shown]]
        if n > shown:
            lines.append(f"  ... and {n - shown} more")
        return "\n".join(lines)


def chain_heads(rows: Iterable[Mapping[str, Any]]) -> dict[str, Anchor]:
    """The stored head (highest `audit_seq` and its hash) of every chain among `rows`."""
    heads: dict[str, Anchor] = {}
    for row in rows:
        chain, seq, digest = row.get("audit_chain"), row.get("audit_seq"), row.get("hash")
        if chain is None or seq is None or digest is None:
            continue
        known = heads.get(str(chain))
        if known is None or int(seq) > known.audit_seq:
            heads[str(chain)] = Anchor(int(seq), str(digest))
    return dict(sorted(heads.items()))


def verify_chain(
    events: Iterable[AlertEvent | Mapping[str, Any]],
    *,
    expected_head: str | None = None,
    anchor: Anchor | None = None,
    start: str = GENESIS,
) -> VerifyResult:
    """Recompute the chain and compare with stored `hash`/`prev_hash`/`audit_seq` where present.

    Rows with `audit_seq` are checked in that order and must be 0, 1, 2 ... without holes. Every
    break is reported, not only the first: after a break the check goes on from the stored hashes,
    so one deleted or altered event is one break and a later edit is still found.
    `expected_head` (the head hash of the whole chain) or `anchor` (a head `SEQ:HASH` published
    earlier) make deletion at the end (truncation) and rewriting up to the anchor detectable too.
    """
    rows = list(events)
    if rows and all(isinstance(r, Mapping) and "audit_seq" in r for r in rows):
        rows.sort(key=lambda r: int(r["audit_seq"]))  # type: ignore[index]
    breaks: list[ChainBreak] = []
    head, expected = start, 0
    hashes: dict[int, str] = {}
    for pos, row in enumerate(rows):
        seq, head = _check_row(pos, row, head, expected, breaks)
        hashes.setdefault(seq, head)
        expected = max(expected, seq + 1)
    last = expected - 1
    if expected_head is not None and head != expected_head:
        why = f"after {len(rows)} events the head is {head}, not the anchored {expected_head} (events removed?)"
        breaks.append(ChainBreak(len(rows), why))
    if anchor is not None:
        _check_anchor(anchor, hashes, last, breaks)
    return VerifyResult(not breaks, len(rows), head, tuple(breaks), last, anchor)


def _check_anchor(anchor: Anchor, hashes: Mapping[int, str], last: int, breaks: list[ChainBreak]) -> None:
    found = hashes.get(anchor.audit_seq)
    if anchor.audit_seq > last:
        why = (f"the chain ends at audit_seq {last} but the anchored head is {anchor.audit_seq}: "
               f"{anchor.audit_seq - last} event(s) deleted at the end (truncated)")  # fmt: skip
        breaks.append(ChainBreak(last + 1, why))
    elif found != anchor.hash:
        why = (f"event {anchor.audit_seq} hashes to {found}, not the anchored {anchor.hash}: "
               "the log up to the anchor was rewritten or events were deleted")  # fmt: skip
        breaks.append(ChainBreak(anchor.audit_seq, why))


def _check_row(
    pos: int, row: AlertEvent | Mapping[str, Any], head: str, expected: int, breaks: list[ChainBreak]
) -> tuple[int, str]:
    """Check stored row `pos` against the chain so far; returns its audit_seq and the new head."""
    if not isinstance(row, Mapping):
        return pos, link_hash(head, row)
    seq = int(row["audit_seq"]) if row.get("audit_seq") is not None else pos
    what = f"event {seq} (alert {row.get('alert_id')}, {row.get('event')} at {row.get('t')})"
    prev, stored = row.get("prev_hash"), row.get("hash")
    if seq > expected:
        breaks.append(ChainBreak(expected, f"{what}: audit_seq {seq} where {expected} was expected "
                                           f"({seq - expected} event(s) missing)"))  # fmt: skip
    elif seq < expected:
        breaks.append(ChainBreak(seq, f"{what}: audit_seq {seq} appears again (an event inserted)"))
    elif prev is not None and prev != head:
        breaks.append(ChainBreak(seq, f"{what}: prev_hash does not match the previous event "
                                      "(events missing, inserted or reordered)"))  # fmt: skip
    computed = link_hash(prev if prev is not None else head, row)
    if stored is not None and stored != computed:
        breaks.append(ChainBreak(seq, f"{what}: content does not match its hash (altered)"))
    return seq, stored if stored is not None else computed
