"""`is_signed_by_gateway`: only events the gateway sealed and published count as its own."""

from __future__ import annotations

from dataclasses import replace

import orjson

from alerts.audit import AuditChain
from alerts.signed import RecentLinks, is_signed_by_gateway, unsigned_reason
from alerts.types import AlertEvent, AlertEventKind
from rules.types import RuleKind, Severity

T0 = 1_800_000_000.0
EV = AlertEvent(
    "a1", AlertEventKind.RAISED, Severity.ALARM, RuleKind.LEVEL, "kop-1", "z1", "d1", "ch4", None,
    1.2, 1.0, "%vol", T0, T0, "us-msha", "30 CFR 75.323", "Withdraw", "CH4 1.2 %vol",
)  # fmt: skip


def sealed(chain: AuditChain, links: RecentLinks, ev: AlertEvent) -> dict[str, object]:
    ev = replace(ev, audit_chain="gw-1")
    link = chain.append(ev)
    links.add("gw-1", link.audit_seq, link.hash)
    done = replace(ev, audit_seq=link.audit_seq, prev_hash=link.prev_hash, hash=link.hash)
    return dict(orjson.loads(orjson.dumps(done.to_wire())))  # as it arrives over MQTT


def test_the_gateways_own_events_pass_and_forgeries_do_not() -> None:
    chain, links = AuditChain(), RecentLinks()
    first = sealed(chain, links, EV)
    second = sealed(chain, links, replace(EV, event=AlertEventKind.CLEARED))
    assert is_signed_by_gateway(first, links) and is_signed_by_gateway(second, links)
    assert "content does not match" in unsigned_reason({**first, "severity": "critical"}, links)
    assert "not sealed" in unsigned_reason({**first, "audit_seq": None}, links)
    assert "64 hex" in unsigned_reason({**first, "hash": "x"}, links)
    # a self-consistent chain computed by someone else: hashes fit, but the gateway never published it
    other, other_links = AuditChain(), RecentLinks()
    forged = sealed(other, other_links, replace(EV, alert_id="fake", severity=Severity.CRITICAL))
    assert "another hash in the gateway's record" in unsigned_reason(forged, links)
    assert "was never published by this gateway" in unsigned_reason({**forged, "audit_seq": 7}, links)
    assert not is_signed_by_gateway(forged, links)


def test_recent_links_are_bounded() -> None:
    links = RecentLinks(size=3)
    for seq in range(5):
        links.add("gw", seq, f"{seq:064x}")
    assert links("gw", 1) is None and links("gw", 4) == f"{4:064x}"
