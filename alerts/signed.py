"""Is an alert event on `P/{site}/alerts` really the gateway's? (issue 15 point 2)

Anyone allowed to publish on the alert topic can forge a `raised`/`critical` event. Every event
the gateway publishes is sealed into its audit chain first (alerts/audit.py): it carries
`audit_chain`, `audit_seq`, `prev_hash` and `hash`. A SHA-256 chain is not a signature by itself
(anyone can compute one), so an event counts as the gateway's only when

1. its four audit fields are present and well-formed,
2. its content hashes to its `hash` (`hash = sha256(prev_hash + canonical_json(event))`), and
3. the gateway's own record of that chain position — `lookup(audit_chain, audit_seq)`, from the
   gateway's memory of what it published or from the store, which only the gateway writes —
   holds exactly that hash.

A forged event fails 1 or 2, or names a position whose stored hash differs (3). The gateway
flags such events (dead letter + `integrity` alert, gateway/watch.py); `oshmon status` never
shows them (it reads the gateway's own state); the board must check this too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from alerts.audit import link_hash

ChainLookup = Callable[[str, int], str | None]
_HEX = frozenset("0123456789abcdef")


def unsigned_reason(event: Mapping[str, Any], lookup: ChainLookup) -> str:
    """Why `event` (a decoded §2.2 object) is not the gateway's; "" when it is."""
    chain, seq = event.get("audit_chain"), event.get("audit_seq")
    prev, digest = event.get("prev_hash"), event.get("hash")
    if not isinstance(chain, str) or not isinstance(seq, int) or isinstance(seq, bool):
        return "no audit_chain/audit_seq: not sealed by a gateway"
    if not _is_hash(prev) or not _is_hash(digest):
        return "prev_hash/hash missing or not 64 hex digits"
    try:
        recomputed = link_hash(str(prev), event)
    except (TypeError, ValueError):
        return "fields of the wrong type"
    if recomputed != digest:
        return "content does not match its hash (altered or made up)"
    known = lookup(chain, seq)
    if known is None:
        return f"audit_seq {seq} of chain {chain!r} was never published by this gateway"
    if known != digest:
        return f"audit_seq {seq} of chain {chain!r} has another hash in the gateway's record (forged)"
    return ""


def is_signed_by_gateway(event: Mapping[str, Any], lookup: ChainLookup) -> bool:
    """True when `event` is one the gateway sealed and published (see the module docstring)."""
    return not unsigned_reason(event, lookup)


def _is_hash(v: object) -> bool:
    return isinstance(v, str) and len(v) == 64 and set(v) <= _HEX


class RecentLinks:
    """The gateway's memory of the chain positions it published (bounded: the newest `size`)."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._links: OrderedDict[tuple[str, int], str] = OrderedDict()

    def add(self, chain: str, seq: int, digest: str) -> None:
        self._links[(chain, seq)] = digest
        while len(self._links) > self.size:
            self._links.popitem(last=False)

    def __call__(self, chain: str, seq: int) -> str | None:
        return self._links.get((chain, seq))
