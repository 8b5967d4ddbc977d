"""Audit hash chain: compute, verify, detect alteration, deletion, insertion, reordering, truncation."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from alerts.audit import GENESIS, Anchor, AuditChain, canonical_json, compute_chain, link_hash, verify_chain
from alerts.lifecycle import AlertBook
from alerts.types import AlertEvent
from rules.types import RuleKind, Severity
from tests.test_alerts_helpers import GD17, LIMITS, batch, counter_ids, make_registry

T0 = 1_800_000_000.0


def lifecycle() -> list[AlertEvent]:
    book, reg = AlertBook(id_factory=counter_ids()), make_registry()
    evs = book.on_conditions(batch(reg, [(GD17, RuleKind.STEL, Severity.ALARM, 112.4, T0)]), reg, LIMITS, T0)
    evs += book.tick(T0 + 200)
    evs.append(book.acknowledge(evs[0].alert_id, "Ana Horvat", "fan restarted; cause: blasting fumes", T0 + 210))
    book.on_conditions(batch(reg, [(GD17, RuleKind.STEL, None, 40.0, T0 + 300)]), reg, LIMITS, T0 + 300)
    evs += book.on_conditions(batch(reg, [(GD17, RuleKind.STEL, None, 40.0, T0 + 400)]), reg, LIMITS, T0 + 400)
    assert [e.event for e in evs] == ["raised", "escalated", "acknowledged", "cleared"]
    return evs


def stored_rows(events: list[AlertEvent]) -> list[dict[str, Any]]:
    """Rows as a store would return them: the wire object plus the audit link."""
    chain = AuditChain()
    rows = []
    for ev in events:
        link = chain.append(ev)
        rows.append({**ev.to_wire(), "audit_seq": link.audit_seq, "prev_hash": link.prev_hash, "hash": link.hash})
    return rows


def test_hash_is_sha256_of_prev_hash_and_canonical_json() -> None:
    ev = lifecycle()[0]
    body = canonical_json(ev)
    assert body == orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)  # sorted, compact
    assert link_hash(GENESIS, ev) == hashlib.sha256(GENESIS.encode() + body).hexdigest()
    # the same event read back from a store (wire dict, ints for floats, extra columns) hashes the same
    row = {**ev.to_wire(), "threshold": 100, "audit_seq": 0, "extra": "ignored"}
    assert canonical_json(row) == body


def test_untouched_chain_verifies_and_anchors() -> None:
    events = lifecycle()
    rows = stored_rows(events)
    hashes = compute_chain(events)
    assert hashes == [r["hash"] for r in rows] and len(set(hashes)) == 4
    res = verify_chain(list(reversed(rows)), expected_head=hashes[-1])  # sorted by audit_seq
    assert res.ok and res.checked == 4 and res.head == hashes[-1]
    assert res.message() == f"audit chain OK: 4 events, head 3:{hashes[-1]}"  # SEQ:HASH, ready for --head
    assert verify_chain(events, expected_head=hashes[-1]).ok  # plain events, no stored hashes


@pytest.mark.parametrize(
    ("tamper", "first_bad", "why"),
    [
        (lambda rows: rows[2].update(note="no cause recorded"), 2, "altered"),
        (lambda rows: rows[1].update(value=99.0), 1, "altered"),
        (lambda rows: rows.pop(1), 1, "audit_seq 2 where 1 was expected"),
        (lambda rows: rows.insert(1, {**rows[1], "by": "Mallory"}), 1, "altered"),
    ],
)
def test_tampering_is_detected(tamper: Any, first_bad: int, why: str) -> None:
    rows = stored_rows(lifecycle())
    tamper(rows)
    res = verify_chain(rows)
    assert not res.ok and res.first_bad == first_bad and why in res.reason
    assert res.message().startswith("audit chain BROKEN: ")


def test_deletion_with_renumbering_breaks_the_link() -> None:
    rows = stored_rows(lifecycle())
    del rows[1]
    for i, r in enumerate(rows):
        r["audit_seq"] = i
    res = verify_chain(rows)
    assert not res.ok and res.first_bad == 1 and "prev_hash does not match" in res.reason


def test_rehashed_forgery_and_truncation_are_caught_by_the_anchor() -> None:
    events = lifecycle()
    anchor = compute_chain(events)[-1]
    forged = [*events[:2], events[3]]  # the acknowledgement removed and the chain recomputed
    assert verify_chain(stored_rows(forged)).ok  # self-consistent ...
    res = verify_chain(stored_rows(forged), expected_head=anchor)  # ... but not the anchored head
    assert not res.ok and "anchored" in res.reason
    assert not verify_chain(stored_rows(events)[:3], expected_head=anchor).ok


def test_chain_continues_across_restarts() -> None:
    events = lifecycle()
    first = AuditChain()
    links = [first.append(e) for e in events[:2]]
    resumed = AuditChain(head=links[-1].hash, next_seq=2)
    links += [resumed.append(e) for e in events[2:]]
    assert [lk.hash for lk in links] == compute_chain(events)
    assert [lk.audit_seq for lk in links] == [0, 1, 2, 3]


def test_every_break_is_reported_not_only_the_first() -> None:
    """Issue 15: verify stopped at the first break, so a later real edit printed nothing new."""
    rows = stored_rows(lifecycle())
    rows[3]["message"] = "all fine"  # a later edit ...
    del rows[1]  # ... after an earlier deletion
    res = verify_chain(rows)
    assert [b.audit_seq for b in res.breaks] == [1, 3]
    assert "1 event(s) missing" in res.breaks[0].reason and "altered" in res.breaks[1].reason
    assert res.message().startswith("audit chain BROKEN: 2 breaks in 3 events; first: event 2")


def test_the_message_lists_the_first_breaks_and_counts_the_rest() -> None:
    rows = stored_rows(lifecycle() * 3)
    for r in rows:
        r["note"] = "rewritten"
    res = verify_chain(rows)
    lines = res.message(shown=2).splitlines()
    assert lines[0].startswith("audit chain BROKEN: 12 breaks in 12 events") and lines[-1] == "  ... and 10 more"
    assert len(lines) == 3


def test_anchor_parses_and_refuses_other_text() -> None:
    digest = "ab" * 32
    assert Anchor.parse(f" 17:{digest.upper()} ") == Anchor(17, digest) and str(Anchor(17, digest)) == f"17:{digest}"
    for bad in ("17", f"x:{digest}", "17:abc", f"-1:{digest}", f"17:{'g' * 64}"):
        with pytest.raises(ValueError, match="SEQ:HASH"):
            Anchor.parse(bad)


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (lambda rows: rows.pop(), "truncated"),  # the last event deleted: the chain still holds
        (lambda rows: rows.__delitem__(slice(2, None)), "2 event(s) deleted at the end"),
    ],
)
def test_an_anchor_catches_deletion_at_the_end(tamper: Any, why: str) -> None:
    """Issue 13 point 4: a deleted last event went unnoticed ("OK, new head")."""
    rows = stored_rows(lifecycle())
    anchor = Anchor(3, rows[-1]["hash"])
    tamper(rows)
    assert verify_chain(rows).ok  # without the anchor nothing is wrong
    res = verify_chain(rows, anchor=anchor)
    assert not res.ok and why in res.reason


def test_an_anchor_catches_a_rewritten_and_rehashed_log() -> None:
    events = lifecycle()
    rows = stored_rows(events)
    anchor = Anchor(2, rows[2]["hash"])  # published when the acknowledgement was the head
    forged = stored_rows([events[0], events[1], events[1], events[3]])  # ack replaced, all rehashed
    assert verify_chain(forged).ok
    res = verify_chain(forged, anchor=anchor)
    assert not res.ok and "rewritten" in res.reason and res.first_bad == 2
    assert verify_chain(rows, anchor=anchor).ok  # events after the anchor are fine
    assert "anchored at 2" in verify_chain(rows, anchor=anchor).message()
