"""The audit chain heads a report or evidence bundle records (docs/security.md).

A head (`SEQ:HASH`, the last event's position and hash in a gateway's chain) written into a
document that leaves the store — a monthly report handed to the committee, an inspector's
evidence bundle — anchors the alert log: `oshmon audit verify --head SEQ:HASH` (or
`--from-bundle DIR`) later finds events deleted or rewritten up to that head, which the chain
alone cannot show.
"""

from __future__ import annotations

from alerts.audit import chain_heads
from storage.base import HistoryQuery, RecordKind, Store


def audit_heads(store: Store) -> dict[str, str]:
    """`{chain: "SEQ:HASH"}` of every audit chain in the store, as it stands now."""
    return {chain: str(head) for chain, head in chain_heads(store.query(HistoryQuery(RecordKind.ALERTS))).items()}
